"""Sign-up with double opt-in, over HTTP (newsletter/web/join.py): the form, the confirmation
email, and its link, which asks before it confirms. Refusals are in test_web_security.py."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from web_site import ADA, Site, confirm, confirmation_path, csrf_in, link, site  # noqa: F401

from newsletter.models import Subscriber
from newsletter.store.schema import utcnow
from newsletter.store.subscribers import (
    confirm_signup,
    load_subscribers,
    request_signup,
    subscriber_status,
    unsubscribe,
    update_preferences,
)

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
    assert "diffusion models" in message.get_body(("plain",)).get_content()
    confirmed = confirm(site, confirmation_path(message))
    assert confirmed.status_code == 200 and "You are subscribed" in confirmed.text
    row = site.row("new.reader@example.org")
    assert (row["status"], row["origin"], row["topics"]) == (
        "active", "web", ["diffusion models", "LLM agents"])
    path = confirmation_path(message)
    for reused in (site.client.get(path), site.client.post(path, data={"csrf": site.csrf()})):
        assert reused.status_code == 200 and "already subscribed" in reused.text
    assert site.row("new.reader@example.org") == row


def test_the_signup_answer_is_the_same_whether_or_not_the_address_is_subscribed(
        site: Site) -> None:
    answers = []
    for address in (ADA, "stranger@example.org"):
        response = site.client.post("/subscribe", data={"email": address, "topics": "GNN",
                                                        "csrf": site.csrf()})
        answers.append((response.status_code, response.text.replace(address, "ADDRESS")))
    assert answers[0] == answers[1]
    already, confirmation = site.outbox()  # sorted by address: ada@ first
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


def test_an_expired_confirmation_link_is_refused_and_says_so(site: Site) -> None:
    site.client.post("/subscribe", data={"email": "late@example.org", "topics": "GNN",
                                         "csrf": site.csrf()})
    old = utcnow() - timedelta(days=4)
    path = link("confirm", "late@example.org", now=old)
    for response in (site.client.get(path), site.client.post(path, data={"csrf": site.csrf()})):
        assert response.status_code == 400 and "expired" in response.text
        assert "<form" not in response.text
    assert site.row("late@example.org") == {}


# -- the store functions behind the pages, on SQLite and PostgreSQL -----------------------------

def test_sign_up_confirm_unsubscribe_and_preferences_in_the_store(engine: Engine) -> None:
    gap = timedelta(minutes=2)
    assert request_signup(engine, "A@x.org", ["GNN"], resend_after=gap) == (None, True)
    assert request_signup(engine, "a@x.org", ["PDE"], resend_after=gap) == (None, False)
    assert load_subscribers(engine, statuses=None) == []
    sub = confirm_signup(engine, "a@x.org")
    assert sub is not None and (sub.status, sub.topics, sub.origin) == ("active", ("PDE",), "web")
    assert confirm_signup(engine, "a@x.org") is None  # used up
    assert update_preferences(engine, Subscriber(email="a@x.org", name="A",
                                                       topics=("NAS",), max_papers=3))
    assert load_subscribers(engine)[0].topics == ("NAS",)
    assert unsubscribe(engine, "a@x.org") and unsubscribe(engine, "a@x.org")
    assert subscriber_status(engine, "a@x.org") == "unsubscribed"
    assert not unsubscribe(engine, "nobody@x.org")
    assert request_signup(engine, "a@x.org", ["GNN"], resend_after=gap,
                                now=utcnow() + gap) == ("unsubscribed", True)
    sub = confirm_signup(engine, "a@x.org")
    assert sub is not None and (sub.status, sub.topics, sub.max_papers) == ("active", ("GNN",), 3)
