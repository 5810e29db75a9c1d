"""The reason shown beside each paper of a digest: which facet of the topic it matched and how,
in words a person can check against the title and abstract ("matches: GNN → graph neural
network (title)", "related to few-shot learning: prototypical, episodic")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from newsletter.relevance import calibrate
from newsletter.relevance.index import Index
from newsletter.relevance.query import Facet, Query
from newsletter.relevance.score import Evidence
from newsletter.relevance.text import surface

if TYPE_CHECKING:
    from newsletter.relevance.semantic import SemanticIndex


def facet_reason(facet: Facet, evidence: Evidence, learned: Sequence[str], qualifier: str,
                 quote: str = "") -> str:
    """Why a paper the facet scoring found is shown: the facet and the way of saying it that
    matched, where, and the qualifier it also says; or the learned words that carried it; or,
    found by meaning, its sentence closest to the facet."""
    if evidence.field == "meaning":
        return f"close in meaning to {facet.label}" + (f": \u201c{quote}\u201d" if quote else "")
    if learned:
        return f"related to {facet.label}: " + ", ".join(surface(t) for t in learned[:3])
    said = facet.label
    label = evidence.label
    if label and label.lower() != " ".join(w for w, _ in facet.words).lower():
        said = f"{facet.label} → {label}"
    if qualifier:
        said += f", {qualifier}"
    return f"matches: {said} ({evidence.field})"


def widened_reason(index: Index, label: str, terms: Sequence[str], doc: int,
                   semantic: SemanticIndex | None) -> str:
    """Why a paper the facets did not find is shown: the topic's words it says, else the
    words the topic's best papers share that it says, else its closest sentence."""
    title, abstract = index.counts[doc]
    said = [t for t in dict.fromkeys(terms) if t in title or t in abstract]
    if said:
        return f"shares words with {label}: " + ", ".join(surface(t) for t in said[:3])
    learned = [t for t in calibrate.feedback_terms(index, terms) if t in title or t in abstract]
    if learned:
        return f"related to {label}: " + ", ".join(surface(t) for t in learned[:3])
    if semantic is not None:
        quote = semantic.closest_sentences([doc], [label]).get(doc, "")
        return f"close in meaning to {label}" + (f": \u201c{quote}\u201d" if quote else "")
    return f"related to {label}"


# How every reason begins: the label of a facet or of the whole topic follows.
_LEADS = ("matches: ", "related to ", "close in meaning to ", "shares words with ")


def labels(query: Query) -> tuple[str, ...]:
    """What reasons call the topic and its facets, as this reader wrote them."""
    return (query.topic, *(facet.label for facet in query.facets))


def relabel(reason: str, ranked: Sequence[str], own: Sequence[str]) -> str:
    """A reason made for one spelling of a query ("gnns": ``ranked``), naming another that
    shares its ranking ("GNN": ``own``, label for label)."""
    if tuple(ranked) == tuple(own):
        return reason
    lead = next((lead for lead in _LEADS if reason.startswith(lead)), None)
    if lead is None:
        return reason
    rest = reason[len(lead):]
    for before, after in sorted(zip(ranked, own), key=lambda pair: -len(pair[0])):
        if rest.startswith(before) and not rest[len(before):len(before) + 1].isalnum():
            return lead + after + rest[len(before):]
    return reason
