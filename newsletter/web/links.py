"""Checking the signed tokens in our URLs (their rules live in ``newsletter.compose.tokens``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from newsletter.compose.tokens import verify
from newsletter.errors import InvalidToken


@dataclass(frozen=True)
class Checked:
    email: str | None  # None: refused
    expired: bool = False  # the signature is ours and right, only too old


def check(secret: str, purpose: str, token: str, max_age: timedelta | None = None) -> Checked:
    """The email a token was made for, if it is ours, intact, for ``purpose`` and young enough.

    The signature is compared in constant time by itsdangerous. An expired token is told apart
    (a second check without the age limit) only to say "ask for a new one" rather than "broken".
    """
    seconds = max_age.total_seconds() if max_age is not None else None
    try:
        return Checked(verify(secret, purpose, token, seconds))
    except InvalidToken:
        pass
    if seconds is not None:
        try:
            verify(secret, purpose, token, None)
            return Checked(None, expired=True)
        except InvalidToken:
            pass
    return Checked(None)
