"""How strongly a paper matches one facet of a topic: graded BM25F evidence, not a gate.

A facet's words (and each vocabulary way of saying them, ``text.Vocabulary.variants``) are
scored as an OR query: every word a paper has adds its idf times its saturated frequency, and
the sum is divided by the most the words could add, so a score is the share of the facet's
information the paper carries, 0..1, comparable across topics. Rare words decide ("few-shot"
outweighs "learning"); a missing rare word costs what it carries. Then the phrase: word for
word or close together it counts fully (``near``), scattered over the abstract it counts
``scattered`` (less for a vocabulary expansion, ``scattered_expansion``); all of its words in
the title multiply by ``1 + title``. The facet's qualifiers ("for PDEs") are applied by
``topic.TopicScorer``: a paper that does not say them keeps ``1 - qualifier`` of its score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from newsletter.relevance.index import ABSTRACT, TITLE, Index
from newsletter.relevance.proximity import covers, has_phrase

Terms = tuple[str, ...]
LONG_PHRASE = 4  # phrases this long may miss words...
LONG_COVERAGE = 0.75  # ...if the words found carry this share of the phrase's idf
SCATTERED, CLOSE, WORD_FOR_WORD = 0, 1, 2  # how a paper says a phrase of several words


@dataclass(frozen=True, slots=True)
class Weights:
    """The knobs of the ranking, tuned on the dev topics of benchmarks/relevance/ only."""

    near: float = 1.0  # a phrase's words close together, in any order (word for word: 1)
    scattered: float = 0.5  # ...or only scattered over the paper
    scattered_expansion: float = 0.2  # the same for a vocabulary expansion ("Wasserstein
    # distance" spread over an abstract is not about optimal transport)
    title: float = 0.3  # all of the variant's words in the title
    qualifier: float = 0.4  # a paper that does not say a facet's qualifier loses this share
    learned_enough: int = 3  # a paper saying this many of the learned words gets them in full
    other_facets: float = 0.5  # a paper that also matches a topic's other facets
    generic_share: float = 0.1  # a word in this share of the papers is common
    expansion: float = 0.35  # weight of the words learned from the best matches (expand.py)
    meaning_alone: float = 0.3  # a paper close in meaning m (0..1) saying none of the words
    meaning_low: float = 2.0  # cosine z-score (vs the catalog) where meaning starts to count
    meaning_high: float = 5.0  # ...and where it counts fully
    admit: float = 0.2  # least score for a paper to be relevant at all (then calibrate.py)
    relative: float = 0.2  # a single-facet topic's papers below this share of its best are
    # judged only if learned words or meaning reach them (a candidate cut, for speed)


DEFAULT = Weights()


@dataclass(frozen=True, slots=True)
class Evidence:
    score: float
    label: str  # the variant that matched ("graph neural network")
    field: str  # "title", "abstract", "title and abstract"


class Bag:
    """One way of saying a facet: its phrases, scored as one OR query."""

    def __init__(self, index: Index, phrases: Sequence[Terms], label: str,
                 weights: dict[str, float] | None = None, own: bool = True,
                 strict: bool = False) -> None:
        self.phrases = tuple(p for p in phrases if p)
        self.label = label
        self.own = own  # the person's own words, not a vocabulary expansion
        self.strict = strict  # all phrases or nothing ("BNN" only beside "Bayesian")
        terms = dict.fromkeys(t for p in self.phrases for t in p)
        self.weights = {t: index.idf(t) * (weights or {}).get(t, 1.0) for t in terms}
        self.ideal = sum(self.weights.values()) or 1.0
        # Work shared by every topic of the run that says these words the same way ("GNN" and
        # "graph neural networks" both read "graph neural network" on the same papers).
        self._bases = index.shared("base", tuple(terms)) if not weights else {}
        self._sums: dict[int, float] = {}  # ``some``'s, for learned words (one topic's own)
        self._closenesses = index.shared("closeness", (self.phrases, own))
        self._long = tuple((p, *self._coverage(index, p)) for p in self.phrases if len(p) > 1)

    def candidates(self, index: Index, floor: float) -> set[int]:
        """Papers that can reach ``floor``: those without any of the words that carry more than
        ``1 - floor`` of the weight cannot, and a common word alone never makes a match."""
        docs: set[int] = set()
        rest = self.ideal
        for term in sorted(self.weights, key=self.weights.__getitem__, reverse=True):
            if rest < floor * self.ideal:
                break
            docs.update(index.docs_with(term))
            rest -= self.weights[term]
        return docs

    def base(self, index: Index, doc: int) -> float:
        """The share of the bag's information the paper carries, 0..1: candidates are bounded
        by it, then judged."""
        return (self._bases or self.bases(index)).get(doc, 0.0)

    def bases(self, index: Index) -> dict[int, float]:
        """``base`` of every paper saying one of the words."""
        if not self._bases:
            ideal = self.ideal
            self._bases.update((doc, said / ideal) for doc, said in self._said(index).items())
        return self._bases

    def _said(self, index: Index) -> dict[int, float]:
        """Per paper saying one of the words, their weights times its saturated frequencies:
        for all such papers at once, from the words' postings (a dict pass per word, not a sum
        per paper)."""
        said: dict[int, float] = {}
        for term, weight in self.weights.items():
            for doc, value in index.saturations(term).items():
                said[doc] = said.get(doc, 0) + weight * value
        return said

    def some(self, index: Index, doc: int, enough: int) -> float:
        """Like ``base``, but ``enough`` of the heaviest words are all a paper needs to say:
        for learned words, of which a related paper says a few, never all."""
        if not self._sums:
            self._sums = self._said(index)
        return min(self._sums.get(doc, 0) / self._enough(enough), 1.0)

    def _enough(self, enough: int) -> float:
        return sum(sorted(self.weights.values(), reverse=True)[:enough]) or 1.0

    def evidence(self, index: Index, doc: int, w: Weights, base: float | None = None,
                 ) -> Evidence:
        """How strongly ``doc`` says this bag (``base`` when the caller has it already)."""
        base = self.base(index, doc) if base is None else base
        if not base or (self.strict and not all(
                any(t in index.counts[doc][0] or t in index.counts[doc][1] for t in p)
                for p in self.phrases)):
            return Evidence(0.0, self.label, "")
        title, abstract = index.counts[doc]
        in_title = all(t in title for t in self.weights)
        in_abstract = all(t in abstract for t in self.weights if t in title or t in abstract)
        field = "title" if in_title else "abstract" if in_abstract else "title and abstract"
        return Evidence(base * self._closeness(index, doc, w) * (1 + w.title * in_title),
                        self.label, field)

    def reach(self, index: Index, doc: int, w: Weights) -> float:
        """The most ``evidence`` can score, for less: all its words in the title, and each
        phrase of several words close together, unless the paper lacks one of a short phrase's
        words (then the phrase is scattered, exactly)."""
        base = self.base(index, doc)
        if not self._long or not base:
            return base * (1 + w.title)
        held = self._closenesses.get(doc)
        if held is None:
            scattered = self._scattered(w)
            close = max(1.0, w.near)
            total = 0.0
            for phrase, weights, _ in self._long:
                apart = len(phrase) < LONG_PHRASE and doc not in index.holders(tuple(weights))
                total += scattered if apart else close
            held = total / len(self._long)
        return base * held * (1 + w.title)

    def _closeness(self, index: Index, doc: int, w: Weights) -> float:
        """1 when every phrase of several words is there word for word; less when its words
        are only close together, less again when they are scattered: "parameter ...
        prediction" in two sentences is not "parameter prediction"."""
        if not self._long:
            return 1.0
        held = self._closenesses.get(doc)
        if held is not None:
            return held
        scattered = self._scattered(w)
        total = 0.0
        for phrase, weights, need in self._long:
            said = _phrase_said(index, phrase, weights, need, doc)
            total += 1.0 if said == WORD_FOR_WORD else w.near if said == CLOSE else scattered
        self._closenesses[doc] = total / len(self._long)
        return total / len(self._long)

    def _scattered(self, w: Weights) -> float:
        """What a phrase whose words are only scattered over the paper counts for."""
        return w.scattered if self.own else w.scattered_expansion

    @staticmethod
    def _coverage(index: Index, phrase: Terms) -> tuple[dict[str, float], float]:
        """Per-word weight and the total a window must hold to count as the phrase: every word
        of a short phrase; for LONG_PHRASE words or more, the words carrying LONG_COVERAGE of
        its idf ("physics-informed networks" is "physics-informed neural networks")."""
        distinct = dict.fromkeys(phrase)
        if len(phrase) < LONG_PHRASE:
            return {t: 1.0 for t in distinct}, float(len(distinct))
        weights = {t: index.idf(t) for t in distinct}
        return weights, LONG_COVERAGE * sum(weights.values())


def _phrase_said(index: Index, phrase: Terms, weights: dict[str, float], need: float,
                 doc: int) -> int:
    """How ``doc`` says a phrase of several words: WORD_FOR_WORD, CLOSE or SCATTERED (or not
    at all). Memoized per phrase for the run: the ways of saying many topics share phrases."""
    said = index.shared("phrase", phrase)
    found = said.get(doc)
    if found is None:
        found = said[doc] = _read_phrase(index, phrase, weights, need, doc)
    return int(found)


def _read_phrase(index: Index, phrase: Terms, weights: dict[str, float], need: float,
                 doc: int) -> int:
    if len(phrase) < LONG_PHRASE and doc not in index.holders(tuple(weights)):
        return SCATTERED  # a short phrase is close together only where all its words are
    # Only a field holding enough of the words can have them close together: the others are
    # not read (most candidates say a phrase's words scattered, if at all).
    counts = index.counts[doc]
    fields = [i for i in (TITLE, ABSTRACT)
              if sum(v for t, v in weights.items() if t in counts[i]) >= need - 1e-6]
    if not fields:
        return SCATTERED
    positions = index.positions(doc)
    if any(has_phrase(phrase, positions[i]) for i in fields):
        return WORD_FOR_WORD
    if any(covers(phrase, positions[i], weights, need) for i in fields):
        return CLOSE
    return SCATTERED


def best(bags: Sequence[Bag], index: Index, doc: int, w: Weights,
         floor: float = 0.0) -> Evidence:
    """The strongest of the ways of saying a facet (GNN, graph neural network, ...). A way
    whose words could not beat the strongest so far (or ``floor``) even all in the title is not
    looked at closer: a facet with a dozen ways costs little more than one."""
    bases = sorted([(-bag.base(index, doc), i) for i, bag in enumerate(bags)])
    found = Evidence(0.0, "", "")
    for minus, i in bases:
        bound = -minus * (1 + w.title)
        if not minus or bound <= found.score or bound < floor:
            break
        evidence = bags[i].evidence(index, doc, w, -minus)
        if evidence.score > found.score:
            found = evidence
    return found
