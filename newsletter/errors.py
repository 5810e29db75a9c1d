"""Public errors. Each message names the thing at fault and says what to do next."""

from __future__ import annotations


class NewsletterError(Exception):
    """Base class: the CLI prints these as one line, without a traceback."""


class ConfigError(NewsletterError):
    """A setting is missing or wrong."""


class SourceError(NewsletterError):
    """A catalog source could not be read at all (unreadable file, unknown format)."""

    def __init__(self, location: str, message: str) -> None:
        self.location = location
        super().__init__(f"{location}: {message}")


class SendError(NewsletterError):
    """The transport could not hand one message over.

    ``code`` is the SMTP reply code when there was one; ``permanent`` says whether trying the
    same message again later can help (5xx: no; 4xx and dropped connections: yes).
    """

    def __init__(self, recipient: str, reply: str, *, code: int | None = None,
                 permanent: bool = False) -> None:
        self.recipient = recipient
        self.reply = reply
        self.code = code
        self.permanent = permanent
        kind = "permanent" if permanent else "temporary"
        super().__init__(f"{recipient}: {kind} failure: {reply}")


class InvalidToken(NewsletterError):
    """A signed link was forged, tampered with, expired, or made for another purpose."""
