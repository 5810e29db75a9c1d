"""The tokens in our links: opaque, per person, revocable; and one-time random tokens.

**Subscriber links** (unsubscribe, preferences, tracked paper clicks, and whatever purpose comes
next): ``<link_id>.<mac>``, or ``<link_id>.<item>.<mac>`` for a purpose about one thing (a
paper). ``link_id`` is a random handle stored with the subscriber (no address, no database id);
``item`` is the paper id in URL-safe base64; ``mac`` is the first 128 bits of

    HMAC-SHA256(server secret, "newsletter-link-v2" | purpose | link_id | link_key | item)

where ``link_key`` is a random key stored with the subscriber and loaded with them, so making a
link costs one HMAC and no database write. A link therefore names nobody, is good for one
purpose only, cannot be made without both the server's secret and the person's key, and dies
when the person's key is replaced ("sign out every link"). The key replaced is kept for a while
and still opens the purposes whose ``grace`` says so: unsubscribe links keep working 90 days
(mailbox providers retry the one-click POST long after delivery). No timestamp is in a link, so
the same digest renders to the same bytes whenever it is composed (``preview`` == ``send``).

A new purpose is one line in ``PURPOSES`` (and a route). "More like this" and "Less like this"
(``more``, ``less``) are two purposes about one paper: the link says the choice, so a copied
"more" link can never record "less". They open only with the person's current key (no grace):
"sign out every link" stops them at once.

**One-time tokens** (sign-up confirmation, the operator's session cookie): 256 random bits,
stored only as their SHA-256, so the database holding them cannot be used to make a working link.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Callable, Literal
from urllib.parse import quote

from itsdangerous import BadData, URLSafeSerializer

from newsletter.errors import ConfigError
from newsletter.models import Subscriber, SubscriberLinks

UNSUBSCRIBE_GRACE = timedelta(days=90)


@dataclass(frozen=True)
class Purpose:
    name: str
    grace: timedelta = timedelta(0)  # how long a replaced key still opens links of this purpose
    item: bool = False  # the link is about one thing too (a paper id)


PURPOSES = {p.name: p for p in (
    Purpose("unsubscribe", grace=UNSUBSCRIBE_GRACE),
    Purpose("preferences"),
    # Only counts a click and redirects to the catalog's URL for the paper: an old email's
    # paper links keep working as long as its unsubscribe link does.
    Purpose("click", grace=UNSUBSCRIBE_GRACE, item=True),
    # A reader's "More like this" / "Less like this" on one paper (web/feedback.py).
    Purpose("more", item=True),
    Purpose("less", item=True),
)}
FEEDBACK = ("more", "less")
MAX_TOKEN_LENGTH = 600  # real ones are ~35 characters (+ the paper id): refuse giant ones cheaply
MAC_BYTES = 16
_PART = re.compile(r"[A-Za-z0-9_-]{1,400}")
_LINK_ID = re.compile(r"[A-Za-z0-9_-]{12}")  # store/schema.py's new_link_id()
_MAC = re.compile(r"[A-Za-z0-9_-]{22}")  # 16 bytes, unpadded base64
# RFC 6068 lets these stand unescaped in a mailto: address ("," would start a second address).
_MAILTO_SAFE = "@!$'()*+;:"


@dataclass(frozen=True)
class Parsed:
    """A token's parts, read without any key: nothing here is trusted until ``check`` says so."""

    link_id: str
    item: str | None
    mac: str


@lru_cache(maxsize=8)
def _keyed(secret: str) -> hmac.HMAC:
    if not secret:
        raise ConfigError("the secret key is empty: set NEWSLETTER_SECRET_KEY to a long random "
                          "string")
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def _mac(secret: str, purpose: str, link_id: str, link_key: str, item: str | None) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown link purpose {purpose!r}; expected one of {sorted(PURPOSES)}")
    mac = _keyed(secret).copy()  # the secret's key schedule, computed once
    mac.update(b"\0".join((b"newsletter-link-v2", purpose.encode(), link_id.encode(),
                           link_key.encode(), (item or "").encode())))
    return base64.urlsafe_b64encode(mac.digest()[:MAC_BYTES]).rstrip(b"=").decode()


def make(secret: str, purpose: str, link_id: str, link_key: str, item: str | None = None) -> str:
    """The token of one link; ``item`` for purposes about one thing (a paper id)."""
    if not _LINK_ID.fullmatch(link_id) or not link_key:
        raise ValueError("a link needs the subscriber's link_id and link_key: store the "
                         "subscriber first")
    if PURPOSES.get(purpose, Purpose(purpose)).item != (item is not None):
        raise ValueError(f"{purpose} links {'need' if item is None else 'take no'} item")
    mac = _mac(secret, purpose, link_id, link_key, item)
    if item is None:
        return f"{link_id}.{mac}"
    encoded = base64.urlsafe_b64encode(item.encode()).rstrip(b"=").decode()
    return f"{link_id}.{encoded}.{mac}"


def parse(token: str, purpose: str) -> Parsed | None:
    """The parts of a well-formed token for ``purpose``; None for anything else."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return None
    parts = token.split(".")
    wanted = 3 if PURPOSES[purpose].item else 2
    if (len(parts) != wanted or not _LINK_ID.fullmatch(parts[0])
            or not _MAC.fullmatch(parts[-1]) or not all(_PART.fullmatch(p) for p in parts)):
        return None
    item = None
    if wanted == 3:
        try:
            item = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)).decode()
        except (binascii.Error, ValueError):
            return None
    return Parsed(parts[0], item, parts[-1])


Verdict = Literal["current", "retired"]


def check(secret: str, purpose: str, parsed: Parsed, link_key: str,
          retired: tuple[tuple[str, datetime], ...], now: datetime) -> Verdict | None:
    """"current": made with the person's key; "retired": with a key replaced less than the
    purpose's grace ago; None: not a link of ours for this purpose. Constant-time compares."""
    expected = _mac(secret, purpose, parsed.link_id, link_key, parsed.item)
    if hmac.compare_digest(expected, parsed.mac):
        return "current"
    grace = PURPOSES[purpose].grace
    for key, when in retired:
        if now - when < grace and hmac.compare_digest(
                _mac(secret, purpose, parsed.link_id, key, parsed.item), parsed.mac):
            return "retired"
    return None


def links_for(subscriber: Subscriber, *, secret: str, base_url: str,
              mailto: str) -> SubscriberLinks:
    """The per-subscriber links that the footer and the List-Unsubscribe header use."""
    base = base_url.rstrip("/")
    unsubscribe = make(secret, "unsubscribe", subscriber.link_id, subscriber.link_key)
    preferences = make(secret, "preferences", subscriber.link_id, subscriber.link_key)
    subject = quote(f"unsubscribe {unsubscribe}", safe="")
    return SubscriberLinks(
        unsubscribe_url=f"{base}/unsubscribe/{unsubscribe}",
        preferences_url=f"{base}/preferences/{preferences}",
        unsubscribe_mailto=f"mailto:{quote(mailto, safe=_MAILTO_SAFE)}?subject={subject}",
        feedback=_feedback_links(secret, base, subscriber.link_id, subscriber.link_key),
    )


def _feedback_links(secret: str, base: str, link_id: str, link_key: str
                    ) -> Callable[[str, str], str]:
    """``feedback_url`` for one reader, made ~2x faster for the 2 links of each paper of each
    digest: the MAC's input up to the paper id is hashed once per reader and choice (the same
    bytes ``_mac`` hashes, so the same tokens)."""
    started: dict[str, hmac.HMAC] = {}
    for verdict in FEEDBACK:
        state = _keyed(secret).copy()
        state.update(b"\0".join((b"newsletter-link-v2", verdict.encode(), link_id.encode(),
                                 link_key.encode(), b"")))
        started[verdict] = state

    def feedback(paper_id: str, verdict: str) -> str:
        if verdict not in started:
            raise ValueError(f"verdict must be one of {FEEDBACK}, not {verdict!r}")
        state = started[verdict].copy()
        state.update(paper_id.encode())
        mac = base64.urlsafe_b64encode(state.digest()[:MAC_BYTES]).rstrip(b"=").decode()
        item = base64.urlsafe_b64encode(paper_id.encode()).rstrip(b"=").decode()
        return f"{base}/{verdict}/{link_id}.{item}.{mac}"
    return feedback


def feedback_url(secret: str, base_url: str, subscriber: Subscriber, paper_id: str,
                 verdict: str) -> str:
    """The "More like this" (``verdict`` "more") or "Less like this" ("less") link of one paper
    in one reader's digest. Opening it records nothing (a page with one button does)."""
    if verdict not in FEEDBACK:
        raise ValueError(f"verdict must be one of {FEEDBACK}, not {verdict!r}")
    token = make(secret, verdict, subscriber.link_id, subscriber.link_key, paper_id)
    return f"{base_url.rstrip('/')}/{verdict}/{token}"


def click_url(secret: str, base_url: str, subscriber: Subscriber, paper_id: str) -> str:
    """The tracked link of one paper in one reader's digest (``NEWSLETTER_CLICK_TRACKING``).
    It names the paper, never a destination: the redirect goes to the paper's own URL from the
    catalog, so it cannot be turned into an open redirect."""
    token = make(secret, "click", subscriber.link_id, subscriber.link_key, paper_id)
    return f"{base_url.rstrip('/')}/click/{token}"


# -- one-time tokens ----------------------------------------------------------------------------

def one_time_token() -> tuple[str, str]:
    """A new random token and the hash to store instead of it."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


# -- links signed before per-subscriber keys ----------------------------------------------------

def legacy_unsubscribe_address(secret: str, token: str) -> str | None:
    """The address in an unsubscribe link signed by an older version (the address signed with
    itsdangerous), which the web app honours for a while after the upgrade (store/schema.py's
    ``legacy_unsubscribe_until``) so that mail delivered before it can still unsubscribe."""
    if not isinstance(token, str) or len(token) > 1000:
        return None
    try:
        email = URLSafeSerializer(secret, salt="newsletter/unsubscribe").loads(token)
    except BadData:
        return None
    return email if isinstance(email, str) and "@" in email else None


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
