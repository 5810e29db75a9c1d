"""The catalog: papers from every source, deduplicated and stored idempotently.

A source is a file, a folder of files, or an http(s) URL. Each format has a pure parser in
``sources/`` (``sources/formats.py`` picks it by content and name); URLs are fetched with
conditional requests whose validators are remembered in the database. Papers are merged with
what is stored (by arXiv id without version, else by normalized title, keeping the richest
fields and the highest engagement counts) and the difference is stored in one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine

from newsletter.catalog.sources.fetch import TIMEOUT_SECONDS, Validators, fetch, make_client
from newsletter.catalog.sources.formats import READERS, Parsed, Reader, read_source
from newsletter.catalog.sources.ids import paper_slug, short_hash, title_key
from newsletter.errors import SourceError
from newsletter.models import Link, Paper, Problem
from newsletter.store.catalog import load_papers, load_validators, save_papers, save_validators

__all__ = [
    "READERS",
    "IngestReport",
    "Reader",
    "display_path",
    "expand_paths",
    "ingest",
    "merge",
    "paper_slug",
    "read_source_file",
    "title_key",
]

Source = Path | str  # a file or folder path, or an http(s) URL
T = TypeVar("T")


# -- merging ---------------------------------------------------------------------------------


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


class _Catalog:
    """The catalog as this run sees it: what is stored plus what the run has merged in."""

    def __init__(self, stored: Sequence[Paper]) -> None:
        self.stored = {paper.id: paper for paper in stored}
        self.current = dict(self.stored)
        self.touched: dict[str, None] = {}  # ids seen this run, in order
        self.by_arxiv: dict[str, str] = {}
        self.by_key: dict[str, list[str]] = {}
        for paper in stored:
            self._index(paper)

    def add(self, paper: Paper, now: datetime) -> None:
        found = self._find(paper)
        if found is None:
            result = replace(paper, id=self._free_id(paper), first_seen_at=now)
        else:
            result = merge(found, paper)
            if self._may_take_arxiv_id(found, result):
                result = self._rekey(found.id, replace(result, id=result.arxiv_id))
        self.current[result.id] = result
        self.touched[result.id] = None
        self._index(result)

    def changes(self) -> tuple[list[Paper], list[Paper], int]:
        """(new papers, changed papers, number of stored papers seen again unchanged)."""
        new = [self.current[i] for i in self.touched if i not in self.stored]
        changed = [self.current[i] for i in self.touched
                   if i in self.stored and self.current[i] != self.stored[i]]
        return new, changed, len(self.touched) - len(new) - len(changed)

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
        """A paper first seen this run under its title slug takes its arXiv id once one is
        known. A stored paper keeps its id: the ledger records sent papers by id."""
        return (found.id not in self.stored and merged.arxiv_id is not None
                and found.id != merged.arxiv_id and merged.arxiv_id not in self.current)

    def _rekey(self, old_id: str, paper: Paper) -> Paper:
        del self.current[old_id]
        self.touched = {(paper.id if i == old_id else i): None for i in self.touched}
        for ids in self.by_key.values():
            ids[:] = [paper.id if i == old_id else i for i in ids]
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


# -- finding and reading sources ---------------------------------------------------------------


def as_url(source: Source) -> str | None:
    """``source`` as an http(s) URL, or None for a path. ``Path("https://x/y")`` collapses the
    double slash to "https:/x/y": that is put back, so a URL passed as a Path still works."""
    text = re.sub(r"^(https?):/(?!/)", r"\1://", str(source), flags=re.IGNORECASE)
    parts = urlsplit(text)
    return text if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def display_path(path: Path) -> str:
    """How a file is named in ``sources`` and Problems: relative to the working directory, else
    its folder and name, so the same file passed either way reads the same."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):
        return Path(*resolved.parts[-2:]).as_posix()


def expand_paths(sources: Iterable[Source]) -> list[Source]:
    """The files and URLs ``ingest`` reads for ``sources``, one progress step each (the CLI
    sizes its progress bar with this)."""
    return _expand(sources)[0]


def _expand(sources: Iterable[Source]) -> tuple[list[Source], list[Problem]]:
    """URLs as given; files as given, directories as their readable files sorted by name; each
    once. And a Problem for each path that does not exist."""
    found: dict[object, Source] = {}  # resolved path or URL -> as given
    problems = []
    for source in sources:
        url = as_url(source)
        if url is not None:
            found.setdefault(url, url)
            continue
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in READERS
                           and p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            files = [path]
        else:
            problems.append(Problem(display_path(path), "no such file or directory: check the "
                                                        "path, or remove it from the sources"))
            files = []
        for file in files:
            found.setdefault(file.resolve(), file)
    return list(found.values()), problems


def read_source_file(path: Path, today: date) -> Parsed:
    """Papers and Problems in one file; an unknown or unreadable file is a Problem too."""
    source = display_path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [], [Problem(source, f"cannot read the file ({exc.strerror or exc}): check that "
                                    "it exists and is readable")]
    return read_source(data, path.name, source, today)


@dataclass(frozen=True, slots=True)
class _UrlResult:
    papers: list[Paper]
    problems: list[Problem]
    remember: Validators | None = None  # store these once the papers are stored
    not_modified: bool = False


def _read_url(engine: Engine, client: httpx.Client, url: str, today: date) -> _UrlResult:
    """Fetch ``url`` conditionally (validators from the database) and parse it."""
    etag, modified = load_validators(engine, url)
    try:
        got = fetch(client, url, Validators(etag, modified))
    except SourceError as exc:
        return _UrlResult([], [Problem(exc.location, str(exc).removeprefix(f"{url}: "))])
    if got.content is None:
        return _UrlResult([], [], not_modified=True)
    papers, problems = read_source(got.content, url, url, today, got.content_type)
    # An unusable answer is not remembered: the next ingest fetches it again in full.
    usable = bool(papers) or not problems
    return _UrlResult(papers, problems, got.validators if usable else None)


# -- ingest ----------------------------------------------------------------------------------


@dataclass
class IngestReport:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Problem] = field(default_factory=list)
    files: int = 0  # sources read: files and URLs
    not_modified: int = 0  # URLs that answered 304 Not Modified


def ingest(engine: Engine, sources: Sequence[Source], now: datetime,
           progress: Callable[[int], object] | None = None, *,
           timeout: float = TIMEOUT_SECONDS, client: httpx.Client | None = None) -> IngestReport:
    """Read every file, folder and URL in ``sources`` into the catalog. Bad content and failing
    URLs are reported in ``rejected``, never raised, and the other sources go on; the store is
    written in one transaction, and a URL's validators only after its papers are stored."""
    items, rejected = _expand(sources)
    catalog = _Catalog(load_papers(engine))
    report = IngestReport(rejected=rejected, files=len(items))
    remember: list[tuple[str, str | None, str | None]] = []
    own_client = client is None and any(isinstance(i, str) for i in items)
    http = make_client(timeout) if own_client else client
    try:
        for item in items:
            if isinstance(item, str):
                result = _read_url(engine, http, item, now.date())  # type: ignore[arg-type]
                papers, problems = result.papers, result.problems
                report.not_modified += result.not_modified
                if result.remember and (result.remember.etag or result.remember.last_modified):
                    remember.append((item, result.remember.etag, result.remember.last_modified))
            else:
                papers, problems = read_source_file(item, now.date())
            report.rejected.extend(problems)
            for paper in papers:
                catalog.add(paper, now)
            if progress is not None:
                progress(1)
    finally:
        if own_client and http is not None:
            http.close()
    new, changed, report.unchanged = catalog.changes()
    if new or changed:
        save_papers(engine, new=[(p, _stored_key(p)) for p in new],
                          changed=[(p, _stored_key(p)) for p in changed], now=now)
    if remember:
        save_validators(engine, remember, now)
    report.new, report.updated = len(new), len(changed)
    return report


def _stored_key(paper: Paper) -> str:
    # The column holds 400 characters (PostgreSQL enforces it); dedupe recomputes full keys.
    return title_key(paper.title)[:400]
