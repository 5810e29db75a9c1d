"""The reason shown beside each paper of a digest: which facet of the topic it matched and how,
in words a person can check against the title and abstract ("matches: GNN → graph neural
network (title)", "related to few-shot learning: prototypical, episodic")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from newsletter.relevance import calibrate
from newsletter.relevance.index import Index
from newsletter.relevance.query import Facet, Query
from newsletter.relevance.score import Evidence
from newsletter.relevance.text import surface

if TYPE_CHECKING:
    from newsletter.relevance.semantic import SemanticIndex


@dataclass(frozen=True, slots=True)
class Reason:
    """A reason with the topic's or a facet's name left open: "GNN" and "gnns" share one
    ranking, and each reader's reason names the topic as they wrote it."""

    lead: str  # "matches: "
    label: int  # the name that follows: 0 the topic, 1 + i its facet i (``labels``)
    tail: str  # " → graph neural network (title)"

    def text(self, names: Sequence[str]) -> str:
        return f"{self.lead}{names[self.label]}{self.tail}"


def labels(query: Query) -> tuple[str, ...]:
    """What reasons call the topic and its facets, as this reader wrote them."""
    return (query.topic, *(facet.label for facet in query.facets))


def facet_reason(facet: Facet, which: int, evidence: Evidence, learned: Sequence[str],
                 qualifier: str, quote: str = "") -> Reason:
    """Why a paper the facet scoring found is shown (``which``: the facet's place in the
    query): the facet and the way of saying it that matched, where, and the qualifier it also
    says; or the learned words that carried it; or, found by meaning, its sentence closest to
    the facet."""
    label = 1 + which
    if evidence.field == "meaning":
        return Reason("close in meaning to ", label, f": \u201c{quote}\u201d" if quote else "")
    if learned:
        return Reason("related to ", label, ": " + ", ".join(surface(t) for t in learned[:3]))
    said = ""
    found = evidence.label
    if found and found.lower() != " ".join(w for w, _ in facet.words).lower():
        said = f" → {found}"
    if qualifier:
        said += f", {qualifier}"
    return Reason("matches: ", label, f"{said} ({evidence.field})")


def widened_reason(index: Index, topic: str, terms: Sequence[str], doc: int,
                   semantic: SemanticIndex | None) -> Reason:
    """Why a paper the facets did not find is shown: the topic's words it says, else the
    words the topic's best papers share that it says, else its closest sentence (to
    ``topic``, the reason's name for the whole topic)."""
    title, abstract = index.counts[doc]
    said = [t for t in dict.fromkeys(terms) if t in title or t in abstract]
    if said:
        return Reason("shares words with ", 0, ": " + ", ".join(surface(t) for t in said[:3]))
    learned = [t for t in calibrate.feedback_terms(index, terms) if t in title or t in abstract]
    if learned:
        return Reason("related to ", 0, ": " + ", ".join(surface(t) for t in learned[:3]))
    if semantic is not None:
        quote = semantic.closest_sentences([doc], [topic]).get(doc, "")
        return Reason("close in meaning to ", 0, f": \u201c{quote}\u201d" if quote else "")
    return Reason("related to ", 0, "")

