"""Merging sightings of papers into the catalog: pure, no I/O.

A paper is its arXiv id without version when known, else its normalized title; records from
every source merge into one, keeping the richest fields and the highest engagement counts.
:class:`Catalog` is the catalog as one ingest run sees it, and what it still has to store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from newsletter.catalog.sources.ids import short_hash, title_key
from newsletter.models import Link, Paper

T = TypeVar("T")


def merge(old: Paper, new: Paper) -> Paper:
    """One paper from two sightings: the richest of each field, the highest engagement counts,
    every source; ``old`` keeps its identity."""
    listed_at, listed_year_inferred = _first_listing(old, new)
    return replace(
        old,
        title=old.title or new.title,
        abstract=new.abstract if len(new.abstract) > len(old.abstract) else old.abstract,
        arxiv_id=old.arxiv_id or new.arxiv_id,
        authors=new.authors if len(new.authors) > len(old.authors) else old.authors,
        author_count=old.author_count if old.author_count is not None else new.author_count,
        published=_earliest(old.published, new.published),
        url=old.url or new.url,
        links=_union_links(old.links, new.links),
        upvotes=_most(old.upvotes, new.upvotes),
        comments=_most(old.comments, new.comments),
        first_seen_at=old.first_seen_at or new.first_seen_at,
        sources=_union(old.sources, new.sources),
        ai_summary=max(old.ai_summary or "", new.ai_summary or "", key=len) or None,
        keywords=new.keywords if len(new.keywords) > len(old.keywords) else old.keywords,
        github_stars=_most(old.github_stars, new.github_stars),
        clicks=_most(old.clicks, new.clicks),
        listed_at=listed_at,
        listed_year_inferred=listed_year_inferred,
        thumbnail=old.thumbnail or new.thumbnail,
    )


def _first_listing(old: Paper, new: Paper) -> tuple[datetime | None, bool]:
    """A paper's news starts at its first listing: the earliest one whose year a source stated,
    else the earliest one at all (a yearless page date, its year our guess)."""
    inferred, at = min(((p.listed_year_inferred, p.listed_at) for p in (old, new) if p.listed_at),
                       default=(False, None))
    return at, inferred


def _union(first: Iterable[T], second: Iterable[T]) -> tuple[T, ...]:
    return tuple(dict.fromkeys((*first, *second)))


def _union_links(first: Iterable[Link], second: Iterable[Link]) -> tuple[Link, ...]:
    # The HF API and an arXiv comment spell one repository differently ("…/Repo/", "…/repo").
    links: dict[tuple[str, str], Link] = {}
    for link in (*first, *second):
        links.setdefault((link.kind, link.url.lower().rstrip("/").removesuffix(".git")), link)
    return tuple(links.values())


def _most(a: int | None, b: int | None) -> int | None:
    return max((v for v in (a, b) if v is not None), default=None)


def _earliest(a: T | None, b: T | None) -> T | None:
    return min(filter(None, (a, b)), default=None)  # type: ignore[type-var]


@dataclass
class Delta:
    """What to write to bring the database up to date with the run so far."""

    new: list[Paper]
    changed: list[Paper]
    replaces: dict[str, str]  # new id -> id of a row this run stored, to delete (rekeyed)

    def __bool__(self) -> bool:
        return bool(self.new or self.changed)


class Catalog:
    """The catalog as this run sees it: what the database holds plus what the run merged in.

    Stored as it goes (``delta`` / ``saved``), a source at a time. A paper first seen this run
    under its title slug takes its arXiv id once one is known, even after it was stored (the
    stored row is replaced); a paper stored before this run keeps its id forever, since the
    ledger records sent papers by id.
    """

    def __init__(self, stored: Sequence[Paper]) -> None:
        self.saved = {paper.id: paper for paper in stored}  # as the database holds them
        self.before = dict(self.saved)  # as it held them when the run began
        self.current = dict(self.saved)
        self.touched: dict[str, None] = {}  # ids seen this run, in order
        self.replaced: dict[str, str] = {}  # rekeyed: new id -> old id stored by this run
        self.broken: set[str] = set()  # could not be stored: not tried again this run
        self.by_arxiv: dict[str, str] = {}
        self.by_key: dict[str, list[str]] = {}
        for paper in stored:
            self._index(paper)

    def add(self, paper: Paper, now: datetime) -> None:
        found = self._find(paper)
        if found is None:
            result = replace(paper, id=self._free_id(paper), first_seen_at=now)
        else:
            result = replace(merge(found, paper), origin=paper.origin)
            if self._may_take_arxiv_id(found, result):
                result = self._rekey(found.id, replace(result, id=result.arxiv_id))
        self.current[result.id] = result
        self.touched[result.id] = None
        self._index(result)

    def delta(self) -> Delta:
        """The papers to insert and to update since the last ``saved``."""
        todo = [i for i in self.touched if i not in self.broken]
        new = [self.current[i] for i in todo if i not in self.saved]
        changed = [self.current[i] for i in todo
                   if i in self.saved and self.current[i] != self.saved[i]]
        replaces = {p.id: self.replaced[p.id] for p in new
                    if self.replaced.get(p.id) in self.saved}
        return Delta(new, changed, replaces)

    def saved_now(self, papers: Iterable[Paper], replaced: Iterable[str] = ()) -> None:
        for old in replaced:
            self.saved.pop(old, None)
        for paper in papers:
            self.saved[paper.id] = paper

    def failed(self, paper: Paper) -> None:
        self.broken.add(paper.id)

    def counts(self) -> tuple[int, int, int]:
        """(new papers, changed papers, stored papers seen again unchanged) of the run."""
        seen = [i for i in self.touched if i not in self.broken]
        new = sum(1 for i in seen if i not in self.before)
        changed = sum(1 for i in seen if i in self.before and self.current[i] != self.before[i])
        return new, changed, len(seen) - new - changed

    def _find(self, paper: Paper) -> Paper | None:
        if paper.arxiv_id and paper.arxiv_id in self.by_arxiv:
            return self.current[self.by_arxiv[paper.arxiv_id]]
        # The title joins a sighting without an arXiv id (a seed page) to one with it, either
        # way round; two different arXiv ids under one title are two papers, not one.
        for pid in self.by_key.get(title_key(paper.title), ()):
            known = self.current[pid]
            if not (known.arxiv_id and paper.arxiv_id):
                return known
        return None

    def _may_take_arxiv_id(self, found: Paper, merged: Paper) -> bool:
        return (found.id not in self.before and merged.arxiv_id is not None
                and found.id != merged.arxiv_id and merged.arxiv_id not in self.current)

    def _rekey(self, old_id: str, paper: Paper) -> Paper:
        del self.current[old_id]
        self.touched = {(paper.id if i == old_id else i): None for i in self.touched}
        for ids in self.by_key.values():
            ids[:] = [paper.id if i == old_id else i for i in ids]
        self.replaced[paper.id] = self.replaced.pop(old_id, old_id)
        return paper

    def _index(self, paper: Paper) -> None:
        if paper.arxiv_id:
            self.by_arxiv[paper.arxiv_id] = paper.id
        ids = self.by_key.setdefault(title_key(paper.title), [])
        if paper.id not in ids:
            ids.append(paper.id)

    def _free_id(self, paper: Paper) -> str:
        # Slugs drop non-ASCII letters, so two different titles can share one.
        pid, n = paper.id, 1
        while pid in self.current:
            pid, n = f"{paper.id}-{short_hash(f'{title_key(paper.title)}{n}')}", n + 1
        return pid
