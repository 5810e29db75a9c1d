"""The catalog: papers from every source, deduplicated and stored idempotently.

A source is a file, a folder of files, or an http(s) URL. Each format has a pure parser in
``sources/`` (``sources/formats.py`` picks it by content and name); URLs are fetched within a
deadline (``sources/fetch.py``) with conditional requests whose validators are remembered in
the database. Papers are merged with what is stored (``merge.py``) and each source's
difference is stored in its own transaction: a record the database refuses is rejected with
its source and line, and the rest is stored; one bad source never costs the others.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError, StatementError

from newsletter.catalog.merge import Catalog, Delta, merge
from newsletter.catalog.sources.fetch import (
    MAX_BYTES,
    Fetcher,
    FetchLimits,
    Stopped,
    Validators,
)
from newsletter.catalog.sources.formats import READERS, Parsed, Reader, read_source
from newsletter.catalog.sources.ids import paper_slug, title_key
from newsletter.errors import SourceError
from newsletter.models import Paper, Problem
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
        size = path.stat().st_size
        if size > MAX_BYTES:  # reading it whole would only fill memory
            return [], [Problem(source, f"the file is {size // 2**20} MB, over the "
                                        f"{MAX_BYTES // 2**20} MB a papers listing can be: "
                                        "split it or remove it from the sources")]
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


def _read_url(engine: Engine, fetcher: Fetcher, url: str, today: date) -> _UrlResult:
    """Fetch ``url`` conditionally (validators from the database) and parse it."""
    etag, modified = load_validators(engine, url)
    try:
        got = fetcher.fetch(url, Validators(etag, modified))
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
    missing: int = 0  # paths given that do not exist
    failed: int = 0  # sources that gave nothing but problems (missing, unreadable, down, ...)
    stopped: str | None = None  # why the run stopped before the last source

    @property
    def all_failed(self) -> bool:
        """Not one source could be read: the sources are wrong, not some record in them."""
        return self.failed > 0 and self.failed >= self.files + self.missing


def ingest(engine: Engine, sources: Sequence[Source], now: datetime,
           progress: Callable[[int], object] | None = None, *,
           limits: FetchLimits | None = None,
           stop: threading.Event | None = None) -> IngestReport:
    """Read every file, folder and URL in ``sources`` into the catalog. Bad content and failing
    URLs are reported in ``rejected``, never raised, and the other sources go on. Each source
    is stored in its own transaction as soon as it is read, and a URL's validators only after
    its papers are stored. ``stop`` (set from another thread) ends the run at once, with what
    was stored so far kept."""
    items, missing = _expand(sources)
    catalog = Catalog(load_papers(engine))
    report = IngestReport(rejected=missing, files=len(items), failed=len(missing),
                          missing=len(missing))
    stop = stop or threading.Event()
    with ExitStack() as stack:
        fetcher = (stack.enter_context(Fetcher(limits, stop))
                   if any(isinstance(i, str) for i in items) else None)
        for item in items:
            if stop.is_set():
                report.stopped = "stopped before reading " + str(item)
                break
            try:
                _ingest_one(engine, fetcher, item, catalog, now, report)
            except Stopped as exc:
                report.stopped = str(exc)
                break
            if progress is not None:
                progress(1)
    report.new, report.updated, report.unchanged = catalog.counts()
    return report


def _ingest_one(engine: Engine, fetcher: Fetcher | None, item: Source, catalog: Catalog,
                now: datetime, report: IngestReport) -> None:
    """Read one source, merge it in and store what changed (one transaction)."""
    remember = None
    if isinstance(item, str):
        assert fetcher is not None
        result = _read_url(engine, fetcher, item, now.date())
        papers, problems = result.papers, result.problems
        report.not_modified += result.not_modified
        if result.remember and (result.remember.etag or result.remember.last_modified):
            remember = (item, result.remember.etag, result.remember.last_modified)
    else:
        papers, problems = read_source_file(item, now.date())
    report.rejected.extend(problems)
    if problems and not papers:
        report.failed += 1
    for paper in papers:
        catalog.add(paper, now)
    refused = _store(engine, catalog, now)
    report.rejected.extend(refused)
    if remember and not refused:  # else a 304 would hide the refused records next time
        save_validators(engine, [remember], now)


def _store(engine: Engine, catalog: Catalog, now: datetime) -> list[Problem]:
    """Write what changed since the last source, in one transaction; when the database
    refuses it, paper by paper, so that only the papers it refuses are lost (and reported)."""
    delta = catalog.delta()
    if not delta:
        return []
    try:
        _save(engine, delta, now)
        catalog.saved_now([*delta.new, *delta.changed], delta.replaces.values())
        return []
    except (OperationalError, InterfaceError):
        raise  # the database is gone, not this data: the caller fails the run
    except (StatementError, ValueError, OverflowError):
        pass
    problems = []
    for paper in [*delta.new, *delta.changed]:
        one = Delta([paper] if paper in delta.new else [], [paper] if paper in delta.changed
                    else [], {k: v for k, v in delta.replaces.items() if k == paper.id})
        try:
            _save(engine, one, now)
            catalog.saved_now([paper], one.replaces.values())
        except (OperationalError, InterfaceError):
            raise
        except (StatementError, ValueError, OverflowError) as exc:
            catalog.failed(paper)
            problems.append(_refused(paper, exc))
    return problems


def _save(engine: Engine, delta: Delta, now: datetime) -> None:
    save_papers(engine, new=[(p, _stored_key(p)) for p in delta.new],
                changed=[(p, _stored_key(p)) for p in delta.changed], now=now,
                replaced=list(delta.replaces.values()))


def _refused(paper: Paper, exc: Exception) -> Problem:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    where = paper.origin or (paper.sources[-1] if paper.sources else paper.id)
    return Problem(where, f"the database refused the paper {paper.title[:60]!r} "
                          f"({type(exc).__name__}: {reason}); it was skipped, the rest stored")


def _stored_key(paper: Paper) -> str:
    # The column holds 400 characters (PostgreSQL enforces it); dedupe recomputes full keys.
    return title_key(paper.title)[:400]
