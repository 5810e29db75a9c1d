"""Signed tokens for the links in every email (unsubscribe, preferences, sign-up confirmation).

A token is the subscriber's email signed with HMAC (itsdangerous), salted with its purpose so a
preferences token can never unsubscribe anybody. Only a purpose that should expire (``confirm``)
is stamped with the time it was made, checked with ``max_age``; the links printed in digests
carry no time, so they work for as long as the email is kept, and the same digest renders to
the same bytes whenever it is composed (``preview`` shows exactly what ``send`` sends). No database row is
needed to check a link, and itsdangerous compares signatures in constant time.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import time
from datetime import datetime
from typing import Any
from urllib.parse import quote

from itsdangerous import (
    BadData,
    SignatureExpired,
    TimestampSigner,
    URLSafeSerializer,
    URLSafeTimedSerializer,
)

from newsletter.errors import ConfigError, InvalidToken
from newsletter.models import SubscriberLinks

PURPOSES = frozenset({"unsubscribe", "preferences", "confirm"})
EXPIRING = frozenset({"confirm"})
# Real tokens are ~100 characters; refusing giant ones keeps hostile input cheap to reject.
MAX_TOKEN_LENGTH = 1000
# RFC 6068 lets these stand unescaped in a mailto: address ("," would start a second address).
_MAILTO_SAFE = "@!$'()*+;:"


class _ClockSigner(TimestampSigner):
    """A TimestampSigner whose clock can be pinned, so tests and previews get stable tokens."""

    def __init__(self, *args: Any, clock: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(time.time()) if self._clock is None else self._clock


def _serializer(secret: str | bytes, purpose: str,
                now: datetime | None) -> URLSafeSerializer | URLSafeTimedSerializer:
    if not secret:
        raise ConfigError("the secret key is empty: set NEWSLETTER_SECRET_KEY to a long random string")
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}; expected one of {sorted(PURPOSES)}")
    if purpose not in EXPIRING:
        return _lasting_serializer(secret, purpose)
    clock = None if now is None else int(now.timestamp())
    return URLSafeTimedSerializer(
        secret,
        salt=f"newsletter/{purpose}",
        signer=_ClockSigner,
        signer_kwargs={"clock": clock},
    )


@functools.lru_cache(maxsize=16)
def _lasting_serializer(secret: str | bytes, purpose: str) -> URLSafeSerializer:
    """One per key and purpose: a run signs two links for every subscriber."""
    return URLSafeSerializer(secret, salt=f"newsletter/{purpose}")


def sign(secret: str | bytes, purpose: str, email: str, *, now: datetime | None = None) -> str:
    """A URL-safe token that proves ``email`` was given ``purpose`` by whoever holds ``secret``.

    ``now`` pins the issue time (tests, reproducible previews); it defaults to the clock.
    """
    return _serializer(secret, purpose, now).dumps(email)


def verify(
    secret: str | bytes,
    purpose: str,
    token: str,
    max_age: float | None = None,
    *,
    now: datetime | None = None,
) -> str:
    """The email inside ``token``; raises InvalidToken when it is forged, tampered with, made for
    another purpose or older than ``max_age`` seconds (``None``: never expires)."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("the link is malformed: ask for a new one")
    serializer = _serializer(secret, purpose, now)
    try:
        if isinstance(serializer, URLSafeTimedSerializer):
            email = serializer.loads(token, max_age=max_age)
        else:
            email = serializer.loads(token)
    except SignatureExpired as exc:
        raise InvalidToken(f"the {purpose} link has expired: ask for a new one") from exc
    except BadData as exc:
        raise InvalidToken(f"the {purpose} link is not valid (changed or not ours)") from exc
    if not isinstance(email, str) or "@" not in email:
        # Only reachable with the right secret, i.e. a token signed by some other code path.
        raise InvalidToken(f"the {purpose} link does not carry an email address")
    return email


def links_for(
    email: str,
    *,
    secret: str | bytes,
    base_url: str,
    mailto: str,
    now: datetime | None = None,
) -> SubscriberLinks:
    """The signed per-subscriber links that the footer and the List-Unsubscribe header use."""
    base = base_url.rstrip("/")
    # Tokens are URL-safe base64 with "." between parts: nothing to escape in a path.
    unsubscribe = sign(secret, "unsubscribe", email, now=now)
    preferences = sign(secret, "preferences", email, now=now)
    subject = quote(f"unsubscribe {unsubscribe}", safe="")
    return SubscriberLinks(
        unsubscribe_url=f"{base}/unsubscribe/{unsubscribe}",
        preferences_url=f"{base}/preferences/{preferences}",
        unsubscribe_mailto=f"mailto:{quote(mailto, safe=_MAILTO_SAFE)}?subject={subject}",
    )


CLICK_SALT = "newsletter/click"


def click_url(secret: str, base_url: str, subscriber_id: int, paper_id: str) -> str:
    """The tracked link of one paper in one reader's digest (``NEWSLETTER_CLICK_TRACKING``).
    It names the reader and the paper, never a destination: the redirect goes to the paper's
    own URL from the catalog, so it cannot be turned into an open redirect."""
    token = URLSafeSerializer(secret, salt=CLICK_SALT).dumps([subscriber_id, paper_id])
    return f"{base_url.rstrip('/')}/click/{token}"


def read_click_token(secret: str, token: str) -> tuple[int, str] | None:
    if len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        value = URLSafeSerializer(secret, salt=CLICK_SALT).loads(token)
    except BadData:
        return None
    if (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)
            and isinstance(value[1], str)):
        return value[0], value[1]
    return None


# -- VERP: a bounce address per subscriber and edition -----------------------------------------

BOUNCE_SALT = b"newsletter/bounce"
_BOUNCE_TAG = re.compile(r"\+(\d{1,12})\.(\d{4}-\d{2}-\d{2}|\d{4}-[wW]\d{2})\.([0-9a-fA-F]{10})@")


def bounce_address(secret: str, address: str, subscriber_id: int, edition: str) -> str:
    """The envelope sender (MAIL FROM) of one digest: ``bounces+42.2026-11-23.<mac>@domain``
    for the configured ``bounces@domain`` (NEWSLETTER_BOUNCE_ADDRESS). A bounce comes back to
    it and names the subscriber and the edition; the MAC keeps a forged bounce from naming
    anyone else. Lower case but for the edition's W, and under RFC 5321's 64 characters."""
    local, _, domain = address.rpartition("@")
    tag = f"{subscriber_id}.{edition}"
    return f"{local}+{tag}.{_bounce_mac(secret, tag)}@{domain}"


def read_bounce_address(secret: str, address: str) -> tuple[int, str] | None:
    """(subscriber id, edition) from an address ``bounce_address`` made with ``secret``; None
    for any other address, or a forged or damaged one. Case does not matter: some servers
    lower-case the local part."""
    match = _BOUNCE_TAG.search(address)
    if match is None:
        return None
    subscriber_id, edition = int(match.group(1)), match.group(2).upper()
    expected = _bounce_mac(secret, f"{subscriber_id}.{edition}")
    if not hmac.compare_digest(expected, match.group(3).lower()):
        return None
    return subscriber_id, edition


def _bounce_mac(secret: str, tag: str) -> str:
    # 40 bits: enough that a forger cannot guess one; short enough for a local part
    return hmac.new(secret.encode(), BOUNCE_SALT + tag.lower().encode(), hashlib.sha256
                    ).hexdigest()[:10]
