"""What the catalog itself teaches about a topic's words, so a field nobody listed still works.

- Pseudo-relevance feedback (RM3-style, Lavrenko & Croft 2001; Abdul-Jaleel et al. 2004): the
  papers that match a facet best say how the field talks about it. Words they share, weighted
  by how strongly each paper matched and by how specific the word is, join the facet with a
  lower weight: "few-shot learning" learns "prototypical", "episodic", "meta-learning".
- Spelling: a topic word no paper uses ("equivarient") is read as the catalog word one or two
  edits away ("equivariant") when there is one that several papers use. A short stem has many
  neighbours, so it is corrected only when the typed word is long and no English word
  ("varational" is read as "variational"; "farming" stays off-catalog, not "forming").
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence

from newsletter.relevance.index import Index
from newsletter.relevance.text import english

FEEDBACK_PAPERS = 8  # the best matches that teach a facet's words
FEEDBACK_WORDS = 8  # words learned per facet
MIN_SHARED = 2  # a learned word appears in at least this many of the feedback papers
MIN_SUPPORT = 0.25  # ...and in at least this share of them
MAX_BACKGROUND = 0.2  # words in more of the catalog than this say nothing specific
MIN_TYPO_LENGTH = 6  # shorter unknown stems ("crop") are corrected only if _misspelt


def feedback_words(index: Index, scored: Mapping[int, float], exclude: Collection[str],
                   ) -> dict[str, float]:
    """Words (term -> weight 0..1) that the best matches share, beyond ``exclude``.

    The feedback papers are the FEEDBACK_PAPERS best matches, each counting by its score. A
    word's weight is the (score-weighted) share p of them that say it times how much more often
    they do than the catalog: p log(p / background), the KL term of Carpineto et al., "An
    information-theoretic approach to automatic query expansion" (2001). "contrastive" in five
    of eight self-supervised papers and one in ten of the catalog weighs much; "learning" in all
    of them and two thirds of the catalog weighs little, and words in more than MAX_BACKGROUND
    of the catalog ("however", "propose") are never learned."""
    top = sorted(scored, key=lambda d: (-scored[d], d))[:FEEDBACK_PAPERS]
    if len(top) < MIN_SHARED:
        return {}
    total = sum(scored[d] for d in top) or 1.0
    share: dict[str, float] = {}
    seen: Counter[str] = Counter()
    for doc in top:
        words = index.vocabulary_of(doc)
        weight = scored[doc] / total
        for term in words:
            share[term] = share.get(term, 0) + weight
        seen.update(words)
    needed = max(MIN_SHARED, math.ceil(MIN_SUPPORT * len(top)))
    size = max(index.size, 1)
    ranked = {}
    for term, p in share.items():
        background = index.df.get(term, 0) / size
        if (term not in exclude and seen[term] >= needed and p > background
                and background <= MAX_BACKGROUND):
            ranked[term] = p * math.log(p / background)
    chosen = sorted(ranked, key=lambda t: (-ranked[t], t))[:FEEDBACK_WORDS]
    if not chosen:
        return {}
    top_weight = ranked[chosen[0]]
    return {t: ranked[t] / top_weight for t in chosen}


def correct(index: Index, term: str, word: str = "") -> str | None:
    """The catalog term ``term`` (the stem of the typed ``word``) is most likely a misspelling
    of, or None."""
    if index.df.get(term) or not term.isalpha():
        return None
    if len(term) < MIN_TYPO_LENGTH and not _misspelt(word):
        return None
    limit = 1 if len(term) < 9 else 2
    near = [t for t in _neighbours(index, term) if _distance(term, t, limit) <= limit]
    frequent = [t for t in near if index.df[t] >= 2]
    return max(frequent, key=lambda t: (index.df[t], t)) if frequent else None


def _misspelt(word: str) -> bool:
    """Whether a typed word is surely a misspelling: long, and in no English dictionary."""
    word = word.lower()
    return len(word) >= MIN_TYPO_LENGTH and word.isalpha() and word not in english()


def _neighbours(index: Index, term: str) -> Sequence[str]:
    # Same first letter, similar length: the cheap filter before the edit distance.
    return [t for t in index.df
            if t[:1] == term[:1] and abs(len(t) - len(term)) <= 2 and t != term]


def _distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance with adjacent transpositions, stopping past ``limit``."""
    previous = list(range(len(b) + 1))
    before: list[int] = []
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, before[j - 2] + 1)
            current.append(cost)
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return previous[-1]
