"""Running the `newsletter` command as a user would: a clean environment, a real process.

``clean_env`` and ``cli`` run in a working folder of the test's own (it changes to it);
``process_env``, ``run`` and ``start`` build the whole environment of a process, for the
fault tests that start several, and read what they left in the database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from newsletter.store import schema
from newsletter.store.engine import connect

SECRET = "test-secret-for-links"  # 16+ characters: `send` refuses a weaker key over SMTP


def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A clean working folder: its own database and outbox, no NEWSLETTER_* from outside (but
    the semantic switch, see conftest), the shipped subscribers and seeds."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("NEWSLETTER_") and name != "NEWSLETTER_SEMANTIC":
            monkeypatch.delenv(name)
    return {"NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'n.db'}",
            "NEWSLETTER_OUTBOX_DIR": str(tmp_path / "outbox"),
            "NEWSLETTER_SECRET_KEY": SECRET}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "newsletter", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


def process_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a process with no NEWSLETTER_* setting but these: a database file and
    an outbox in ``tmp_path``, a secret key, and ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NEWSLETTER_") or k == "NEWSLETTER_SEMANTIC"}
    env.update({"NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'n.db'}",
                "NEWSLETTER_OUTBOX_DIR": str(tmp_path / "outbox"),
                "NEWSLETTER_SECRET_KEY": SECRET, **extra})
    return env


def run(env: dict[str, str], *args: str, timeout: float = 120,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "newsletter", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "newsletter", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def write_people(folder: Path, emails: list[str], **fields: str) -> Path:
    """A subscribers folder with one file listing ``emails`` (topic: neural networks)."""
    folder.mkdir(parents=True, exist_ok=True)
    extra = "".join(f'{key} = "{value}"\n' for key, value in fields.items())
    (folder / "list.toml").write_text("".join(
        f'[[subscriber]]\nemail = "{email}"\ntopics = ["neural networks"]\nmax_papers = 3\n'
        f'{extra}\n' for email in emails))
    return folder


def people(n: int) -> list[str]:
    return [f"p{i:03d}@example.org" for i in range(n)]


def database(env: dict[str, str]) -> Engine:
    return connect(env["NEWSLETTER_DATABASE_URL"])


def statuses(env: dict[str, str]) -> dict[str, str]:
    engine = database(env)
    with engine.connect() as conn:
        rows = conn.execute(select(schema.subscribers.c.email, schema.subscribers.c.status))
        found = {row.email: row.status for row in rows}
    engine.dispose()
    return found


def deliveries(env: dict[str, str]) -> list[tuple[str, str, str]]:
    """(email, edition, state) of every ledger row."""
    engine = database(env)
    d, s = schema.deliveries.c, schema.subscribers.c
    query = (select(s.email, d.edition, d.state)
             .join(schema.subscribers, s.id == d.subscriber_id).order_by(d.id))
    with engine.connect() as conn:
        found = [(row.email, row.edition, row.state) for row in conn.execute(query)]
    engine.dispose()
    return found
