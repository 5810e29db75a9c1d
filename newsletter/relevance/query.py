"""A topic as a person typed it, understood as facets: the ideas it names and what qualifies them.

"meta-learning / few-shot learning", "continual learning and catastrophic forgetting" and
"NeRF, 3D reconstruction" name alternatives: a paper about any of them belongs in the section.
"deep learning for PDEs", "transformers in vision" name an idea and a qualifier ("for PDEs"):
the qualifier is a boost, never a gate. "memory-augmented networks (NTM)" names one idea twice.
A facet made only of words most papers use ("deep learning", "neural networks") says little on
its own: when the topic has a more specific part, that facet is set aside as context. A
qualifier boosts however common its words are: "attention on graphs" in a catalog of graph
papers is still about graphs (set aside, it made the topic "attention").

Parsing is pure text work; what counts as "most papers" is the index's (``generic``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from newsletter.relevance.text import Vocabulary

Pairs = tuple[tuple[str, str], ...]  # (surface word, term) of a phrase, as Vocabulary.analyze

# Separators between alternatives. "and"/"or" only between words: "R&D" is one word.
_ALTERNATIVES = re.compile(r"\s*(?:[/,;|+&]|\s(?:and|or|vs\.?|versus)\s)\s*", re.IGNORECASE)
# Words that attach a qualifier: "X for Y", "X in Y", "X on Y", ...
_QUALIFIER = re.compile(r"\s(?:for|in|on|with|via|using|under|towards?|applied to|from)\s",
                        re.IGNORECASE)
_PARENTHESES = re.compile(r"\(([^()]*)\)|\[([^\[\]]*)\]")


@dataclass(frozen=True, slots=True)
class Facet:
    """One idea of a topic: its words, and the qualifiers that boost the papers that also say
    them. ``label`` is how the reason names it ("few-shot learning")."""

    label: str
    words: Pairs
    qualifiers: tuple[Pairs, ...] = ()
    context: tuple[Pairs, ...] = ()  # common words of the topic ("deep learning"): no weight


@dataclass(frozen=True, slots=True)
class Query:
    topic: str
    facets: tuple[Facet, ...]

    @property
    def key(self) -> str:
        """Two spellings of one query share a key, so their rankings are computed once."""
        return " | ".join(
            " ".join(t for _, t in f.words) + "".join(
                " @ " + " ".join(t for _, t in q) for q in f.qualifiers)
            for f in self.facets)


def parse(topic: str, vocabulary: Vocabulary,
          generic: Callable[[Sequence[str]], bool] = lambda terms: False,
          common: Callable[[Sequence[str]], bool] = lambda terms: True) -> Query:
    """``topic`` as facets. ``generic(terms)`` says whether a phrase is too common to stand on
    its own in this catalog (every term in a large share of the papers); ``common(terms)``
    whether such a phrase is also said as such by many papers: an alternative is set aside as
    context only when it is both ("deep learning and robotics", not "learning to optimize
    (L2O)", whose abbreviation the catalog may never use)."""
    text = " ".join(topic.split())
    heads, qualifiers = _split_qualifier(text, vocabulary)
    facets = [(label, words) for label, words in heads if words]
    quals = [words for _, words in qualifiers if words]
    context: list[Pairs] = []
    specific = [f for f in facets if not generic([t for _, t in f[1]])]
    kept = [f for f in facets if f in specific or not common([t for _, t in f[1]])]
    if specific and len(kept) < len(facets):
        # "deep learning and robotics": the common part says nothing on its own.
        context = [words for label, words in facets if (label, words) not in kept]
        facets = kept
    elif not specific and quals and not all(generic([t for _, t in q]) for q in quals):
        # "deep learning for weather": the head is common, the qualifier is the subject.
        facets, quals, context = [(_label(q), q) for q in quals], [], [w for _, w in facets]
    unique = tuple(dict.fromkeys(
        Facet(label, words, tuple(dict.fromkeys(quals)), tuple(dict.fromkeys(context)))
        for label, words in facets))
    return Query(topic, unique)


def _split_qualifier(text: str, vocabulary: Vocabulary,
                     ) -> tuple[list[tuple[str, Pairs]], list[tuple[str, Pairs]]]:
    parts = _QUALIFIER.split(text, maxsplit=1)
    if len(parts) == 2 and _known(text, vocabulary):
        parts = [text]  # a vocabulary phrase keeps its own "for"/"in"/"on" ("learning to sort")
    head = _alternatives(parts[0], vocabulary)
    qualifier = _alternatives(parts[1], vocabulary) if len(parts) == 2 else []
    if not head:  # "for PDEs": nothing before the qualifier word
        head, qualifier = qualifier, []
    return head, qualifier


def _alternatives(text: str, vocabulary: Vocabulary) -> list[tuple[str, Pairs]]:
    """The alternatives of ``text``; a parenthesis is another name for what precedes it."""
    found: list[str] = []
    for match in _PARENTHESES.finditer(text):
        found += _split(match.group(1) or match.group(2) or "", vocabulary)
    found = _split(_PARENTHESES.sub(" ", text), vocabulary) + found
    return [(piece, tuple(vocabulary.analyze(piece))) for piece in dict.fromkeys(found)]


def _split(text: str, vocabulary: Vocabulary) -> list[str]:
    text = text.strip(" -")
    if not text:
        return []
    if _known(text, vocabulary):
        return [text]
    return [piece.strip(" -") for piece in _ALTERNATIVES.split(text) if piece.strip(" -")]


def _known(text: str, vocabulary: Vocabulary) -> bool:
    stems = tuple(stem for _, stem in vocabulary.analyze(text))
    return bool(stems) and vocabulary.knows(stems)


def _label(words: Pairs) -> str:
    return " ".join(word for word, _ in words)
