"""One ``[[subscriber]]`` table of a subscriber file, checked field by field (the file itself,
split into tables and read with its problems, is ``subscribers.py``). The preferences page
checks its form with the same model, so the files and the web accept the same values."""

from __future__ import annotations

from datetime import time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from newsletter.models import Subscriber
from newsletter.safetext import MAX_NAME_CHARS, MAX_TOPIC_CHARS, TextError, clean_line

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
            return normalized_address(value)
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


def normalized_address(value: str) -> str:
    """The address as stored. EmailNotValidError when it is not one."""
    # No non-ASCII local part: composing (and most relays, without SMTPUTF8) refuse it, so it
    # could never be sent; the sign-up form refuses it the same way.
    return validate_email(value, check_deliverability=False,
                          allow_smtputf8=False).normalized.lower()


def describe_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see subscribers/README.md)"
        parts.append(f"{field}: {message}" if field else message)
    return "; ".join(parts)
