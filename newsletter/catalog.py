"""The catalog: papers from every source, deduplicated and stored idempotently.

Each source format has a pure parser in ``sources/``; this module picks the parser by file
suffix, merges what the parsers found with what is stored (by arXiv id, else by normalized
title, keeping the richest fields), and stores the difference in one transaction.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Callable, Iterable, Sequence, TypeVar

from sqlalchemy import Engine

from . import store
from .models import Paper, Problem

Parsed = tuple[list[Paper], list[Problem]]
Reader = Callable[[bytes, str, date], Parsed]  # (file content, display path, today)
T = TypeVar("T")

# Letters that NFKD leaves whole, so the ascii fold would drop them ("Łojasiewicz").
_FOLD = str.maketrans({"Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "Đ": "D", "đ": "d", "ß": "ss",
                       "Æ": "AE", "æ": "ae", "Œ": "OE", "œ": "oe", "Þ": "Th", "þ": "th", "ı": "i"})
SLUG_MAX = 100


# -- normalization ---------------------------------------------------------------------------


def title_key(title: str) -> str:
    """The title as dedupe sees it: accents folded, lowercase, punctuation gone, single spaces.

    Punctuation becomes a space, so "Two-layer" and "Two layer" meet; apostrophes vanish, so
    "doesn't" stays one word. Letters with no ASCII form (Greek, CJK) are kept: dropping them
    could make two different titles collide.
    """
    text = unicodedata.normalize("NFKD", title.translate(_FOLD))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"['\u2018\u2019\u02bc`]", "", text)
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def paper_slug(title: str) -> str:
    """A stable id for a paper with no arXiv id: its normalized title as ASCII words."""
    key = title_key(title)
    slug = "-".join(re.findall(r"[a-z0-9]+", key))
    if not slug:
        return f"paper-{_digest(key or title)}"
    if len(slug) <= SLUG_MAX:
        return slug
    # Cut at a word boundary; the hash keeps two long titles sharing a prefix apart.
    head = slug[:SLUG_MAX - 9]
    head = head.rsplit("-", 1)[0] if slug[SLUG_MAX - 9] != "-" and "-" in head else head
    return f"{head}-{_digest(slug)}"


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


# -- merging ---------------------------------------------------------------------------------


def merge(old: Paper, new: Paper) -> Paper:
    """One paper from two sightings: the richest of each field; ``old`` keeps its identity."""
    return replace(
        old,
        title=old.title or new.title,
        abstract=new.abstract if len(new.abstract) > len(old.abstract) else old.abstract,
        arxiv_id=old.arxiv_id or new.arxiv_id,
        authors=new.authors if len(new.authors) > len(old.authors) else old.authors,
        author_count=old.author_count if old.author_count is not None else new.author_count,
        published=min(filter(None, (old.published, new.published)), default=None),
        url=old.url or new.url,
        links=_union(old.links, new.links),
        upvotes=_most(old.upvotes, new.upvotes),
        comments=_most(old.comments, new.comments),
        first_seen_at=old.first_seen_at or new.first_seen_at,
        sources=_union(old.sources, new.sources),
    )


def _union(first: Iterable[T], second: Iterable[T]) -> tuple[T, ...]:
    return tuple(dict.fromkeys((*first, *second)))


def _most(a: int | None, b: int | None) -> int | None:
    return max((v for v in (a, b) if v is not None), default=None)


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
        if found is not None:
            result = merge(found, paper)
        else:
            result = replace(paper, id=self._free_id(paper), first_seen_at=now)
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
        for pid in self.by_key.get(title_key(paper.title), ()):
            known = self.current[pid]
            # Two different arXiv ids under one title are two papers, not one.
            if not (known.arxiv_id and paper.arxiv_id):
                return known
        return None

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
            pid, n = f"{paper.id}-{_digest(f'{title_key(paper.title)}{n}')}", n + 1
        return pid


# -- reading files ---------------------------------------------------------------------------


def _read_seed_page(data: bytes, source: str, today: date) -> Parsed:
    # Deferred: the parsers import the title helpers from this module.
    from .sources.seedpage import parse_seed_page

    text = _decode(data, source)
    return ([], [text]) if isinstance(text, Problem) else parse_seed_page(text, source, today)


# One reader per file suffix; the HF JSON, arXiv Atom/RSS and JSONL parsers go here too.
READERS: dict[str, Reader] = {".txt": _read_seed_page}


def _decode(data: bytes, source: str) -> str | Problem:
    if b"\x00" in data:
        line = data[:data.index(b"\x00")].count(b"\n") + 1
        return Problem(f"{source}:{line}", "this is a binary file, not saved page text: "
                                           "remove it from the sources")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        return Problem(f"{source}:{line}", f"not UTF-8 text (byte 0x{data[exc.start]:02x} at "
                                           f"offset {exc.start}): save the file as UTF-8")


def display_path(path: Path) -> str:
    """How a file is named in ``sources`` and Problems: relative to the working directory, else
    its folder and name, so the same file passed either way reads the same."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):
        return Path(*resolved.parts[-2:]).as_posix()


def expand_paths(paths: Iterable[Path | str]) -> list[Path]:
    """The files ``ingest`` reads for ``paths``, one progress step each (the CLI sizes its
    progress bar with this)."""
    return _expand(paths)[0]


def _expand(paths: Iterable[Path | str]) -> tuple[list[Path], list[Problem]]:
    """Files as given, directories as their readable files sorted by name, each file once;
    and a Problem for each path that does not exist."""
    files: dict[Path, Path] = {}  # resolved -> as given, so a file named twice is read once
    problems = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in READERS
                           and p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            found = [path]
        else:
            problems.append(Problem(display_path(path), "no such file or directory: check the "
                                                        "path, or remove it from the sources"))
            found = []
        for file in found:
            files.setdefault(file.resolve(), file)
    return list(files.values()), problems


def read_source_file(path: Path, today: date) -> Parsed:
    """Papers and Problems in one file; an unknown or unreadable file is a Problem too."""
    source = display_path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        known = ", ".join(sorted(READERS))
        return [], [Problem(source, f"unknown file type {path.suffix or '(no suffix)'!r}: "
                                    f"the catalog reads {known} files; rename or remove it")]
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [], [Problem(source, f"cannot read the file ({exc.strerror or exc}): check that "
                                    "it exists and is readable")]
    return reader(data, source, today)


# -- ingest ----------------------------------------------------------------------------------


@dataclass
class IngestReport:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Problem] = field(default_factory=list)
    files: int = 0


def ingest(engine: Engine, paths: Sequence[Path], now: datetime,
           progress: Callable[[int], object] | None = None) -> IngestReport:
    """Read every file under ``paths`` into the catalog. Bad content is reported in
    ``rejected``, never raised; the store is written in one transaction."""
    files, rejected = _expand(paths)
    catalog = _Catalog(store.load_papers(engine))
    for path in files:
        papers, problems = read_source_file(path, now.date())
        rejected.extend(problems)
        for paper in papers:
            catalog.add(paper, now)
        if progress is not None:
            progress(1)
    new, changed, unchanged = catalog.changes()
    if new or changed:
        store.save_papers(engine, new=[(p, _stored_key(p)) for p in new],
                          changed=[(p, _stored_key(p)) for p in changed], now=now)
    return IngestReport(new=len(new), updated=len(changed), unchanged=unchanged,
                        rejected=rejected, files=len(files))


def _stored_key(paper: Paper) -> str:
    # The column holds 400 characters (PostgreSQL enforces it); dedupe recomputes full keys.
    return title_key(paper.title)[:400]
