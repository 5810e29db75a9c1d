"""Sign-up with double opt-in, over HTTP (newsletter/web/join.py): the form, the confirmation
email, and its link, which asks before it confirms. Refusals are in test_web_security.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient
from web_site import ADA, Site, confirm, confirmation_path, csrf_in, site  # noqa: F401

from newsletter.compose import tokens
from newsletter.models import Subscriber
from newsletter.store.engine import utcnow
from newsletter.store.signups import Limits, confirm_signup, pending_signup, request_signup
from newsletter.store.subscribers import (
    load_subscribers,
    subscriber_status,
    unsubscribe,
    update_preferences,
)


def subscribe(site: Site, address: str, topics: str = "GNN", client: str = "testclient") -> Any:
    """The sign-up form, posted from ``client`` (the address the server sees)."""
    client_app = site.client if client == "testclient" else TestClient(
        site.client.app, client=(client, 5000))
    return client_app.post("/subscribe", data={"email": address, "topics": topics,
                                               "csrf": csrf_in(client_app.get("/").text)})

# -- the form -----------------------------------------------------------------------------------

def test_signing_up_sends_a_confirmation_and_only_its_button_activates(site: Site) -> None:
    response = site.client.post("/subscribe", data={
        "email": "New.Reader@Example.org", "topics": "diffusion models, LLM agents",
        "csrf": site.csrf()})
    assert response.status_code == 200 and "Check your inbox" in response.text
    assert site.row("new.reader@example.org") == {}  # nothing until it is confirmed
    (message,) = site.outbox()
    assert message["To"].addresses[0].addr_spec == "new.reader@example.org"
    assert message["Auto-Submitted"] == "auto-generated"
    confirmed = confirm(site, confirmation_path(message))
    assert confirmed.status_code == 200 and "You are subscribed" in confirmed.text
    row = site.row("new.reader@example.org")
    assert (row["status"], row["origin"], row["topics"]) == (
        "active", "web", ["diffusion models", "LLM agents"])
    assert site.row("new.reader@example.org") == row


# Finding 2: the form was a spam cannon (50 confirmation emails carrying the form's text to 50
# addresses in 2.4 s; the only limit was per exact address).
def test_the_confirmation_email_carries_nothing_the_form_sender_wrote(site: Site) -> None:
    phish = "URGENT your account is locked: verify at http://phish.example/login"
    assert subscribe(site, "victim@example.org", topics=phish).status_code == 200
    (message,) = site.outbox()
    for part in ("plain", "html"):
        body = message.get_body((part,)).get_content()  # type: ignore[union-attr]
        assert "phish" not in body and "URGENT" not in body
    page = site.client.get(confirmation_path(message))  # the topics are shown there instead
    assert phish in page.text


def test_sign_ups_are_limited_per_client_network_and_in_all(site: Site) -> None:
    answers = [subscribe(site, f"victim+{n}@example.org", client="203.0.113.7").status_code
               for n in range(8)]
    assert answers == [200] * 5 + [429] * 3
    assert len(site.outbox()) == 5
    # another network may still sign up; an IPv6 client is its /64, any address in it
    for n in range(5):
        assert subscribe(site, f"v6+{n}@example.org", client=f"2001:db8:1:2::{n + 1:x}"
                         ).status_code == 200
    assert subscribe(site, "v6@example.org", client="2001:db8:1:2:ffff::1").status_code == 429
    assert subscribe(site, "reader@example.org", client="198.51.100.1").status_code == 200
    # and all clients together stop at the global limit
    site.client.app.state.web.signup_limits = Limits(per_hour=11)
    refused = subscribe(site, "late@example.org", client="192.0.2.55")
    assert refused.status_code == 429 and "paused" in refused.text
    assert len(site.outbox()) == 11


# Finding 6: a used confirmation link yielded the permanent preferences link, and a second
# sign-up for a pending address silently replaced its topics.
def test_a_used_confirmation_link_shows_nothing_private(site: Site) -> None:
    subscribe(site, "new@example.org", topics="diffusion models")
    path = confirmation_path(site.outbox()[0])
    assert confirm(site, path).status_code == 200
    for reused in (site.client.get(path), site.client.post(path, data={"csrf": site.csrf()}),
                   TestClient(site.client.app).get(path)):
        assert reused.status_code == 400 and "already used" in reused.text
        assert "/preferences/" not in reused.text and "new@example.org" not in reused.text
        assert "diffusion" not in reused.text and "<form" not in reused.text


def test_a_stranger_cannot_change_a_pending_sign_up(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    subscribe(site, "new@example.org", topics="diffusion models")
    owners_link = confirmation_path(site.outbox()[0])
    assert subscribe(site, "new@example.org", "cooking", client="192.0.2.9").status_code == 200
    later = utcnow() + timedelta(minutes=3)  # past the per-address gap: the stranger's request
    monkeypatch.setattr(site.client.app.state.web, "now", lambda: later)  # gets its own link
    assert subscribe(site, "new@example.org", "cooking", client="192.0.2.9").status_code == 200
    (latest,) = site.outbox()  # the outbox keeps one sign-up email per address: the newest
    assert confirmation_path(latest) != owners_link
    page = site.client.get(owners_link)
    assert "diffusion models" in page.text and "cooking" not in page.text
    confirm(site, owners_link)
    assert site.row("new@example.org")["topics"] == ["diffusion models"]


def test_the_signup_answer_is_the_same_whether_or_not_the_address_is_subscribed(
        site: Site) -> None:
    answers = []
    for address in (ADA, "stranger@example.org"):
        response = site.client.post("/subscribe", data={"email": address, "topics": "GNN",
                                                        "csrf": site.csrf()})
        answers.append((response.status_code, response.text.replace(address, "ADDRESS")))
    assert answers[0] == answers[1]
    already, confirmation = sorted(site.outbox(), key=lambda m: str(m["To"]))
    assert "already subscribed" in already["Subject"] and "/confirm/" not in already.as_string()
    assert "/preferences/" in already.get_body(("plain",)).get_content()
    assert "/confirm/" in confirmation.get_body(("plain",)).get_content()
    assert site.row(ADA)["topics"] == ["GNN", "graph contrastive learning"]  # untouched


def test_resubmitting_the_form_sends_at_most_one_email_per_address_in_two_minutes(
        site: Site) -> None:
    for _ in range(3):
        site.client.post("/subscribe", data={"email": "x@example.org", "topics": "GNN",
                                             "csrf": site.csrf()})
    assert len(site.outbox()) == 1


# -- the confirmation link ----------------------------------------------------------------------

def test_opening_the_confirmation_link_only_asks_with_one_button(site: Site) -> None:
    # Mail scanners and link previews fetch links: a GET must not subscribe anybody.
    site.client.post("/subscribe", data={"email": "new@example.org", "csrf": site.csrf(),
                                         "topics": "diffusion models, LLM agents"})
    path = confirmation_path(site.outbox()[0])
    for _ in range(2):
        page = site.client.get(path)
        assert page.status_code == 200 and "Confirm your subscription" in page.text
        assert page.text.count("<button") == 1 and 'method="post"' in page.text
        assert "new@example.org" in page.text and "LLM agents" in page.text
    assert site.row("new@example.org") == {}
    # the button posts back to the same URL
    done = site.client.post(path, data={"csrf": csrf_in(page.text)})
    assert done.status_code == 200 and "You are subscribed" in done.text
    assert site.row("new@example.org")["status"] == "active"


def test_a_confirmation_link_used_up_and_unsubscribed_since_is_refused(site: Site) -> None:
    site.client.post("/subscribe", data={"email": "new@example.org", "topics": "GNN",
                                         "csrf": site.csrf()})
    path = confirmation_path(site.outbox()[0])
    confirm(site, path)
    unsubscribe(site.engine, "new@example.org")
    for response in (site.client.get(path), site.client.post(path, data={"csrf": site.csrf()})):
        assert response.status_code == 400 and "already used" in response.text
        assert "<form" not in response.text
    assert site.row("new@example.org")["status"] == "unsubscribed"


def test_an_expired_confirmation_link_is_refused(site: Site) -> None:
    token, token_hash = tokens.one_time_token()
    request_signup(site.engine, "late@example.org", ["GNN"], client="x", token_hash=token_hash,
                   limits=Limits(), now=utcnow() - timedelta(days=4))
    path = f"/confirm/{token}"
    for response in (site.client.get(path), site.client.post(path, data={"csrf": site.csrf()})):
        assert response.status_code == 400 and "expired" in response.text
        assert "<form" not in response.text
    assert site.row("late@example.org") == {}


# -- the store functions behind the pages, on SQLite and PostgreSQL -----------------------------

def test_sign_up_confirm_unsubscribe_and_preferences_in_the_store(engine: Engine) -> None:
    limits, first, second = Limits(), tokens.one_time_token()[1], tokens.one_time_token()[1]
    assert request_signup(engine, "A@x.org", ["GNN"], client="c", token_hash=first,
                          limits=limits).send
    again = request_signup(engine, "a@x.org", ["PDE"], client="c", token_hash=second,
                           limits=limits)
    assert not again.send and pending_signup(engine, second) is None  # within the gap: no row
    assert load_subscribers(engine, statuses=None) == []
    pending = pending_signup(engine, first)
    assert pending is not None and pending.topics == ("GNN",)
    sub = confirm_signup(engine, first)
    assert sub is not None and (sub.status, sub.topics, sub.origin) == ("active", ("GNN",), "web")
    assert sub.link_id and sub.link_key
    assert confirm_signup(engine, first) is None  # used up
    assert update_preferences(engine, Subscriber(email="a@x.org", name="A",
                                                 topics=("NAS",), max_papers=3))
    assert load_subscribers(engine)[0].topics == ("NAS",)
    assert unsubscribe(engine, "a@x.org") and unsubscribe(engine, "a@x.org")
    assert subscriber_status(engine, "a@x.org") == "unsubscribed"
    assert not unsubscribe(engine, "nobody@x.org")
    later = utcnow() + timedelta(minutes=3)
    verdict = request_signup(engine, "a@x.org", ["GNN"], client="c", token_hash=second,
                             limits=limits, now=later)
    assert (verdict.status, verdict.send) == ("unsubscribed", True)
    sub = confirm_signup(engine, second)
    assert sub is not None and (sub.status, sub.topics, sub.max_papers) == ("active", ("GNN",), 3)
