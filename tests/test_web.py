"""`newsletter serve` over HTTP (Starlette's TestClient): what each link and form does, and what
it refuses. The browser flows, end to end with real mail, are in test_web_browser.py."""

from __future__ import annotations

import email
import email.policy
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from newsletter import catalog, store, tokens
from newsletter.cli import app as cli_app
from newsletter.models import Paper, Subscriber
from newsletter.render import paper_url
from newsletter.settings import Settings
from newsletter.subscribers import load_subscribers
from newsletter.web import click_url, create_app

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-secret"
PASSWORD = "correct horse battery staple"
ADA = "ada@example.org"
EMMY = "emmy@example.org"


# -- the site under test ------------------------------------------------------------------------

def site_settings(tmp_path: Path, base_url: str = "http://testserver",
                  **overrides: Any) -> Settings:
    """Everything explicit: nothing from the environment or a .env file may point the tests at
    a real relay or database."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'n.db'}", "outbox_dir": tmp_path / "outbox",
        "secret_key": SECRET, "base_url": base_url, "admin_password": PASSWORD,
        "subscribers_dir": ROOT / "subscribers", "templates_dir": ROOT / "templates",
        "sources": [str(ROOT / "seeds")], **overrides}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def prepare(settings: Settings) -> Engine:
    """The shipped catalog (seeds/) and subscribers (subscribers/), as after a first `send`."""
    engine = store.connect(settings.database_url)
    catalog.ingest(engine, [ROOT / "seeds"], store.utcnow())
    found, _ = load_subscribers(settings.subscribers_dir)
    store.sync_subscribers(engine, found)
    return engine


def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("NEWSLETTER_") and name != "NEWSLETTER_SEMANTIC":
            monkeypatch.delenv(name)


@dataclass
class Site:
    settings: Settings
    engine: Engine
    client: TestClient

    def csrf(self) -> str:
        return csrf_in(self.client.get("/").text)

    def row(self, address: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            found = conn.execute(select(store.subscribers)
                                 .where(store.subscribers.c.email == address)).first()
        return dict(found._mapping) if found else {}

    def everyone(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(store.subscribers)
                                                           .order_by(store.subscribers.c.id))]

    def outbox(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
                for p in sorted(Path(self.settings.outbox_dir).rglob("*.eml"))]


def csrf_in(html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', html)[1]  # type: ignore[index]


def link(purpose: str, address: str, **kwargs: Any) -> str:
    return f"/{purpose}/{tokens.sign(SECRET, purpose, address, **kwargs)}"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    clean_environment(monkeypatch, tmp_path)
    settings = site_settings(tmp_path)
    engine = prepare(settings)
    with TestClient(create_app(settings, engine), follow_redirects=False) as client:
        yield Site(settings, engine, client)
    engine.dispose()


# -- unsubscribe --------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_the_rfc_8058_one_click_post_unsubscribes_at_once_without_a_redirect(
        site: Site, encoding: str) -> None:
    # Exactly what a mail provider sends: no cookie, no CSRF field, just the RFC's body.
    url = link("unsubscribe", ADA)
    client = TestClient(site.client.app, follow_redirects=False)
    if encoding == "urlencoded":
        response = client.post(url, content=b"List-Unsubscribe=One-Click",
                               headers={"content-type": "application/x-www-form-urlencoded"})
    else:
        response = client.post(url, files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert "location" not in response.headers
    assert "You are unsubscribed" in response.text
    assert site.row(ADA)["status"] == "unsubscribed"
    assert site.row(EMMY)["status"] == "active"


def test_opening_the_unsubscribe_link_only_asks_with_one_button(site: Site) -> None:
    response = site.client.get(link("unsubscribe", ADA))
    assert response.status_code == 200
    assert response.text.count("<button") == 1 and "Unsubscribe?" in response.text
    assert site.row(ADA)["status"] == "active"
    # the button posts back to the same URL
    form = {"csrf": csrf_in(response.text), "List-Unsubscribe": "One-Click"}
    assert site.client.post(link("unsubscribe", ADA), data=form).status_code == 200
    assert site.row(ADA)["status"] == "unsubscribed"
    again = site.client.get(link("unsubscribe", ADA))
    assert "already unsubscribed" in again.text


def test_a_post_without_the_one_click_body_or_a_csrf_field_changes_nothing(site: Site) -> None:
    response = site.client.post(link("unsubscribe", ADA), data={"something": "else"})
    assert response.status_code == 403
    assert site.row(ADA)["status"] == "active"


def test_an_unsubscribe_wins_over_the_subscriber_files_until_they_sign_up_again(site: Site) -> None:
    site.client.post(link("unsubscribe", ADA), data={"List-Unsubscribe": "One-Click"})
    found, _ = load_subscribers(site.settings.subscribers_dir)
    store.sync_subscribers(site.engine, found)
    assert site.row(ADA)["status"] == "unsubscribed"
    assert ADA not in [s.email for s in store.load_subscribers(site.engine)]
    # ...until Ada subscribes again herself
    site.client.post("/subscribe", data={"email": ADA, "topics": "GNN", "csrf": site.csrf()})
    (confirmation,) = site.outbox()
    site.client.get(confirmation_path(confirmation))
    store.sync_subscribers(site.engine, found)
    assert site.row(ADA)["status"] == "active"


# -- refused links ------------------------------------------------------------------------------

def tampered(token: str) -> str:
    chars = list(token)
    chars[5] = "A" if chars[5] != "A" else "B"
    return "".join(chars)


REFUSED = {
    "forged": lambda p, a: tokens.sign("another-secret", p, a),
    "tampered": lambda p, a: tampered(tokens.sign(SECRET, p, a)),
    "wrong purpose": lambda p, a: tokens.sign(
        SECRET, {"unsubscribe": "preferences", "preferences": "unsubscribe",
                 "confirm": "unsubscribe"}[p], a),
    "truncated": lambda p, a: tokens.sign(SECRET, p, a)[:-6],
    "garbage": lambda p, a: "not-a-token",
    "oversized": lambda p, a: "A" * 5000,
}


@pytest.mark.parametrize("kind", sorted(REFUSED))
@pytest.mark.parametrize("method,purpose", [
    ("GET", "unsubscribe"), ("POST", "unsubscribe"), ("GET", "preferences"),
    ("POST", "preferences"), ("GET", "confirm")])
def test_a_bad_token_is_refused_with_a_plain_page_and_no_change(
        site: Site, kind: str, method: str, purpose: str) -> None:
    site.client.post("/subscribe", data={"email": "new@example.org", "topics": "GNN",
                                         "csrf": site.csrf()})
    address = "new@example.org" if purpose == "confirm" else ADA
    before = site.everyone()
    token = REFUSED[kind](purpose, address)
    form = {"List-Unsubscribe": "One-Click", "csrf": site.csrf(), "action": "save",
            "topics": "cooking", "max_papers": "3", "frequency": "weekly", "weekday": "monday",
            "send_time": "09:00", "timezone": "UTC", "name": "", "exclude": ""}
    response = site.client.request(method, f"/{purpose}/{token}",
                                   data=form if method == "POST" else None)
    assert response.status_code == 400 and "This link does not work" in response.text
    assert "<form" not in response.text and ADA not in response.text
    assert site.everyone() == before


def test_an_expired_confirmation_link_is_refused_and_says_so(site: Site) -> None:
    site.client.post("/subscribe", data={"email": "late@example.org", "topics": "GNN",
                                         "csrf": site.csrf()})
    old = store.utcnow() - timedelta(days=4)
    response = site.client.get(link("confirm", "late@example.org", now=old))
    assert response.status_code == 400 and "expired" in response.text
    assert site.row("late@example.org") == {}


# -- preferences --------------------------------------------------------------------------------

def preference_form(site: Site, **changes: str) -> dict[str, str]:
    form = {"csrf": site.csrf(), "name": "Ada Lovelace", "topics": "GNN", "exclude": "",
            "max_papers": "8", "frequency": "daily", "weekday": "monday", "send_time": "07:00",
            "timezone": "UTC", "action": "save"}
    return {**form, **changes}


def test_saving_preferences_changes_them_and_the_files_no_longer_overwrite_them(site: Site) -> None:
    form = preference_form(site, topics="neural radiance fields\ndiffusion models",
                           frequency="weekly", weekday="friday", send_time="18:30",
                           timezone="Europe/Paris", max_papers="4")
    response = site.client.post(link("preferences", ADA), data=form)
    assert response.status_code == 303
    assert response.headers["location"].endswith("?saved=1")
    row = site.row(ADA)
    assert row["topics"] == ["neural radiance fields", "diffusion models"]
    assert (row["frequency"], row["weekday"], row["send_time"], row["timezone"],
            row["max_papers"]) == ("weekly", 4, "18:30", "Europe/Paris", 4)
    assert row["self_managed"] is True and row["status"] == "active"
    found, _ = load_subscribers(site.settings.subscribers_dir)
    store.sync_subscribers(site.engine, found)
    assert site.row(ADA)["topics"] == ["neural radiance fields", "diffusion models"]
    page = site.client.get(response.headers["location"])
    assert "Saved." in page.text and "neural radiance fields" in page.text


def test_the_preview_shows_the_next_digest_for_unsaved_topics(site: Site) -> None:
    page = site.client.get(link("preferences", ADA))
    assert re.findall(r'<h3 class="topic">([^<]+?) <span', page.text)[-1] in (
        "GNN", "graph contrastive learning")
    form = preference_form(site, topics="neural radiance fields", action="preview")
    response = site.client.post(link("preferences", ADA), data=form)
    assert response.status_code == 200 and "not saved yet" in response.text
    headings = re.findall(r'<h3 class="topic">([^<]+?) <span', response.text)
    assert "neural radiance fields" in headings and "GNN" not in headings
    assert site.row(ADA)["topics"] == ["GNN", "graph contrastive learning"]


@pytest.mark.parametrize("field,value,says", [
    ("max_papers", "500", "Papers per email"), ("timezone", "Mars/Olympus_Mons", "Time zone"),
    ("topics", "", "at least one topic"), ("frequency", "hourly", "How often"),
    ("name", "Ada\r\nBcc: eve@example.org", "single line")])
def test_invalid_preferences_are_explained_and_nothing_is_saved(
        site: Site, field: str, value: str, says: str) -> None:
    before = site.row(ADA)
    response = site.client.post(link("preferences", ADA),
                                data=preference_form(site, **{field: value}))
    assert response.status_code == 422 and says in response.text
    assert site.row(ADA) == before


def test_a_preferences_form_without_a_valid_csrf_field_changes_nothing(site: Site) -> None:
    before = site.row(ADA)
    for csrf, headers in [("", {}), ("0" * 64, {}),
                          (site.csrf(), {"origin": "https://evil.example"})]:
        response = site.client.post(link("preferences", ADA), headers=headers,
                                    data=preference_form(site, topics="cooking", csrf=csrf))
        assert response.status_code == 403
    fresh = TestClient(site.client.app)  # a browser without our cookie: the field is useless
    response = fresh.post(link("preferences", ADA), data=preference_form(site, topics="cooking"))
    assert response.status_code == 403
    assert site.row(ADA) == before


def test_a_preferences_link_reaches_its_own_subscriber_only(site: Site) -> None:
    emmy = site.row(EMMY)
    form = preference_form(site, topics="cooking", email=EMMY, id=str(emmy["id"]))
    assert site.client.post(link("preferences", ADA), data=form).status_code == 303
    assert site.row(ADA)["topics"] == ["cooking"] and site.row(ADA)["email"] == ADA
    assert site.row(EMMY) == emmy
    page = site.client.get(link("preferences", ADA))
    assert EMMY not in page.text


def test_pages_escape_what_people_and_the_catalog_wrote(site: Site) -> None:
    form = preference_form(site, name="<script>alert(1)</script>",
                           topics="<img src=x onerror=alert(1)>")
    site.client.post(link("preferences", ADA), data=form)
    page = site.client.get(link("preferences", ADA)).text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    signup = site.client.post("/subscribe", data={"email": "<b>@x", "topics": "<i>GNN</i>",
                                                  "csrf": site.csrf()})
    assert signup.status_code == 422 and "<i>GNN</i>" not in signup.text
    assert "&lt;i&gt;GNN&lt;/i&gt;" in signup.text


# -- sign-up ------------------------------------------------------------------------------------

def confirmation_path(message: email.message.EmailMessage) -> str:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return re.search(r"http://testserver(/confirm/\S+)", text)[1]  # type: ignore[index]


def test_signing_up_sends_a_confirmation_and_only_its_link_activates(site: Site) -> None:
    response = site.client.post("/subscribe", data={
        "email": "New.Reader@Example.org", "topics": "diffusion models, LLM agents",
        "csrf": site.csrf()})
    assert response.status_code == 200 and "Check your inbox" in response.text
    assert site.row("new.reader@example.org") == {}  # nothing until the link is opened
    (message,) = site.outbox()
    assert message["To"].addresses[0].addr_spec == "new.reader@example.org"
    assert message["Auto-Submitted"] == "auto-generated"
    assert "diffusion models" in message.get_body(("plain",)).get_content()
    confirmed = site.client.get(confirmation_path(message))
    assert confirmed.status_code == 200 and "You are subscribed" in confirmed.text
    row = site.row("new.reader@example.org")
    assert (row["status"], row["origin"], row["topics"]) == (
        "active", "web", ["diffusion models", "LLM agents"])
    reused = site.client.get(confirmation_path(message))
    assert "already subscribed" in reused.text
    assert site.row("new.reader@example.org") == row


def test_the_signup_answer_is_the_same_whether_or_not_the_address_is_subscribed(
        site: Site) -> None:
    answers = []
    for address in (ADA, "stranger@example.org"):
        response = site.client.post("/subscribe", data={"email": address, "topics": "GNN",
                                                        "csrf": site.csrf()})
        answers.append((response.status_code, response.text.replace(address, "ADDRESS")))
    assert answers[0] == answers[1]
    already, confirm = site.outbox()  # sorted by address: ada@ first
    assert "already subscribed" in already["Subject"] and "/confirm/" not in already.as_string()
    assert "/preferences/" in already.get_body(("plain",)).get_content()
    assert "/confirm/" in confirm.get_body(("plain",)).get_content()
    assert site.row(ADA)["topics"] == ["GNN", "graph contrastive learning"]  # untouched


def test_resubmitting_the_form_sends_at_most_one_email_per_address_in_two_minutes(
        site: Site) -> None:
    for _ in range(3):
        site.client.post("/subscribe", data={"email": "x@example.org", "topics": "GNN",
                                             "csrf": site.csrf()})
    assert len(site.outbox()) == 1


@pytest.mark.parametrize("address", ["x@example.org\r\nBcc: victim@example.org",
                                     "x@example.org\nSubject: hi", "not an address", ""])
def test_an_address_that_could_inject_a_header_is_refused(site: Site, address: str) -> None:
    response = site.client.post("/subscribe", data={"email": address, "topics": "GNN",
                                                    "csrf": site.csrf()})
    assert response.status_code == 422
    assert site.outbox() == []


def test_signing_up_without_a_csrf_field_sends_nothing(site: Site) -> None:
    response = site.client.post("/subscribe", data={"email": "x@example.org", "topics": "GNN"})
    assert response.status_code == 403 and site.outbox() == []


# -- gallery ------------------------------------------------------------------------------------

def sign_in(site: Site, password: str = PASSWORD) -> Any:
    return site.client.post("/admin/login", data={"password": password, "csrf": site.csrf()})


def test_the_gallery_asks_for_the_password_and_shows_nobody_before(site: Site) -> None:
    response = site.client.get("/admin")
    assert response.status_code == 401 and ADA not in response.text
    assert site.client.get("/admin/digest/1/html").status_code == 401
    wrong = sign_in(site, "guess")
    assert wrong.status_code == 401 and "not right" in wrong.text
    assert sign_in(site).status_code == 303
    gallery = site.client.get("/admin")
    assert gallery.status_code == 200
    assert ADA in gallery.text and EMMY in gallery.text
    out = site.client.post("/admin/logout", data={"csrf": site.csrf()})
    assert out.status_code == 303 and site.client.get("/admin").status_code == 401


def test_the_gallery_shows_each_digest_exactly_as_send_would_send_it(
        site: Site, tmp_path: Path) -> None:
    sign_in(site)
    ada = site.row(ADA)["id"]
    page = site.client.get(f"/admin/digest/{ada}")
    assert page.status_code == 200 and f"/admin/digest/{ada}/html" in page.text
    html = site.client.get(f"/admin/digest/{ada}/html")
    assert "sandbox" in html.headers["content-security-policy"]
    text = site.client.get(f"/admin/digest/{ada}/text")
    env = {"NEWSLETTER_DATABASE_URL": site.settings.database_url,
           "NEWSLETTER_SECRET_KEY": SECRET, "NEWSLETTER_BASE_URL": "http://testserver"}
    for part, body in (([], html.text), (["--text"], text.text)):
        out = tmp_path / "preview"
        result = CliRunner().invoke(cli_app, ["preview", ADA, "--out", str(out), *part], env=env)
        assert result.exit_code == 0, result.output
        assert body == out.read_text()


def test_without_a_configured_password_there_is_no_gallery(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_environment(monkeypatch, tmp_path)
    settings = site_settings(tmp_path, admin_password=None)
    client = TestClient(create_app(settings, prepare(settings)))
    assert client.get("/admin").status_code == 404
    response = client.post("/admin/login", data={"password": "", "csrf": csrf_in(
        client.get("/").text)}, follow_redirects=False)
    assert response.status_code == 401 and "newsletter_admin" not in response.headers.get(
        "set-cookie", "")


# -- clicks -------------------------------------------------------------------------------------

def clicks_of(site: Site, paper_id: str) -> int | None:
    paper = store.load_paper(site.engine, paper_id)
    assert paper is not None
    return paper.clicks


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    clean_environment(monkeypatch, tmp_path)
    settings = site_settings(tmp_path, click_tracking=True)
    engine = prepare(settings)
    yield Site(settings, engine, TestClient(create_app(settings, engine), follow_redirects=False))


def test_a_tracked_link_counts_one_click_per_reader_and_goes_to_the_papers_own_page(
        tracking: Site) -> None:
    paper = store.load_papers(tracking.engine)[0]
    ada, emmy = tracking.row(ADA)["id"], tracking.row(EMMY)["id"]
    url = click_url(SECRET, "http://testserver", ada, paper.id)
    for _ in range(3):
        response = tracking.client.get(url)
        assert response.status_code == 302 and response.headers["location"] == paper_url(paper)
    assert clicks_of(tracking, paper.id) == 1
    tracking.client.get(click_url(SECRET, "http://testserver", emmy, paper.id))
    assert clicks_of(tracking, paper.id) == 2


def test_a_changed_click_link_redirects_nowhere_and_counts_nothing(tracking: Site) -> None:
    paper = store.load_papers(tracking.engine)[0]
    url = click_url(SECRET, "http://testserver", tracking.row(ADA)["id"], paper.id)
    forged = click_url("another-secret", "http://testserver", 1, paper.id)
    for bad in (tampered(url.rsplit("/", 1)[1]), forged.rsplit("/", 1)[1],
                tokens.sign(SECRET, "unsubscribe", ADA)):
        response = tracking.client.get(f"/click/{bad}")
        assert response.status_code == 400 and "location" not in response.headers
    assert not clicks_of(tracking, paper.id)


def test_with_tracking_off_old_click_links_still_redirect_but_count_nothing(site: Site) -> None:
    paper = store.load_papers(site.engine)[0]
    response = site.client.get(click_url(SECRET, "http://testserver", site.row(ADA)["id"],
                                         paper.id))
    assert response.status_code == 302 and response.headers["location"] == paper_url(paper)
    assert not clicks_of(site, paper.id)


# -- every response -----------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/nowhere", link("preferences", ADA),
                                  link("unsubscribe", ADA), "/admin"])
def test_every_page_forbids_scripts_framing_and_leaking_its_url(site: Site, path: str) -> None:
    response = site.client.get(path)
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in response.text


def test_the_csrf_cookie_is_http_only_and_same_site(site: Site) -> None:
    cookie = TestClient(site.client.app).get("/").headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie


def test_serve_explains_itself_with_help() -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--help"])
    assert result.exit_code == 0 and "--port" in result.output and "unsubscribe" in result.output


# -- the store functions behind the pages, on SQLite and PostgreSQL -----------------------------

def test_sign_up_confirm_unsubscribe_and_preferences_in_the_store(engine: Engine) -> None:
    gap = timedelta(minutes=2)
    assert store.request_signup(engine, "A@x.org", ["GNN"], resend_after=gap) == (None, True)
    assert store.request_signup(engine, "a@x.org", ["PDE"], resend_after=gap) == (None, False)
    assert store.load_subscribers(engine, statuses=None) == []
    sub = store.confirm_signup(engine, "a@x.org")
    assert sub is not None and (sub.status, sub.topics, sub.origin) == ("active", ("PDE",), "web")
    assert store.confirm_signup(engine, "a@x.org") is None  # used up
    assert store.update_preferences(engine, Subscriber(email="a@x.org", name="A",
                                                       topics=("NAS",), max_papers=3))
    assert store.load_subscribers(engine)[0].topics == ("NAS",)
    assert store.unsubscribe(engine, "a@x.org") and store.unsubscribe(engine, "a@x.org")
    assert store.subscriber_status(engine, "a@x.org") == "unsubscribed"
    assert not store.unsubscribe(engine, "nobody@x.org")
    assert store.request_signup(engine, "a@x.org", ["GNN"], resend_after=gap,
                                now=store.utcnow() + gap) == ("unsubscribed", True)
    sub = store.confirm_signup(engine, "a@x.org")
    assert sub is not None and (sub.status, sub.topics, sub.max_papers) == ("active", ("GNN",), 3)


def test_a_click_is_counted_once_per_reader_in_the_store(engine: Engine) -> None:
    store.save_papers(engine, [(Paper(id="p1", title="T", abstract="A"), "t")], [])
    store.sync_subscribers(engine, [Subscriber(email="r@x.org", name="", topics=("GNN",))])
    reader = store.load_subscribers(engine)[0].id
    assert reader is not None
    assert store.record_click(engine, reader, "p1")
    assert not store.record_click(engine, reader, "p1")
    assert not store.record_click(engine, reader + 100, "p1")  # no such reader
    paper = store.load_paper(engine, "p1")
    assert paper is not None and paper.clicks == 1
