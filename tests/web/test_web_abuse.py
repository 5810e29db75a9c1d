"""`newsletter serve` probed as an attacker and a careless user would (issue 16's findings, one
test or more each), over real HTTP to the app under uvicorn where the socket matters (parallel
guesses, chunked uploads), through the in-process client elsewhere."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import select
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text, update
from starlette.testclient import TestClient
from web_site import (  # noqa: F401
    ADA,
    EMMY,
    PASSWORD,
    ROOT,
    SECRET,
    Site,
    clean_environment,
    csrf_in,
    preference_form,
    prepare,
    served,
    sign_in,
    site,
    site_settings,
)

from newsletter.cli import app as cli_app
from newsletter.dispatch.deliver import Pipeline
from newsletter.errors import ConfigError
from newsletter.store import schema
from newsletter.store.engine import connect, open_engine, utcnow
from newsletter.store.subscribers import load_subscribers
from newsletter.web import create_app
from newsletter.web.throttle import LoginThrottle


def compose_for(site: Site, address: str) -> bytes:
    """What `send` would send ``address`` now (raises as `send` would)."""
    sub = load_subscribers(site.engine, statuses=None, email=address)[0]
    pipeline = Pipeline.build(site.engine, site.settings, utcnow())
    composed = pipeline.compose(sub, set(), "2026-01-01")
    assert composed is not None
    return composed.message.data


# -- 1. one control character broke a person for good -------------------------------------------

def test_a_tab_in_a_name_is_a_space_and_every_page_and_send_still_work(site: Site) -> None:
    saved = site.client.post(site.link("preferences", ADA),
                             data=preference_form(site, name="Grace\tHopper"))
    assert saved.status_code == 303 and site.row(ADA)["name"] == "Grace Hopper"
    assert site.client.get(site.link("preferences", ADA)).status_code == 200
    sign_in(site)
    assert site.client.get("/admin").status_code == 200
    assert b"Grace Hopper" in compose_for(site, ADA)


@pytest.mark.parametrize("field,value", [("topics", "GNN\x07"), ("name", "Ada\u2028Lovelace"),
                                         ("exclude", "\x00"), ("name", "Ada\x1b[31m")])
def test_a_control_character_in_a_name_or_topic_is_refused_next_to_its_field(
        site: Site, field: str, value: str) -> None:
    before = site.row(ADA)
    response = site.client.post(site.link("preferences", ADA),
                                data=preference_form(site, **{field: value}))
    assert response.status_code == 422 and site.row(ADA) == before
    assert f'id="{field}-error"' in response.text
    assert re.search(rf'name="{field}"[^>]*aria-describedby="{field}-error', response.text)
    assert "Input should" not in response.text and "Value error" not in response.text


def test_a_bad_value_stored_by_an_older_version_is_repaired_not_a_500(site: Site) -> None:
    with site.engine.begin() as conn:  # what an older version let through
        conn.execute(update(schema.subscribers).where(schema.subscribers.c.email == ADA).values(
            name="Grace\tHop\u2028per\u202e", topics=["GNN\x07", "PINNs\u200b"]))
    page = site.client.get(site.link("preferences", ADA))
    assert page.status_code == 200 and "Grace Hop per" in page.text and "\x07" not in page.text
    sign_in(site)
    assert site.client.get("/admin").status_code == 200
    assert site.client.get(f"/admin/digest/{site.row(ADA)['id']}").status_code == 200
    message = compose_for(site, ADA)
    assert b"Grace Hop per" in message


def test_a_subscriber_file_name_with_a_line_separator_fails_the_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner
    clean_environment(monkeypatch, tmp_path)
    folder = tmp_path / "subscribers"
    folder.mkdir()
    (folder / "list.toml").write_text('[[subscriber]]\nemail = "g@example.org"\n'
                                      'name = "Grace\\u2028Hopper"\ntopics = ["GNN"]\n')
    result = CliRunner().invoke(cli_app, ["subscribers", "check"],
                                env={"NEWSLETTER_SUBSCRIBERS_DIR": str(folder)})
    assert result.exit_code == 1 and "list.toml:1" in result.output
    assert "single line" in result.output


# -- 2 and 6 are in test_web_signup.py (limits, no free text, replay, pending) ------------------

# -- 3. admin password guessing at ~37 guesses/s, the right one accepted right after --------

def test_parallel_password_guesses_are_checked_one_at_a_time_then_locked_out(
        site: Site, served: str) -> None:
    throttle = LoginThrottle(delay=0.05, max_delay=0.5, per_client=5)
    site.client.app.state.web.login_throttle = throttle
    checks, running, most = 0, 0, 0
    real_attempt = throttle.attempt

    async def counted(client: str, check):  # type: ignore[no-untyped-def]
        def watched() -> bool:
            nonlocal checks, running, most
            checks, running = checks + 1, running + 1
            most = max(most, running)
            try:
                return check()
            finally:
                running -= 1
        return await real_attempt(client, watched)

    throttle.attempt = counted  # type: ignore[method-assign]

    async def guess_all() -> list[int]:
        async with httpx.AsyncClient(base_url=served) as client:
            form = {"csrf": csrf_in((await client.get("/")).text)}
            guesses = [client.post("/admin/login", data={**form, "password": f"guess{n}"})
                       for n in range(40)]
            answers = await asyncio.gather(*guesses)
            right = await client.post("/admin/login", data={**form, "password": PASSWORD})
            return [r.status_code for r in answers] + [right.status_code]

    codes = asyncio.run(guess_all())
    assert codes[:-1].count(401) == 5 and codes[:-1].count(429) == 35
    assert codes[-1] == 429  # locked out: even the right password is not checked now
    assert checks == 5 and most == 1  # five checks, never two at once


def test_a_short_admin_password_is_refused_at_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_environment(monkeypatch, tmp_path)
    settings = site_settings(tmp_path, admin_password="hunter2")
    with pytest.raises(ConfigError, match="at least 12"):
        create_app(settings, prepare(settings))


# -- 4. signed links in logs ---------------------------------------------------------------------

def test_a_server_error_logs_the_route_never_the_token(
        site: Site, caplog: pytest.LogCaptureFixture) -> None:
    link = site.link("preferences", ADA)
    with site.engine.begin() as conn:  # a real fault: the ledger is gone
        conn.execute(text("DROP TABLE sent_papers"))
    client = type(site.client)(site.client.app, raise_server_exceptions=False)
    with caplog.at_level(logging.INFO):
        page = client.get(link)
    assert page.status_code == 500 and "sent_papers" not in page.text  # no detail shown
    token = link.rsplit("/", 1)[1]
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records
                       if not r.name.startswith("httpx"))  # the test's own client logs URLs
    assert "error on GET /preferences/{token}" in logged and token not in logged


def test_serve_logs_requests_by_route_and_never_a_token(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    clean_environment(monkeypatch, tmp_path)
    settings = site_settings(tmp_path)
    engine = prepare(settings)
    ada = load_subscribers(engine, email=ADA)[0]
    from newsletter.compose.tokens import make
    token = make(SECRET, "unsubscribe", ada.link_id, ada.link_key)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "NEWSLETTER_DATABASE_URL": settings.database_url,
           "NEWSLETTER_SECRET_KEY": SECRET, "NEWSLETTER_OUTBOX_DIR": str(tmp_path / "out"),
           "NEWSLETTER_SUBSCRIBERS_DIR": str(ROOT / "subscribers")}
    server = subprocess.Popen([sys.executable, "-m", "newsletter", "serve", "--port", str(port)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/unsubscribe/{token}")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.1)
        assert response.status_code == 200
        httpx.get(f"http://127.0.0.1:{port}/preferences/{token}x")
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=10)
    assert "GET /unsubscribe/{token} 200" in output
    assert token not in output and ADA not in output


# -- 5. the body limit was bypassed by a chunked upload ----------------------------------------

def test_a_chunked_upload_is_cut_off_at_the_limit_whatever_the_headers_say(
        site: Site, served: str) -> None:
    """95 form fields of 1 MB, chunked, no Content-Length, as in the finding: the answer (413)
    comes while the upload is still going, after about the limit, not after the whole body."""
    host, port = served.removeprefix("http://").split(":")
    field = (b"--b0undary\r\nContent-Disposition: form-data; name=\"topics\"\r\n\r\n"
             + b"x" * 1_000_000 + b"\r\n")
    chunk = b"%x\r\n" % len(field) + field + b"\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /subscribe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Type: multipart/form-data; boundary=b0undary\r\n\r\n")
        sent, answer = 0, b""
        sock.setblocking(False)
        deadline = time.monotonic() + 30
        while not answer and sent < 95 and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 1)
            if readable:
                answer = sock.recv(65536)
            elif writable:
                sent += 1
                sock.sendall(chunk)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert sent < 95  # the server answered long before the body was all there
    lying = httpx.post(f"{served}/subscribe", content=b"x" * 200_000,
                       headers={"content-type": "application/x-www-form-urlencoded"})
    assert lying.status_code == 413 and "too much" in lying.text


# -- 7. admin logout left the captured cookie valid for 12 hours -------------------------------

def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(site: Site) -> None:
    assert sign_in(site).status_code == 303
    captured = site.client.cookies.get("newsletter_admin")
    assert site.client.get("/admin").status_code == 200
    assert site.client.post("/admin/logout", data={"csrf": site.csrf()}).status_code == 303
    thief = type(site.client)(site.client.app)
    thief.cookies.set("newsletter_admin", captured, path="/admin")
    assert thief.get("/admin").status_code == 401


# -- 8. tokens carried the address, never expired, could not be revoked ------------------------

def decodings(token: str) -> str:
    """Every part of a token decoded as base64, where it decodes."""
    found = []
    for part in token.split("."):
        try:
            found.append(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode(
                "utf-8", "replace"))
        except ValueError:
            continue
    return " ".join(found)


def test_links_name_no_address_and_one_person_can_sign_all_of_theirs_out(site: Site) -> None:
    prefs, unsub = site.link("preferences", ADA), site.link("unsubscribe", ADA)
    for link in (prefs, unsub):
        token = link.rsplit("/", 1)[1]
        assert "ada" not in decodings(token).lower() and "ada" not in token.lower()
        assert str(site.row(ADA)["id"]) != token.split(".")[0]
    emmy = site.link("preferences", EMMY)
    page = site.client.get(prefs)
    assert "Sign out every link" in page.text
    signout = re.search(r'action="(/signout/[^"]+)"', page.text)[1]  # type: ignore[index]
    done = site.client.post(signout, data={"csrf": csrf_in(page.text)})
    assert done.status_code == 200 and "signed out" in done.text
    assert site.client.get(prefs).status_code == 400  # the old preferences link is dead
    assert site.client.get(site.link("preferences", ADA)).status_code == 200  # new ones work
    assert site.client.get(emmy).status_code == 200  # nobody else's links changed
    # the old unsubscribe link still unsubscribes (mail providers retry it for weeks)...
    one_click = site.client.post(unsub, data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200 and site.row(ADA)["status"] == "unsubscribed"
    assert ADA not in one_click.text  # ...but shows no address


def test_a_signed_out_unsubscribe_link_works_for_90_days_then_stops(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    unsub = site.link("unsubscribe", ADA)
    page = site.client.get(site.link("preferences", ADA))
    signout = re.search(r'action="(/signout/[^"]+)"', page.text)[1]  # type: ignore[index]
    site.client.post(signout, data={"csrf": csrf_in(page.text)})
    web = site.client.app.state.web
    monkeypatch.setattr(web, "now", lambda: utcnow() + timedelta(days=89))
    assert site.client.get(unsub).status_code == 200
    monkeypatch.setattr(web, "now", lambda: utcnow() + timedelta(days=91))
    assert site.client.get(unsub).status_code == 400


def test_after_unsubscribing_a_person_can_sign_out_every_link(site: Site) -> None:
    prefs, unsub = site.link("preferences", ADA), site.link("unsubscribe", ADA)
    done = site.client.post(unsub, data={"List-Unsubscribe": "One-Click", "csrf": site.csrf()})
    signout = re.search(r'action="(/signout/[^"]+)"', done.text)[1]  # type: ignore[index]
    assert site.client.post(signout, data={"csrf": csrf_in(done.text)}).status_code == 200
    assert site.client.get(prefs).status_code == 400


# -- 9. the smaller ones --------------------------------------------------------------------------

def test_an_oversized_or_malformed_form_says_what_happened(site: Site) -> None:
    big = site.client.post("/subscribe", data={"email": "a@example.org", "topics": "x" * 70_000,
                                               "csrf": site.csrf()})
    assert big.status_code == 413 and "open too long" not in big.text
    broken = site.client.post("/subscribe", content=b"--nope\r\n\r\n", headers={
        "content-type": "multipart/form-data; boundary=nope"})
    assert broken.status_code == 400 and "could not be read" in broken.text
    assert "try again in a moment" not in broken.text


def test_the_preferences_page_has_an_unsubscribe_button_that_works(site: Site) -> None:
    page = site.client.get(site.link("preferences", ADA))
    action = re.search(r'action="(/unsubscribe/[^"]+)"', page.text)[1]  # type: ignore[index]
    response = site.client.post(action, data={"csrf": csrf_in(page.text)})
    assert response.status_code == 200 and site.row(ADA)["status"] == "unsubscribed"


def test_signup_errors_are_in_plain_words_next_to_their_fields(site: Site) -> None:
    response = site.client.post("/subscribe", data={"email": "someone@localhost",
                                                    "topics": "", "csrf": site.csrf()})
    assert response.status_code == 422
    assert 'aria-describedby="email-error"' in response.text
    assert re.search(r'name="topics"[^>]*aria-describedby="topics-error', response.text)
    assert "does not look right" in response.text
    assert "special-use" not in response.text and "@-sign" not in response.text


def test_unsubscribe_links_signed_before_the_upgrade_work_90_days_then_stop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database of the version before (revision 0004) with Ada in it, upgraded: she gets a
    link key, and the links in the mail she already has keep unsubscribing for 90 days only."""
    from itsdangerous import URLSafeSerializer

    from newsletter.store import migrate
    clean_environment(monkeypatch, tmp_path)
    settings = site_settings(tmp_path)
    old = open_engine(settings.database_url)
    migrate.upgrade(old, schema.metadata, "0004")
    now = utcnow()
    with old.begin() as conn:
        conn.execute(text(
            "INSERT INTO subscribers (email, name, topics, exclude, max_papers, frequency, "
            "weekday, send_time, timezone, status, origin, self_managed, created_at, updated_at)"
            " VALUES (:email, '', '[\"GNN\"]', '[]', 10, 'daily', 0, '07:00', 'UTC', 'active', "
            "'web', 1, :now, :now)"), {"email": ADA, "now": now})
    migrate.upgrade(old, schema.metadata)
    old.dispose()
    engine = connect(settings.database_url)
    ada = load_subscribers(engine, email=ADA)[0]
    assert len(ada.link_id) == 12 and ada.link_key
    client = TestClient(create_app(settings, engine))
    unsubscribe = "/unsubscribe/" + URLSafeSerializer(
        SECRET, salt="newsletter/unsubscribe").dumps(ADA)
    preferences = "/preferences/" + URLSafeSerializer(
        SECRET, salt="newsletter/preferences").dumps(ADA)
    assert client.get(preferences).status_code == 400  # it carried the address: stops at once
    web = client.app.state.web  # type: ignore[attr-defined]
    monkeypatch.setattr(web, "now", lambda: utcnow() + timedelta(days=91))
    assert client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 400
    monkeypatch.setattr(web, "now", lambda: utcnow() + timedelta(days=89))
    response = client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert load_subscribers(engine, statuses=None, email=ADA)[0].status == "unsubscribed"
    engine.dispose()
