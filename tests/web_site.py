"""The site under test for the test_web_*.py files: `newsletter serve`'s app over the shipped
catalog and subscribers, driven through Starlette's TestClient, and the links and forms a person
would use. Fixtures: ``site``, and ``tracking`` (the same with click tracking on); a test file
imports the ones it uses."""

from __future__ import annotations

import email
import email.policy
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from newsletter.catalog import ingest
from newsletter.compose import tokens
from newsletter.settings import Settings
from newsletter.store import schema
from newsletter.store.catalog import load_paper
from newsletter.store.engine import connect, utcnow
from newsletter.store.subscribers import sync_subscribers
from newsletter.subscribers import read_subscriber_files
from newsletter.web import create_app

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-secret-for-links"  # 16+ characters: `serve` refuses a weaker key
PASSWORD = "correct horse battery staple"
ADA = "ada@example.org"
EMMY = "emmy@example.org"


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
    engine = connect(settings.database_url)
    ingest.ingest(engine, [ROOT / "seeds"], utcnow())
    found, _ = read_subscriber_files(settings.subscribers_dir)
    sync_subscribers(engine, found)
    return engine


def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("NEWSLETTER_") and name != "NEWSLETTER_SEMANTIC":
            monkeypatch.delenv(name)


@contextmanager
def uvicorn_on(app: Any, sock: socket.socket) -> Iterator[None]:
    """``app`` under uvicorn in a thread, on ``sock`` (bound by the caller, who may need its port
    before the app exists); stopped and the socket closed on exit."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@dataclass
class Site:
    settings: Settings
    engine: Engine
    client: TestClient

    def csrf(self) -> str:
        return csrf_in(self.client.get("/").text)

    def row(self, address: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            found = conn.execute(select(schema.subscribers)
                                 .where(schema.subscribers.c.email == address)).first()
        return dict(found._mapping) if found else {}

    def link(self, purpose: str, address: str, item: str | None = None) -> str:
        """The path of ``address``'s link for ``purpose``, as their digests carry it."""
        row = self.row(address)
        return f"/{purpose}/{tokens.make(SECRET, purpose, row['link_id'], row['link_key'], item)}"

    def everyone(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(schema.subscribers)
                                                           .order_by(schema.subscribers.c.id))]

    def outbox(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
                for p in sorted(Path(self.settings.outbox_dir).rglob("*.eml"))]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    clean_environment(monkeypatch, tmp_path)
    settings = site_settings(tmp_path)
    engine = prepare(settings)
    with TestClient(create_app(settings, engine), follow_redirects=False) as client:
        yield Site(settings, engine, client)
    engine.dispose()


@pytest.fixture
def served(site: Site) -> Iterator[str]:
    """The site's app under uvicorn on a loopback port: real sockets, real parallel requests."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    with uvicorn_on(site.client.app, sock):
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    clean_environment(monkeypatch, tmp_path)
    settings = site_settings(tmp_path, click_tracking=True)
    engine = prepare(settings)
    yield Site(settings, engine, TestClient(create_app(settings, engine), follow_redirects=False))


# -- links and forms ----------------------------------------------------------------------------

def csrf_in(html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', html)[1]  # type: ignore[index]


def tampered(token: str) -> str:
    chars = list(token)
    chars[5] = "A" if chars[5] != "A" else "B"
    return "".join(chars)


def confirmation_path(message: email.message.EmailMessage) -> str:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return re.search(r"http://testserver(/confirm/\S+)", text)[1]  # type: ignore[index]


def clicks_of(site: Site, paper_id: str) -> int | None:
    paper = load_paper(site.engine, paper_id)
    assert paper is not None
    return paper.clicks


def confirm(site: Site, path: str) -> Any:
    """Open a confirmation link and press its one button, as a person does."""
    page = site.client.get(path)
    return site.client.post(path, data={"csrf": csrf_in(page.text)})


def preference_form(site: Site, **changes: str) -> dict[str, str]:
    form = {"csrf": site.csrf(), "name": "Ada Lovelace", "topics": "GNN", "exclude": "",
            "max_papers": "8", "frequency": "daily", "weekday": "monday", "send_time": "07:00",
            "timezone": "UTC", "action": "save"}
    return {**form, **changes}


def sign_in(site: Site, password: str = PASSWORD) -> Any:
    return site.client.post("/admin/login", data={"password": password, "csrf": site.csrf()})
