"""The tokens in our links (newsletter/compose/tokens.py): opaque, one purpose each, made from
the subscriber's own key, revocable, and stable (no clock in them)."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote

import pytest

from newsletter.compose.tokens import (
    PURPOSES,
    UNSUBSCRIBE_GRACE,
    check,
    click_url,
    feedback_url,
    links_for,
    make,
    one_time_token,
    parse,
    token_hash,
)
from newsletter.errors import ConfigError
from newsletter.models import Subscriber

SECRET = "test-secret-0123456789"
NOW = datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc)
ADA = Subscriber(email="ada@example.org", name="Ada", topics=("GNN",), link_id="Q2x9aW1kZ3Jh",
                 link_key="ada-key")


def verdict(token: str, purpose: str, key: str = "ada-key",
            retired: tuple[tuple[str, datetime], ...] = ()) -> str | None:
    parsed = parse(token, purpose)
    return None if parsed is None else check(SECRET, purpose, parsed, key, retired, NOW)


@pytest.mark.parametrize("purpose", ["unsubscribe", "preferences"])
def test_a_token_is_url_safe_short_and_opens_its_own_purpose_only(purpose: str) -> None:
    token = make(SECRET, purpose, ADA.link_id, ADA.link_key)
    assert re.fullmatch(r"[A-Za-z0-9_.-]{30,40}", token)
    assert verdict(token, purpose) == "current"
    other = "preferences" if purpose == "unsubscribe" else "unsubscribe"
    assert verdict(token, other) is None


def test_a_token_names_no_address() -> None:
    token = make(SECRET, "unsubscribe", ADA.link_id, ADA.link_key)
    for part in token.split("."):
        decoded = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        assert b"ada" not in decoded.lower() and b"example" not in decoded


def test_the_same_link_every_time_so_preview_is_send() -> None:
    assert links_for(ADA, secret=SECRET, base_url="https://x", mailto="u@x") == \
        links_for(ADA, secret=SECRET, base_url="https://x", mailto="u@x")


@pytest.mark.parametrize("position", [0, 5, 13, -2, -10])
def test_a_changed_token_is_refused(position: int) -> None:
    chars = list(make(SECRET, "unsubscribe", ADA.link_id, ADA.link_key))
    chars[position] = "A" if chars[position] != "A" else "B"
    assert verdict("".join(chars), "unsubscribe") is None


def test_another_secret_or_another_key_makes_a_token_that_does_not_open() -> None:
    assert verdict(make("other-secret", "preferences", ADA.link_id, "ada-key"),
                   "preferences") is None
    assert verdict(make(SECRET, "preferences", ADA.link_id, "someone-else"),
                   "preferences") is None


def test_a_replaced_key_keeps_unsubscribing_for_the_grace_only() -> None:
    old = make(SECRET, "unsubscribe", ADA.link_id, "old-key")
    fresh = (("old-key", NOW - UNSUBSCRIBE_GRACE + timedelta(days=1)),)
    stale = (("old-key", NOW - UNSUBSCRIBE_GRACE - timedelta(days=1)),)
    assert verdict(old, "unsubscribe", retired=fresh) == "retired"
    assert verdict(old, "unsubscribe", retired=stale) is None
    prefs = make(SECRET, "preferences", ADA.link_id, "old-key")
    assert verdict(prefs, "preferences", retired=fresh) is None  # no grace for preferences


def test_a_click_token_names_its_paper_and_only_that() -> None:
    url = click_url(SECRET, "https://x/", ADA, "2403.01234")
    token = url.removeprefix("https://x/click/")
    parsed = parse(token, "click")
    assert parsed is not None and parsed.item == "2403.01234"
    assert verdict(token, "click") == "current"
    link_id, _, mac = token.split(".")
    other = base64.urlsafe_b64encode(b"9999.99999").rstrip(b"=").decode()
    assert verdict(f"{link_id}.{other}.{mac}", "click") is None


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "x" * 5000, "..", "é.é", "a.b/c"])
def test_garbage_is_refused_before_any_lookup(token: str) -> None:
    assert parse(token, "unsubscribe") is None


def test_programming_errors_are_loud() -> None:
    with pytest.raises(ValueError, match="purpose"):
        make(SECRET, "login", ADA.link_id, ADA.link_key)
    with pytest.raises(ValueError, match="store the subscriber"):
        make(SECRET, "unsubscribe", "", "")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        make("", "unsubscribe", ADA.link_id, ADA.link_key)
    assert set(PURPOSES) >= {"unsubscribe", "preferences", "click", "more", "less"}


def test_one_time_tokens_are_random_and_stored_as_a_hash() -> None:
    token, stored = one_time_token()
    assert token not in stored and stored == token_hash(token) and len(token) >= 40
    assert one_time_token()[0] != token


def test_links_for() -> None:
    links = links_for(ADA, secret=SECRET, base_url="https://papers.example.org/",
                      mailto="unsubscribe@example.org")
    unsub = links.unsubscribe_url.removeprefix("https://papers.example.org/unsubscribe/")
    prefs = links.preferences_url.removeprefix("https://papers.example.org/preferences/")
    assert verdict(unsub, "unsubscribe") == "current"
    assert verdict(prefs, "preferences") == "current"
    assert links.unsubscribe_mailto == f"mailto:unsubscribe@example.org?subject=unsubscribe%20{unsub}"


def test_links_for_quotes_the_mailto_address() -> None:
    links = links_for(ADA, secret=SECRET, base_url="https://x.example",
                      mailto="list+unsub@example.org")
    address, _, query = links.unsubscribe_mailto.removeprefix("mailto:").partition("?")
    assert unquote(address) == "list+unsub@example.org"
    assert " " not in links.unsubscribe_mailto
    token = unquote(query.removeprefix("subject=")).removeprefix("unsubscribe ")
    assert verdict(token, "unsubscribe") == "current"


# -- "More like this" / "Less like this" --------------------------------------------------------

def test_a_feedback_link_names_its_paper_and_its_choice_and_opens_for_that_choice_only() -> None:
    for choice, other in (("more", "less"), ("less", "more")):
        url = feedback_url(SECRET, "https://x/", ADA, "2403.01234", choice)
        token = url.removeprefix(f"https://x/{choice}/")
        parsed = parse(token, choice)
        assert parsed is not None and parsed.item == "2403.01234"
        assert verdict(token, choice) == "current"
        assert verdict(token, other) is None  # a "more" link can never record "less"
        assert verdict(token, "click") is None
        link_id, _, mac = token.split(".")
        another = base64.urlsafe_b64encode(b"2403.99999").rstrip(b"=").decode()
        assert verdict(f"{link_id}.{another}.{mac}", choice) is None  # nor another paper


def test_a_signed_out_feedback_link_stops_at_once() -> None:
    token = make(SECRET, "less", ADA.link_id, "old-key", "2403.01234")
    just_now = (("old-key", NOW - timedelta(seconds=1)),)
    assert verdict(token, "less", retired=just_now) is None
    assert verdict(token, "less", key="old-key") == "current"


def test_links_for_makes_the_feedback_links_of_every_paper() -> None:
    links = links_for(ADA, secret=SECRET, base_url="https://x.example/", mailto="u@x")
    assert links.feedback is not None
    for paper in ("p1", "2403.01234", "graph-neural-networks-é", "x" * 200):
        for choice in ("more", "less"):  # the per-reader fast path makes the same tokens
            assert links.feedback(paper, choice) == feedback_url(
                SECRET, "https://x.example", ADA, paper, choice)
    assert links.feedback("p1", "more") != links.feedback("p2", "more")
    with pytest.raises(ValueError, match="verdict"):
        links.feedback("p1", "maybe")
