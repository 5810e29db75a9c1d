"""The subscriber list files in ``subscribers/``: TOML, one ``[[subscriber]]`` table per person.

Each table is parsed on its own, so one broken entry (even a TOML syntax error) is reported
with its file and line and skipped while every other entry still loads. A person's own papers
(``papers = ["2401.01234", ...]``, ``library = "ada.bib"`` beside the file) are read by
``newsletter/library.py``; a bad paper is reported with its file and line and skipped, the
person and their other papers still count.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Collection, Iterable, Sequence

from email_validator import EmailNotValidError
from pydantic import ValidationError

from newsletter.errors import ConfigError
from newsletter.library import MAX_PAPERS, id_of, parse_library
from newsletter.models import OwnPaper, Problem, Subscriber
from newsletter.subscriber_entry import Entry, describe_error, normalized_address

if TYPE_CHECKING:
    from sqlalchemy import Engine

_PAPERS_KEY = re.compile(r"^\s*papers\s*=")
_EMAIL_KEY = re.compile(r"""^\s*email\s*=\s*["']([^"'\n]+)["']""", re.MULTILINE)
HEADER = re.compile(r"^\s*\[\[\s*subscriber\s*\]\]\s*(#.*)?$")
# Any other table header: TOML would read it as part of the entry above, and the person under a
# misspelt [[subscribr]] would vanish without a word.
_TABLE = re.compile(r"""^\s*\[\[?\s*[\w"'. -]+\]\]?\s*(#.*)?$""")


def _addresses_in(chunk: str) -> set[str]:
    """The addresses an entry that cannot be read names, as they would be stored."""
    found = set()
    for raw in _EMAIL_KEY.findall(chunk):
        try:
            found.add(normalized_address(raw.strip()))
        except EmailNotValidError:
            found.add(raw.strip().lower())
    return found


def _stray_table(chunk: str, doc: dict[str, object]) -> tuple[int, str] | None:
    """(line in the chunk, header) of a table that is not the entry's own, or None."""
    subscriber = doc.get("subscriber")
    if set(doc) == {"subscriber"} and isinstance(subscriber, list) and len(subscriber) == 1:
        return None
    lines = chunk.splitlines()
    at = next((i for i in range(1, len(lines)) if _TABLE.match(lines[i])), 1)
    return at, lines[at].split("#")[0].strip() if at < len(lines) else "a table"


def _chunks(text: str) -> Iterable[tuple[int, str, bool]]:
    """Split a file at its ``[[subscriber]]`` headers: (first line number, text, is_entry)."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if HEADER.match(line)]
    first = starts[0] if starts else len(lines)
    if any(line.strip() and not line.lstrip().startswith("#") for line in lines[:first]):
        yield 1, "\n".join(lines[:first]), False
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        yield start + 1, "\n".join(lines[start:end]), True


@dataclass(frozen=True, slots=True)
class Roster:
    """What the files say: the people listed, the problems, and whom not to take as unlisted."""

    listed: list[Listed]
    problems: list[Problem]
    held: frozenset[str] = frozenset()  # addresses whose entry is there but cannot be read
    unread: frozenset[str] = frozenset()  # files that cannot be read at all


@dataclass(frozen=True, slots=True)
class Listed:
    """One entry of a file: the person, and the papers they gave as their own."""

    subscriber: Subscriber
    own: tuple[OwnPaper, ...] = ()
    library: str = ""  # the library file as written in the entry, "" for none


def parse_subscribers(text: str, source: str) -> tuple[list[Subscriber], list[Problem]]:
    """Parse one file's text. Pure: no I/O, no knowledge of other files."""
    entries, problems = parse_entries(text, source)
    return [entry.subscriber for entry in entries], problems


def parse_entries(text: str, source: str) -> tuple[list[Listed], list[Problem]]:
    """Parse one file's text into entries with their ``papers`` (a ``library`` file is named,
    not read: see :func:`read_listed`). Pure."""
    found, problems, _ = _parse(text, source)
    return found, problems


def _parse(text: str, source: str) -> tuple[list[Listed], list[Problem], set[str]]:
    """``parse_entries``, and the addresses named in the entries that could not be read."""
    found: list[Listed] = []
    problems: list[Problem] = []
    held: set[str] = set()
    for line, chunk, is_entry in _chunks(text):
        where = f"{source}:{line}"
        if not is_entry:
            problems.append(Problem(where, "text outside a [[subscriber]] table; every entry "
                                           "starts with a [[subscriber]] line"))
            held |= _addresses_in(chunk)
            continue
        try:
            doc = tomllib.loads(chunk)
            table = doc["subscriber"][0]
        except tomllib.TOMLDecodeError as exc:
            # tomllib counts lines from the chunk; report them from the top of the file.
            message = re.sub(r"line (\d+)", lambda m: f"line {int(m[1]) + line - 1}", str(exc))
            problems.append(Problem(where, f"not valid TOML: {message}"))
            held |= _addresses_in(chunk)
            continue
        stray = _stray_table(chunk, doc)
        if stray is not None:
            at, header = stray
            problems.append(Problem(f"{source}:{line + at}", f"{header} is not a "
                                    "[[subscriber]] line (check the spelling): the entry under "
                                    "it was skipped"))
            held |= _addresses_in(chunk)
        try:
            entry = Entry.model_validate(table)
        except ValidationError as exc:
            problems.append(Problem(where, describe_error(exc)))
            held |= _addresses_in(chunk)
            continue
        own = _papers(_paper_lines(chunk, line, entry.papers), source, problems)
        found.append(Listed(entry.to_subscriber(where), tuple(own[:MAX_PAPERS]), entry.library))
    return found, problems, held


def _papers(lines: list[tuple[int, str]], source: str,
            problems: list[Problem]) -> list[OwnPaper]:
    found: dict[str, OwnPaper] = {}
    for number, paper in lines:
        pid = id_of(paper.strip())
        if pid is None:
            problems.append(Problem(f"{source}:{number}", f"papers: {paper[:80]!r} is not an "
                                    "arXiv id or URL (like 2401.01234 or https://arxiv.org/abs/"
                                    "2401.01234); skipped, the other papers still count"))
        else:
            found.setdefault(f"arxiv:{pid}", OwnPaper(key=f"arxiv:{pid}", title=""))
    return list(found.values())


def _paper_lines(chunk: str, first: int, papers: list[str]) -> list[tuple[int, str]]:
    """Each of ``papers`` with the file line it is written on (for problems): the first line
    at or after ``papers =`` that holds it, else the ``papers =`` line itself."""
    lines = chunk.splitlines()
    start = next((i for i, text in enumerate(lines) if _PAPERS_KEY.match(text)), 0)
    found, at = [], start
    for paper in papers:
        i = next((j for j in range(at, len(lines)) if paper in lines[j]), None)
        if i is not None:
            at = i
        found.append((first + (i if i is not None else start), paper))
    return found


def read_subscriber_files(directory: Path) -> tuple[list[Subscriber], list[Problem]]:
    """Every ``*.toml`` file in ``directory``; a duplicate address keeps its first entry."""
    listed, problems = read_listed(directory)
    return [entry.subscriber for entry in listed], problems


def read_listed(directory: Path) -> tuple[list[Listed], list[Problem]]:
    """Like :func:`read_subscriber_files`, with each person's own papers: their ``papers`` and
    their ``library`` file (a path relative to the subscriber file), read and checked."""
    roster = read_roster(directory)
    return roster.listed, roster.problems


def read_roster(directory: Path) -> Roster:
    """:func:`read_listed`, and whom the files name without it being readable (see Roster)."""
    if not directory.is_dir():
        # Not a Problem to skip: read as "nobody is listed", it would remove every subscriber.
        raise ConfigError(f"NEWSLETTER_SUBSCRIBERS_DIR: no such folder {directory}: fix the "
                          "setting, or create the folder (an empty folder lists nobody)")
    found: dict[str, Listed] = {}
    problems: list[Problem] = []
    held: set[str] = set()
    unread: set[str] = set()
    for path in sorted(directory.glob("*.toml")):
        try:
            # utf-8-sig: Windows editors save UTF-8 with a BOM, which would glue itself to the
            # first [[subscriber]] line and cost that person their entry.
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            unread.add(str(path))
            problems.append(Problem(str(path), f"cannot read: {exc}; save it as UTF-8 text "
                                    "readable by this user (its subscribers stay as they were "
                                    "until it reads)"))
            continue
        entries, file_problems, file_held = _parse(text, str(path))
        problems.extend(file_problems)
        held |= file_held
        for entry in entries:
            sub = entry.subscriber
            if sub.email in found:
                problems.append(Problem(sub.origin, f"duplicate address {sub.email} "
                                        f"(first listed at {found[sub.email].subscriber.origin}"
                                        "); skipped"))
            else:
                found[sub.email] = _with_library(entry, path.parent, problems)
    return Roster(list(found.values()), problems, frozenset(held - found.keys()),
                  frozenset(unread))


def _with_library(entry: Listed, folder: Path, problems: list[Problem]) -> Listed:
    """The entry with its library file's papers added after its ``papers``."""
    if not entry.library:
        return entry
    path = folder / entry.library
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(entry.subscriber.origin, f"library {entry.library!r}: cannot "
                                f"read {path} ({exc}); give a path relative to this file"))
        return entry
    papers, file_problems = parse_library(text, str(path))
    problems.extend(file_problems)
    merged = {paper.key: paper for paper in entry.own}
    for paper in papers:  # the library's entry has a title where `papers` has only the id
        if paper.key not in merged or not merged[paper.key].title:
            merged[paper.key] = paper
    return Listed(entry.subscriber, tuple(merged.values())[:MAX_PAPERS], entry.library)


def store_libraries(engine: Engine, listed: Sequence[Listed], *,
                    keep: Collection[str] = ()) -> None:
    """Store each listed person's own papers as their "file" library (an entry without any
    empties it, except for the ``keep`` addresses; what they gave on the web is kept apart).
    Run after ``sync_subscribers``. Matching to the catalog happens when digests are made
    (``relevance/feedback.py``)."""
    from newsletter.store.readers import replace_file_libraries

    replace_file_libraries(engine, {entry.subscriber.email: entry.own for entry in listed},
                           keep=keep)


def sync_roster(engine: Engine, roster: Roster) -> None:
    """Mirror the files into the database: the people, then their own papers. Whoever the
    files name but cannot be read (a typo, a file saved in another encoding) stays exactly as
    stored, papers included, instead of being taken for removed."""
    from newsletter.store.subscribers import sync_subscribers

    report = sync_subscribers(engine, [entry.subscriber for entry in roster.listed],
                              held=roster.held, unread=roster.unread)
    store_libraries(engine, roster.listed, keep=report.held)
