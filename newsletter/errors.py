"""Public errors. Each message names the thing at fault and says what to do next."""

from __future__ import annotations

from typing import Literal


class NewsletterError(Exception):
    """Base class: the CLI prints these as one line, without a traceback."""


class ConfigError(NewsletterError):
    """A setting is missing or wrong."""


class SourceError(NewsletterError):
    """A catalog source could not be read at all (unreadable file, unknown format)."""

    def __init__(self, location: str, message: str) -> None:
        self.location = location
        super().__init__(f"{location}: {message}")


Stage = Literal["connect", "mail", "rcpt", "data", "message"]
STAGES: tuple[Stage, ...] = ("connect", "mail", "rcpt", "data", "message")


class SendError(NewsletterError):
    """The transport could not hand one message over.

    ``code`` is the SMTP reply code when there was one; ``permanent`` says whether trying the
    same message again later can help (5xx: no; 4xx and dropped connections: yes). Left out, it
    follows from ``code``.

    ``stage`` is how far the exchange got when it failed: ``connect`` (greeting, EHLO, TLS,
    login), ``mail``, ``rcpt``, ``data`` (the DATA command, before the server's 354), or
    ``message`` (after the 354: the body had been written and the final reply was awaited). A
    failure without a reply at ``message`` may hide a message the server did accept, so it must
    never be resent blindly; before that stage the server cannot have the message. The default
    ``connect`` fits callers that never reach a server (the outbox).
    """

    def __init__(self, recipient: str, reply: str, *, code: int | None = None,
                 permanent: bool | None = None, stage: Stage = "connect") -> None:
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, not {stage!r}")
        self.recipient = recipient
        self.reply = reply
        self.code = code
        self.permanent = (code is not None and 500 <= code < 600) if permanent is None \
            else permanent
        self.stage: Stage = stage
        super().__init__(f"{recipient}: {self._kind()} failure: {reply}")

    @property
    def answered(self) -> bool:
        """The server gave a definite verdict (a 4xx or 5xx reply) rather than none at all."""
        return self.code is not None and 400 <= self.code < 600

    def _kind(self) -> str:
        if self.permanent:
            return "permanent"
        if self.stage == "message" and not self.answered:
            return "uncertain"  # the operator reads this in `status`: do not call it temporary
        return "temporary"


class InvalidToken(NewsletterError):
    """A signed link was forged, tampered with, expired, or made for another purpose."""
