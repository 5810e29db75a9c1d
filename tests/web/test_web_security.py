"""What `newsletter serve` refuses, and what every response carries: forged, tampered, expired
or misused links; forms without their CSRF field or from another site; header injection;
escaping; the gallery's password; the security headers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from web_site import (  # noqa: F401
    ADA,
    EMMY,
    SECRET,
    Site,
    clean_environment,
    clicks_of,
    confirmation_path,
    csrf_in,
    preference_form,
    prepare,
    sign_in,
    site,
    site_settings,
    tampered,
    tracking,
)

from newsletter.compose import tokens
from newsletter.store.catalog import load_papers
from newsletter.store.subscribers import load_subscribers
from newsletter.web import click_url, create_app
from newsletter.web.middleware import redact

# -- links --------------------------------------------------------------------------------------

OTHER = {"unsubscribe": "preferences", "preferences": "unsubscribe", "confirm": "unsubscribe"}


def good_token(site: Site, purpose: str, address: str) -> str:
    if purpose == "confirm":
        return confirmation_path(site.outbox()[0]).rsplit("/", 1)[1]
    return site.link(purpose, address).rsplit("/", 1)[1]


def bad_token(site: Site, kind: str, purpose: str, address: str) -> str:
    good = good_token(site, purpose, address)
    row = site.row(ADA)
    return {
        "forged": (tokens.one_time_token()[0] if purpose == "confirm" else
                   tokens.make("another-secret", purpose, row["link_id"], row["link_key"])),
        "tampered": tampered(good),
        "wrong purpose": site.link(OTHER[purpose], ADA).rsplit("/", 1)[1],
        "truncated": good[:-6],
        "garbage": "not-a-token",
        "oversized": "A" * 5000,
    }[kind]


@pytest.mark.parametrize("kind", ["forged", "tampered", "wrong purpose", "truncated", "garbage",
                                  "oversized"])
@pytest.mark.parametrize("method,purpose", [
    ("GET", "unsubscribe"), ("POST", "unsubscribe"), ("GET", "preferences"),
    ("POST", "preferences"), ("GET", "confirm"), ("POST", "confirm")])
def test_a_bad_token_is_refused_with_a_plain_page_and_no_change(
        site: Site, kind: str, method: str, purpose: str) -> None:
    site.client.post("/subscribe", data={"email": "new@example.org", "topics": "GNN",
                                         "csrf": site.csrf()})
    address = "new@example.org" if purpose == "confirm" else ADA
    before = site.everyone()
    token = bad_token(site, kind, purpose, address)
    form = {"List-Unsubscribe": "One-Click", "csrf": site.csrf(), "action": "save",
            "topics": "cooking", "max_papers": "3", "frequency": "weekly", "weekday": "monday",
            "send_time": "09:00", "timezone": "UTC", "name": "", "exclude": ""}
    response = site.client.request(method, f"/{purpose}/{token}",
                                   data=form if method == "POST" else None)
    assert response.status_code == 400
    assert "does not work" in response.text or "already used" in response.text
    assert "<form" not in response.text and ADA not in response.text
    assert site.everyone() == before


def test_a_preferences_link_reaches_its_own_subscriber_only(site: Site) -> None:
    emmy = site.row(EMMY)
    form = preference_form(site, topics="cooking", email=EMMY, id=str(emmy["id"]))
    assert site.client.post(site.link("preferences", ADA), data=form).status_code == 303
    assert site.row(ADA)["topics"] == ["cooking"] and site.row(ADA)["email"] == ADA
    assert site.row(EMMY) == emmy
    page = site.client.get(site.link("preferences", ADA))
    assert EMMY not in page.text


def test_a_changed_click_link_redirects_nowhere_and_counts_nothing(tracking: Site) -> None:
    paper = load_papers(tracking.engine)[0]
    ada = load_subscribers(tracking.engine, email=ADA)[0]
    url = click_url(SECRET, "http://testserver", ada, paper.id)
    forged = click_url("another-secret", "http://testserver", ada, paper.id)
    for bad in (tampered(url.rsplit("/", 1)[1]), forged.rsplit("/", 1)[1],
                tracking.link("unsubscribe", ADA).rsplit("/", 1)[1]):
        response = tracking.client.get(f"/click/{bad}")
        assert response.status_code == 400 and "location" not in response.headers
    assert not clicks_of(tracking, paper.id)


# -- forms --------------------------------------------------------------------------------------

def test_a_post_without_the_one_click_body_or_a_csrf_field_changes_nothing(site: Site) -> None:
    response = site.client.post(site.link("unsubscribe", ADA), data={"something": "else"})
    assert response.status_code == 403
    assert site.row(ADA)["status"] == "active"


NOT_ONE_CLICK = [b"", b"List-Unsubscribe=", b"List-Unsubscribe", b"List-Unsubscribe=Yes",
                 b"List-Unsubscribe=One-Click-Later", b"One-Click=List-Unsubscribe",
                 b"Action=One-Click", b"unsubscribe=1&confirm=yes"]


def test_only_the_rfc_8058_body_unsubscribes_without_a_csrf_field(site: Site) -> None:
    # The one-click POST skips the CSRF check because its body says what it is; any other
    # POST to the link is a form, and a form needs its field.
    provider = TestClient(site.client.app)  # no cookie, as a mail provider posts
    for body in NOT_ONE_CLICK:
        response = provider.post(site.link("unsubscribe", ADA), content=body,
                                 headers={"content-type": "application/x-www-form-urlencoded"})
        assert (body, response.status_code) == (body, 403)
        assert site.row(ADA)["status"] == "active"


@pytest.fixture
def public(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """The site as deployed at its public address, https://example.org."""
    clean_environment(monkeypatch, tmp_path)
    settings = site_settings(tmp_path, base_url="https://example.org")
    engine = prepare(settings)
    with TestClient(create_app(settings, engine), base_url="https://example.org",
                    follow_redirects=False) as client:
        yield Site(settings, engine, client)
    engine.dispose()


def test_a_form_from_an_origin_that_only_resembles_ours_changes_nothing(public: Site) -> None:
    before = public.row(ADA)
    form = preference_form(public, topics="cooking")
    for origin in ("https://evil-example.org", "https://notexample.org",
                   "https://example.org.evil.net", "https://evil.example.org",
                   "https://example.org:8443"):
        refused = public.client.post(public.link("preferences", ADA), data=form,
                                     headers={"origin": origin})
        assert (origin, refused.status_code) == (origin, 403)
        assert public.row(ADA) == before
    ours = public.client.post(public.link("preferences", ADA), data=form,
                              headers={"origin": "https://example.org"})
    assert ours.status_code == 303 and public.row(ADA)["topics"] == ["cooking"]


def test_a_preferences_form_without_a_valid_csrf_field_changes_nothing(site: Site) -> None:
    before = site.row(ADA)
    for csrf, headers in [("", {}), ("0" * 64, {}),
                          (site.csrf(), {"origin": "https://evil.example"})]:
        response = site.client.post(site.link("preferences", ADA), headers=headers,
                                    data=preference_form(site, topics="cooking", csrf=csrf))
        assert response.status_code == 403
    fresh = TestClient(site.client.app)  # a browser without our cookie: the field is useless
    response = fresh.post(site.link("preferences", ADA), data=preference_form(site, topics="cooking"))
    assert response.status_code == 403
    assert site.row(ADA) == before


def test_signing_up_without_a_csrf_field_sends_nothing(site: Site) -> None:
    response = site.client.post("/subscribe", data={"email": "x@example.org", "topics": "GNN"})
    assert response.status_code == 403 and site.outbox() == []


def test_a_confirmation_without_a_valid_csrf_field_changes_nothing(site: Site) -> None:
    site.client.post("/subscribe", data={"email": "new@example.org", "topics": "GNN",
                                         "csrf": site.csrf()})
    path = confirmation_path(site.outbox()[0])
    for csrf, headers in [("", {}), ("0" * 64, {}),
                          (site.csrf(), {"origin": "https://evil.example"})]:
        response = site.client.post(path, data={"csrf": csrf}, headers=headers)
        assert response.status_code == 403
    stranger = TestClient(site.client.app)  # another browser: our field without our cookie
    assert stranger.post(path, data={"csrf": site.csrf()}).status_code == 403
    assert site.row("new@example.org") == {}


@pytest.mark.parametrize("address", ["x@example.org\r\nBcc: victim@example.org",
                                     "x@example.org\nSubject: hi", "not an address", ""])
def test_an_address_that_could_inject_a_header_is_refused(site: Site, address: str) -> None:
    response = site.client.post("/subscribe", data={"email": address, "topics": "GNN",
                                                    "csrf": site.csrf()})
    assert response.status_code == 422
    assert site.outbox() == []


# -- pages --------------------------------------------------------------------------------------

def test_pages_escape_what_people_and_the_catalog_wrote(site: Site) -> None:
    form = preference_form(site, name="<script>alert(1)</script>",
                           topics="<img src=x onerror=alert(1)>")
    site.client.post(site.link("preferences", ADA), data=form)
    page = site.client.get(site.link("preferences", ADA)).text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    signup = site.client.post("/subscribe", data={"email": "<b>@x", "topics": "<i>GNN</i>",
                                                  "csrf": site.csrf()})
    assert signup.status_code == 422 and "<i>GNN</i>" not in signup.text
    assert "&lt;i&gt;GNN&lt;/i&gt;" in signup.text


@pytest.mark.parametrize("path", ["/", "/nowhere", "preferences", "unsubscribe",
                                  "/confirm/x", "/admin"])
def test_every_page_forbids_scripts_framing_and_leaking_its_url(site: Site, path: str) -> None:
    response = site.client.get(path if path.startswith("/") else site.link(path, ADA))
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in response.text


def test_the_csrf_cookie_is_http_only_and_same_site(site: Site) -> None:
    cookie = TestClient(site.client.app).get("/").headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie


# -- the gallery's password ---------------------------------------------------------------------

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


def test_without_a_configured_password_there_is_no_gallery(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_environment(monkeypatch, tmp_path)
    settings = site_settings(tmp_path, admin_password=None)
    client = TestClient(create_app(settings, prepare(settings)))
    page = client.get("/admin")
    assert page.status_code == 404 and "ADMIN_PASSWORD" not in page.text  # names no setting
    response = client.post("/admin/login", data={"password": "", "csrf": csrf_in(
        client.get("/").text)}, follow_redirects=False)
    assert response.status_code == 404 and "newsletter_admin" not in response.headers.get(
        "set-cookie", "")


def test_no_route_that_carries_a_token_reaches_the_error_log_with_it(site: Site) -> None:
    """An exception's message may quote a request's URL: every route whose path holds a
    token, now and when one is added, has the token redacted before it is logged."""
    secret = "tok.en-AB_12"
    paths = [route.path for route in site.client.app.routes  # type: ignore[attr-defined]
             if "{token}" in getattr(route, "path", "")]
    assert len(paths) >= 8  # confirm, unsubscribe, preferences (3), signout, click, more, less
    for path in paths:
        url = path.replace("{purpose}", "unsubscribe").replace("{token}", secret)
        assert secret not in redact(f"GET https://example.org{url}?x=1 failed"), path
