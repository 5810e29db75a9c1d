"""The seed catalog for tests that rank real text: parsed by the real parser, deduped by title."""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path

from newsletter.catalog.ingest import title_key
from newsletter.catalog.sources.seedpage import parse_seed_page
from newsletter.models import Paper

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


@cache
def seed_papers() -> tuple[Paper, ...]:
    found: dict[str, Paper] = {}
    for path in sorted(SEEDS.glob("*.txt")):
        papers, problems = parse_seed_page(path.read_text("utf-8"), path.name, date(2026, 11, 23))
        assert not problems, problems
        for paper in papers:
            found.setdefault(title_key(paper.title), paper)
    return tuple(found.values())
