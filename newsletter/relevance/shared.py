"""Topic rankings shared by the worker processes of a run, so each topic is ranked once.

``send`` starts a helper process per spare core and ``newsletter worker`` processes on other
hosts share its queue; each ranks the topics of the subscribers it serves. Unshared, every
process ranks every topic again (a few milliseconds each on a day's window, and a public list's
subscribers type tens of thousands of distinct topics). A ranking depends only on the catalog's
texts, the vocabulary, the weights, the encoder and the ranking code: ``fingerprint`` digests
them, and the store keeps rankings under that digest and the understood query. A process takes
a stored ranking instead of computing it; it ranks the rest in an order of its own, storing
them chunk by chunk and looking again between chunks, so processes that start together split
the work instead of all doing all of it. A ranking read back is the one computed (paper
indexes, scores and reasons as JSON), so a digest does not depend on which process ranked it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from newsletter.relevance.reasons import Reason
from newsletter.relevance.topic import Hit

if TYPE_CHECKING:
    from newsletter.relevance.rank import Ranker

log = logging.getLogger("newsletter")
CHUNK_SECONDS = 0.05  # ranking work between two looks at the store (a look costs ~1 ms)

Load = Callable[[str, Collection[str]], Mapping[str, str]]  # (catalog, queries) -> JSON
Save = Callable[[str, Mapping[str, str]], None]
_FINGERPRINTS: WeakKeyDictionary[Ranker, str] = WeakKeyDictionary()  # computed once a ranker


@dataclass(frozen=True, slots=True)
class Shared:
    ranked: int  # topics this process ranked (and stored)
    taken: int  # topics it took from the store, ranked by another process


def share(ranker: Ranker, topics: Iterable[str], load: Load, save: Save,
          rng: random.Random | None = None) -> Shared:
    """Make every one of ``topics`` ranked in ``ranker``: taken from the store when another
    process ranked it, else ranked here and stored."""
    wanted = {_digest(key): query for key, query in ranker.unranked(topics).items()}
    if not wanted:
        return Shared(0, 0)
    catalog = fingerprint(ranker)
    pending = list(wanted)
    (rng or random.Random()).shuffle(pending)  # another process walks them in another order
    ranked = taken = 0
    while pending:
        adopted = set()
        for slot, text in load(catalog, pending).items():
            found = decode(text, ranker.index.size)
            if found is not None:
                ranker.adopt(wanted[slot].key, found)
                adopted.add(slot)
        taken += len(adopted)
        pending = [slot for slot in pending if slot not in adopted]
        made: dict[str, str] = {}
        started = time.perf_counter()
        while pending:  # at least one topic a chunk
            slot = pending.pop()
            try:
                made[slot] = encode(ranker.hits(wanted[slot]))
            except Exception as exc:  # a bug on one topic: the digests needing it fail alone
                log.error("could not rank a topic (%s: %s); the digests that need it are "
                          "recorded as failed, the others go on", type(exc).__name__, exc)
            if time.perf_counter() - started >= CHUNK_SECONDS:
                break
        save(catalog, made)
        ranked += len(made)
    return Shared(ranked, taken)


def fingerprint(ranker: Ranker) -> str:
    """A digest of everything a ranking depends on: the papers' texts in index order, the
    vocabulary, the weights, the encoder and the ranking code."""
    found = _FINGERPRINTS.get(ranker)
    if found is None:
        digest = hashlib.sha256()
        for paper in ranker.papers:
            for text in (paper.id, paper.title, paper.abstract):
                digest.update(text.encode("utf-8", "surrogatepass"))
                digest.update(b"\0")
        encoder = ranker.semantic.encoder.name if ranker.semantic is not None else "words"
        for part in (ranker.vocabulary.fingerprint(), repr(ranker.weights), encoder, _code()):
            digest.update(part.encode("utf-8"))
            digest.update(b"\0")
        found = _FINGERPRINTS[ranker] = digest.hexdigest()
    return found


def encode(hits: tuple[Hit, ...]) -> str:
    """A ranking as JSON: per paper its index, score and reason (lead, name, tail)."""
    return json.dumps([[h.doc, h.score, h.reason.lead, h.reason.label, h.reason.tail]
                       for h in hits], separators=(",", ":"))


def decode(text: str, size: int) -> tuple[Hit, ...] | None:
    """The stored ranking, or None when it is not one for a catalog of ``size`` papers (then
    this process ranks the topic itself)."""
    try:
        hits = tuple(Hit(int(doc), float(score), Reason(str(lead), int(label), str(tail)))
                     for doc, score, lead, label, tail in json.loads(text))
    except (ValueError, TypeError) as exc:
        log.warning("a stored topic ranking could not be read (%s): ranking it again", exc)
        return None
    return hits if all(0 <= h.doc < size for h in hits) else None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@cache
def _code() -> str:
    """The ranking code: another version ranks differently, so it never reads this version's
    rankings."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
