"""Paper embeddings (the `semantic` extra): a cache keyed by paper and model."""

from __future__ import annotations

from typing import Iterable, Sequence

from sqlalchemy import Engine, insert, select

from newsletter.store.schema import paper_embeddings


def load_embeddings(engine: Engine, model: str,
                    ids: Iterable[str] | None = None) -> dict[str, tuple[str, bytes]]:
    """paper id -> (digest of the embedded text, vector bytes) for ``model``."""
    query = select(paper_embeddings.c.paper_id, paper_embeddings.c.digest,
                   paper_embeddings.c.vector).where(paper_embeddings.c.model == model)
    wanted = None if ids is None else set(ids)
    with engine.connect() as conn:
        return {row.paper_id: (row.digest, bytes(row.vector)) for row in conn.execute(query)
                if wanted is None or row.paper_id in wanted}


def save_embeddings(engine: Engine, model: str,
                    rows: Sequence[tuple[str, str, bytes]]) -> None:
    """Store (paper id, digest, vector bytes) rows for ``model``, replacing older ones."""
    if not rows:
        return
    with engine.begin() as conn:
        ids = [pid for pid, _, _ in rows]
        for start in range(0, len(ids), 500):  # bounded IN lists
            conn.execute(paper_embeddings.delete().where(
                paper_embeddings.c.model == model,
                paper_embeddings.c.paper_id.in_(ids[start:start + 500])))
        conn.execute(insert(paper_embeddings), [
            {"paper_id": pid, "model": model, "digest": digest, "vector": vector}
            for pid, digest, vector in rows])
