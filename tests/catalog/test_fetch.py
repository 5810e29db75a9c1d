from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from http_server import LAST_MODIFIED, FixtureServer

from newsletter.catalog.sources import fetch as fetching
from newsletter.catalog.sources.fetch import Fetcher, FetchLimits, Validators
from newsletter.errors import SourceError


@pytest.fixture
def client() -> Iterator[Fetcher]:
    with Fetcher(FetchLimits(timeout=0.5)) as fetcher:
        yield fetcher


def fetch(fetcher: Fetcher, url: str, validators: Validators | None = None) -> fetching.Fetched:
    return fetcher.fetch(url, validators)


def test_a_fetch_returns_the_body_and_the_validators_to_send_next_time(
        http_server: FixtureServer, client: Fetcher) -> None:
    url = http_server.serve("/daily", b"[]", "application/json")
    got = fetch(client, url)
    assert (got.content, got.content_type, got.not_modified) == (b"[]", "application/json", False)
    assert got.validators == Validators(http_server.routes["/daily"].etag, LAST_MODIFIED)
    (request,) = http_server.requests
    assert "If-None-Match" not in request.headers and "If-Modified-Since" not in request.headers
    assert request.headers["User-Agent"].startswith("newsletter/")


def test_a_conditional_request_for_unchanged_content_is_not_modified(
        http_server: FixtureServer, client: Fetcher) -> None:
    url = http_server.serve("/daily", b"[]")
    first = fetch(client, url)
    second = fetch(client, url, first.validators)
    assert second.not_modified and second.content is None
    assert second.validators == first.validators  # still the ones to send next time
    sent = http_server.requests[1].headers
    assert (sent["If-None-Match"], sent["If-Modified-Since"]) == (
        first.validators.etag, LAST_MODIFIED)


def test_changed_content_is_fetched_again_despite_old_validators(
        http_server: FixtureServer, client: Fetcher) -> None:
    url = http_server.serve("/daily", b"[]")
    first = fetch(client, url)
    http_server.serve("/daily", b"[1]")
    again = fetch(client, url, first.validators)
    assert again.content == b"[1]" and again.validators.etag != first.validators.etag


@pytest.mark.parametrize("status, advice", [
    (500, "500 Internal Server Error: a problem on its side"),
    (503, "503 Service Unavailable: a problem on its side"),
    (404, "404 Not Found: check the URL"),
    (429, "429 Too Many Requests: too many requests"),
])
def test_an_http_error_is_a_source_error_naming_the_url_and_the_status(
        http_server: FixtureServer, client: Fetcher, status: int, advice: str) -> None:
    url = http_server.fail("/broken", status)
    with pytest.raises(SourceError) as caught:
        fetch(client, url)
    assert caught.value.location == url
    assert advice in str(caught.value)


def test_a_server_slower_than_the_timeout_is_a_timeout_error_within_the_timeout(
        http_server: FixtureServer, client: Fetcher) -> None:
    url = http_server.stall("/slow")
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"no answer within 0\.5 s \(ReadTimeout\)") as caught:
        fetch(client, url)
    assert time.monotonic() - started < 3
    assert caught.value.location == url


def test_a_refused_connection_is_a_source_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on once this socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with Fetcher(FetchLimits(timeout=0.5)) as client, \
            pytest.raises(SourceError, match="ConnectError"):
        fetch(client, f"http://127.0.0.1:{port}/daily")


def test_an_oversized_answer_is_refused(http_server: FixtureServer, client: Fetcher,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetching, "MAX_BYTES", 1000)
    url = http_server.serve("/huge", b"x" * 5000)
    with pytest.raises(SourceError, match="not a papers listing"):
        fetch(client, url)
