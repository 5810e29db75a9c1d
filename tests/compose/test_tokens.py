from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote

import pytest

from newsletter.compose.tokens import PURPOSES, links_for, sign, verify
from newsletter.errors import ConfigError, InvalidToken

SECRET = "test-secret-0123456789"
EMAIL = "ada@example.org"
NOW = datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("purpose", sorted(PURPOSES))
def test_round_trip(purpose: str) -> None:
    token = sign(SECRET, purpose, EMAIL)
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", token)  # URL-safe as is
    assert verify(SECRET, purpose, token) == EMAIL


def test_round_trip_keeps_unusual_addresses() -> None:
    email = "o'brien+papers@sub.example.co.uk"
    assert verify(SECRET, "preferences", sign(SECRET, "preferences", email)) == email


def test_pinned_clock_gives_the_same_token() -> None:
    assert sign(SECRET, "unsubscribe", EMAIL, now=NOW) == sign(SECRET, "unsubscribe", EMAIL, now=NOW)


# Not the last character: base64 leaves its lowest bits unused, so some edits there decode to the
# same signature bytes (harmless, and not what this test is about).
@pytest.mark.parametrize("position", [0, 5, -2, -10])
def test_tampered_token_is_rejected(position: int) -> None:
    token = sign(SECRET, "unsubscribe", EMAIL)
    chars = list(token)
    chars[position] = "A" if chars[position] != "A" else "B"
    with pytest.raises(InvalidToken):
        verify(SECRET, "unsubscribe", "".join(chars))


def test_swapped_payload_is_rejected() -> None:
    """Someone else's email with my signature must not verify."""
    mine = sign(SECRET, "unsubscribe", EMAIL).split(".")
    theirs = sign(SECRET, "unsubscribe", "bob@example.org").split(".")
    with pytest.raises(InvalidToken):
        verify(SECRET, "unsubscribe", ".".join([theirs[0], *mine[1:]]))


def test_wrong_purpose_is_rejected() -> None:
    token = sign(SECRET, "preferences", EMAIL)
    with pytest.raises(InvalidToken):
        verify(SECRET, "unsubscribe", token)
    with pytest.raises(InvalidToken):
        verify(SECRET, "confirm", token)


def test_forged_with_another_secret_is_rejected() -> None:
    forged = sign("some-other-secret", "unsubscribe", EMAIL)
    with pytest.raises(InvalidToken):
        verify(SECRET, "unsubscribe", forged)


def test_expired_token_is_rejected() -> None:
    token = sign(SECRET, "confirm", EMAIL, now=NOW - timedelta(days=3))
    with pytest.raises(InvalidToken, match="expired"):
        verify(SECRET, "confirm", token, max_age=86400, now=NOW)
    # Within its age, and without a max_age, the same token is fine.
    assert verify(SECRET, "confirm", token, max_age=4 * 86400, now=NOW) == EMAIL
    assert verify(SECRET, "confirm", token, now=NOW) == EMAIL


def test_expired_against_the_real_clock() -> None:
    token = sign(SECRET, "confirm", EMAIL)
    with pytest.raises(InvalidToken, match="expired"):
        verify(SECRET, "confirm", token, max_age=-1)
    token = sign(SECRET, "confirm", EMAIL, now=datetime.now(timezone.utc) - timedelta(hours=2))
    with pytest.raises(InvalidToken, match="expired"):
        verify(SECRET, "confirm", token, max_age=3600)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "x" * 5000, "..", "é.é.é"])
def test_garbage_is_rejected(token: str) -> None:
    with pytest.raises(InvalidToken):
        verify(SECRET, "unsubscribe", token)


def test_unknown_purpose_and_empty_secret_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="purpose"):
        sign(SECRET, "login", EMAIL)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        sign("", "unsubscribe", EMAIL)


def test_invalid_token_is_a_newsletter_error_with_a_readable_message() -> None:
    with pytest.raises(InvalidToken) as info:
        verify(SECRET, "unsubscribe", sign("other", "unsubscribe", EMAIL))
    assert "unsubscribe link" in str(info.value)


def test_links_for() -> None:
    links = links_for(EMAIL, secret=SECRET, base_url="https://papers.example.org/",
                      mailto="unsubscribe@example.org", now=NOW)
    unsub = links.unsubscribe_url.removeprefix("https://papers.example.org/unsubscribe/")
    prefs = links.preferences_url.removeprefix("https://papers.example.org/preferences/")
    assert "/" not in unsub and "/" not in prefs
    assert verify(SECRET, "unsubscribe", unsub) == EMAIL
    assert verify(SECRET, "preferences", prefs) == EMAIL
    assert links.unsubscribe_mailto == f"mailto:unsubscribe@example.org?subject=unsubscribe%20{unsub}"


def test_links_for_quotes_the_mailto_address() -> None:
    links = links_for(EMAIL, secret=SECRET, base_url="https://x.example",
                      mailto="list+unsub@example.org")
    address, _, query = links.unsubscribe_mailto.removeprefix("mailto:").partition("?")
    assert unquote(address) == "list+unsub@example.org"
    assert " " not in links.unsubscribe_mailto
    assert query.startswith("subject=unsubscribe%20")
    token = unquote(query.removeprefix("subject=")).removeprefix("unsubscribe ")
    assert verify(SECRET, "unsubscribe", token) == EMAIL
