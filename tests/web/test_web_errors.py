"""Error responses of `newsletter serve` hold to the same rules as its pages: the security
headers on every one (a 500 included), no 500 for a malformed URL, and what HTTP asks of an
error (a 405 names the methods allowed)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient
from web_site import ADA, Site, csrf_in, preference_form, site  # noqa: F401

from newsletter.web.security import DEFAULT_HEADERS


def test_a_server_error_page_carries_every_security_header(site: Site) -> None:
    """Starlette answers an unhandled exception outside the app's own middleware, so the
    headers every page gets (no framing, no sniffing, no cache) must come with the 500 too."""
    link = site.link("preferences", ADA)
    with site.engine.begin() as conn:  # a real fault: the ledger is gone
        conn.execute(text("DROP TABLE sent_papers"))
    client = TestClient(site.client.app, raise_server_exceptions=False)
    page = client.get(link)
    assert page.status_code == 500 and "Something went wrong" in page.text
    for name, value in DEFAULT_HEADERS.items():
        assert page.headers.get(name) == value, name


@pytest.mark.parametrize("digits", [19, 4301, 5000])
def test_an_absurd_gallery_id_is_not_found_not_a_500(
        site: Site, digits: int, caplog: pytest.LogCaptureFixture) -> None:
    """Python refuses to read an integer of over 4,300 digits: the URL converter must not be
    the one to try, before the password is even asked for."""
    client = TestClient(site.client.app, raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="newsletter.web"):
        for path in ("/admin/digest/{}", "/admin/digest/{}/html", "/admin/digest/{}/text"):
            response = client.get(path.format("9" * digits))
            assert response.status_code == 404, (path, response.status_code)
            assert response.headers["x-frame-options"] == "DENY"
    assert not caplog.records


@pytest.mark.parametrize("method,path", [("PUT", "/subscribe"), ("DELETE", "/"),
                                         ("OPTIONS", "/admin/login"), ("PATCH", "preferences")])
def test_a_method_a_route_does_not_take_gets_a_405_that_names_those_it_does(
        site: Site, method: str, path: str) -> None:
    """RFC 9110 15.5.6: a 405 must carry Allow; clients and proxies rely on it."""
    url = site.link(path, ADA) if not path.startswith("/") else path
    response = site.client.request(method, url)
    assert response.status_code == 405 and "not understood" in response.text
    assert response.headers.get("allow"), response.headers
    assert method not in response.headers["allow"]
    assert response.headers["content-security-policy"] == DEFAULT_HEADERS[
        "content-security-policy"]


def test_a_database_error_logs_no_value_the_reader_sent(
        site: Site, caplog: pytest.LogCaptureFixture) -> None:
    """SQLAlchemy's message quotes the statement's parameters (a name, topics, an address)
    and PostgreSQL's DETAIL line the row's values: the log gets the error's kind, not those."""
    with site.engine.begin() as conn:  # a real fault: the database refuses the update
        conn.execute(text("CREATE TRIGGER refuse BEFORE UPDATE ON subscribers "
                          "BEGIN SELECT RAISE(ABORT, 'disk quota exceeded'); END"))
    client = TestClient(site.client.app, raise_server_exceptions=False)
    form = preference_form(site, name="Grace Secretname", topics="private matters")
    client.cookies = site.client.cookies  # the CSRF pair: the form must reach the update
    with caplog.at_level(logging.INFO, logger="newsletter.web"):
        response = client.post(site.link("preferences", ADA), data=form)
    assert response.status_code == 500 and "Secretname" not in response.text
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("newsletter"))
    assert "error on POST /preferences/{token}: IntegrityError" in logged
    assert "disk quota exceeded" in logged  # what went wrong is still said
    for private in ("Secretname", "private matters", ADA):
        assert private not in logged


def test_a_pasted_library_over_1_mb_is_read_not_called_unreadable(site: Site) -> None:
    """The library form takes 2 MB (README), but Starlette cut any one field at 1 MB and the
    page said "could not be read, submit it again": a retry that could never work."""
    prefs = site.link("preferences", ADA)
    csrf = csrf_in(site.client.get(prefs).text)
    pasted = "\n".join(f"2101.{n:05d}" for n in range(1, 100_000))  # 1.1 MB of arXiv ids
    assert 1024 * 1024 < len(pasted) < 2 * 1024 * 1024
    response = site.client.post(prefs + "/library",
                                data={"csrf": csrf, "action": "add", "papers": pasted})
    assert response.status_code == 200, response.text[-400:]
    assert "could not be read" not in response.text
    assert "Added 1000 of your papers" in response.text
    assert "only the first 1000 are kept" in response.text
