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
from datetime import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Literal, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from newsletter.errors import ConfigError
from newsletter.library import MAX_PAPERS, id_of, parse_library
from newsletter.models import OwnPaper, Problem, Subscriber
from newsletter.safetext import MAX_NAME_CHARS, MAX_TOPIC_CHARS, TextError, clean_line

if TYPE_CHECKING:
    from sqlalchemy import Engine

_PAPERS_KEY = re.compile(r"^\s*papers\s*=")
HEADER = re.compile(r"^\s*\[\[\s*subscriber\s*\]\]\s*(#.*)?$")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class Entry(BaseModel):
    """One ``[[subscriber]]`` table; unknown fields are errors (they are usually typos)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str
    name: str = ""
    topics: list[str] = Field(min_length=1)
    exclude: list[str] = []
    max_papers: int = Field(default=10, ge=1, le=50)
    frequency: Literal["daily", "weekly"] = "daily"
    weekday: Literal[WEEKDAYS] = "monday"  # type: ignore[valid-type]
    send_time: time = time(7, 0)
    timezone: str = "UTC"
    papers: list[str] = []  # arXiv ids or URLs of the person's own papers
    library: str = ""  # a BibTeX / Zotero export, or a list of ids, beside this file

    @field_validator("email")
    @classmethod
    def _valid_address(cls, value: str) -> str:
        try:
            # No non-ASCII local part: composing (and most relays, without SMTPUTF8) refuse
            # it, so it could never be sent; the sign-up form refuses it the same way.
            return validate_email(value, check_deliverability=False,
                                  allow_smtputf8=False).normalized.lower()
        except EmailNotValidError as exc:
            raise ValueError(f"invalid address {value!r}: {exc}") from None

    @field_validator("name")
    @classmethod
    def _one_line(cls, value: str) -> str:
        # A line break in a name could smuggle a header into the message: refused here, by the
        # same rules the forms and the header builder use (newsletter/safetext.py).
        try:
            return clean_line(value, max_chars=MAX_NAME_CHARS)
        except TextError as exc:
            raise ValueError(f"name {exc}") from None

    @field_validator("topics", "exclude")
    @classmethod
    def _clean_topics(cls, value: list[str]) -> list[str]:
        try:
            topics = [clean_line(topic, max_chars=MAX_TOPIC_CHARS, multiline=True)
                      for topic in value]
        except TextError as exc:
            raise ValueError(f"a topic {exc}") from None
        if any(not topic for topic in topics):
            raise ValueError(f"each topic must be 1 to {MAX_TOPIC_CHARS} characters")
        return list(dict.fromkeys(topics))

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r} (use an IANA name such as "
                             "'Europe/Paris')") from None
        return value

    def to_subscriber(self, origin: str) -> Subscriber:
        return Subscriber(
            email=self.email, name=self.name, topics=tuple(self.topics),
            exclude=tuple(self.exclude), max_papers=self.max_papers, frequency=self.frequency,
            weekday=WEEKDAYS.index(self.weekday), send_time=self.send_time,
            timezone=self.timezone, origin=origin,
        )


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


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see subscribers/README.md)"
        parts.append(f"{field}: {message}" if field else message)
    return "; ".join(parts)


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
    found: list[Listed] = []
    problems: list[Problem] = []
    for line, chunk, is_entry in _chunks(text):
        where = f"{source}:{line}"
        if not is_entry:
            problems.append(Problem(where, "text outside a [[subscriber]] table; every entry "
                                           "starts with a [[subscriber]] line"))
            continue
        try:
            table = tomllib.loads(chunk)["subscriber"][0]
        except tomllib.TOMLDecodeError as exc:
            # tomllib counts lines from the chunk; report them from the top of the file.
            message = re.sub(r"line (\d+)", lambda m: f"line {int(m[1]) + line - 1}", str(exc))
            problems.append(Problem(where, f"not valid TOML: {message}"))
            continue
        try:
            entry = Entry.model_validate(table)
        except ValidationError as exc:
            problems.append(Problem(where, _describe(exc)))
            continue
        own = _papers(_paper_lines(chunk, line, entry.papers), source, problems)
        found.append(Listed(entry.to_subscriber(where), tuple(own[:MAX_PAPERS]), entry.library))
    return found, problems


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
    if not directory.is_dir():
        # Not a Problem to skip: read as "nobody is listed", it would remove every subscriber.
        raise ConfigError(f"NEWSLETTER_SUBSCRIBERS_DIR: no such folder {directory}: fix the "
                          "setting, or create the folder (an empty folder lists nobody)")
    found: dict[str, Listed] = {}
    problems: list[Problem] = []
    for path in sorted(directory.glob("*.toml")):
        try:
            # utf-8-sig: Windows editors save UTF-8 with a BOM, which would glue itself to the
            # first [[subscriber]] line and cost that person their entry.
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(path), f"cannot read: {exc}"))
            continue
        entries, file_problems = parse_entries(text, str(path))
        problems.extend(file_problems)
        for entry in entries:
            sub = entry.subscriber
            if sub.email in found:
                problems.append(Problem(sub.origin, f"duplicate address {sub.email} "
                                        f"(first listed at {found[sub.email].subscriber.origin}"
                                        "); skipped"))
            else:
                found[sub.email] = _with_library(entry, path.parent, problems)
    return list(found.values()), problems


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


def store_libraries(engine: Engine, listed: Sequence[Listed]) -> None:
    """Store each listed person's own papers as their "file" library (an entry without any
    empties it; what they gave on the web is kept apart). Run after ``sync_subscribers``.
    Matching to the catalog happens when digests are made (``relevance/feedback.py``)."""
    from newsletter.store.readers import replace_file_libraries

    replace_file_libraries(engine, {entry.subscriber.email: entry.own for entry in listed})
