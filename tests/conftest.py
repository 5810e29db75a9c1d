"""Shared fixtures. Add new fixtures in their own section; keep each one short."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# Loading the embedding model and embedding a fresh catalog costs tens of seconds per database;
# the tests that exercise the semantic path (test_semantic.py, the relevance harness) turn it on
# themselves. Every other test, and every CLI subprocess they start, ranks lexically.
os.environ.setdefault("NEWSLETTER_SEMANTIC", "off")

# tests/ has no __init__.py, so pytest puts tests/ itself on sys.path: import by bare name
from smtp_server import (
    Certificate,
    CertificateUnavailable,
    SmtpServer,
    make_self_signed_certificate,
)

# -- SMTP ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for CN=localhost; skips the test when openssl is unusable."""
    try:
        return make_self_signed_certificate(tmp_path_factory.mktemp("tls"))
    except CertificateUnavailable as error:
        pytest.skip(str(error))


@pytest.fixture
def smtp_server_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., SmtpServer]]:
    """``make(**behaviour)`` starts an ``SmtpServer`` (see tests/smtp_server.py); all are stopped
    after the test. ``tls="starttls"|"tls"`` gets the session certificate automatically."""
    servers: list[SmtpServer] = []

    def make(**behaviour: Any) -> SmtpServer:
        if behaviour.get("tls", "none") != "none":
            behaviour.setdefault("certificate", request.getfixturevalue("tls_certificate"))
        server = SmtpServer(**behaviour).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_server(smtp_server_factory: Callable[..., SmtpServer]) -> SmtpServer:
    """A well-behaved server: plain SMTP, no auth, accepts everything."""
    return smtp_server_factory()


# -- databases -------------------------------------------------------------------------------
# `database_url` runs a test on SQLite and on the local PostgreSQL; `engine` opens it.
from databases import database_url, engine  # noqa: E402,F401

# -- HTTP ------------------------------------------------------------------------------------
# `http_server`: a real local HTTP server serving what the test registers (tests/http_server.py).
from http_server import FixtureServer  # noqa: E402


@pytest.fixture
def http_server() -> Iterator[FixtureServer]:
    server = FixtureServer().start()
    yield server
    server.stop()


# -- IMAP ------------------------------------------------------------------------------------
# `imap_server`: Debian's dovecot on a free loopback port, its own config and Maildir in a
# temporary folder (tests/imap_server.py); CI installs dovecot-imapd, so there it must start.
from imap_server import ImapServer, ImapUnavailable  # noqa: E402


@pytest.fixture
def imap_server() -> Iterator[ImapServer]:
    import shutil
    import tempfile
    from pathlib import Path

    # not pytest's tmp_path: dovecot's own users must reach the folder, and pytest's is 0700
    folder = Path(tempfile.mkdtemp(prefix="newsletter-imap-"))
    folder.chmod(0o755)
    try:
        server = ImapServer(folder).start()
    except ImapUnavailable as error:
        shutil.rmtree(folder, ignore_errors=True)
        if os.environ.get("CI"):
            raise
        pytest.skip(str(error))
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


# -- ranking -----------------------------------------------------------------------------------


@pytest.fixture
def unrankable(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """``unrankable("PINNs")``: ranking that topic raises (a bug on one topic); the others
    rank as usual."""
    from newsletter.relevance.topic import TopicScorer

    def breaks(topic: str) -> None:
        score = TopicScorer.score

        def broken(self: TopicScorer, query: Any) -> Any:
            if query.topic == topic:
                raise ZeroDivisionError("a bug")
            return score(self, query)

        monkeypatch.setattr(TopicScorer, "score", broken)
    return breaks
