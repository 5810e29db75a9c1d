"""The subscriber list files in ``subscribers/``: TOML, one ``[[subscriber]]`` table per person.

Each table is parsed on its own, so one broken entry (even a TOML syntax error) is reported
with its file and line and skipped while every other entry still loads.
"""

from __future__ import annotations

import re
import tomllib
from datetime import time
from pathlib import Path
from typing import Iterable, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from newsletter.errors import ConfigError
from newsletter.models import Problem, Subscriber
from newsletter.safetext import MAX_NAME_CHARS, MAX_TOPIC_CHARS, TextError, clean_line

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


def parse_subscribers(text: str, source: str) -> tuple[list[Subscriber], list[Problem]]:
    """Parse one file's text. Pure: no I/O, no knowledge of other files."""
    found: list[Subscriber] = []
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
            found.append(Entry.model_validate(table).to_subscriber(where))
        except ValidationError as exc:
            problems.append(Problem(where, _describe(exc)))
    return found, problems


def read_subscriber_files(directory: Path) -> tuple[list[Subscriber], list[Problem]]:
    """Every ``*.toml`` file in ``directory``; a duplicate address keeps its first entry."""
    if not directory.is_dir():
        # Not a Problem to skip: read as "nobody is listed", it would remove every subscriber.
        raise ConfigError(f"NEWSLETTER_SUBSCRIBERS_DIR: no such folder {directory}: fix the "
                          "setting, or create the folder (an empty folder lists nobody)")
    found: dict[str, Subscriber] = {}
    problems: list[Problem] = []
    for path in sorted(directory.glob("*.toml")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(path), f"cannot read: {exc}"))
            continue
        subscribers, file_problems = parse_subscribers(text, str(path))
        problems.extend(file_problems)
        for sub in subscribers:
            if sub.email in found:
                problems.append(Problem(sub.origin, f"duplicate address {sub.email} "
                                        f"(first listed at {found[sub.email].origin}); skipped"))
            else:
                found[sub.email] = sub
    return list(found.values()), problems
