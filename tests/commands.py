"""Running the `newsletter` command as a user would: a clean environment, a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A clean working folder: its own database and outbox, no NEWSLETTER_* from outside (but
    the semantic switch, see conftest), the shipped subscribers and seeds."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("NEWSLETTER_") and name != "NEWSLETTER_SEMANTIC":
            monkeypatch.delenv(name)
    return {"NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'n.db'}",
            "NEWSLETTER_OUTBOX_DIR": str(tmp_path / "outbox"),
            "NEWSLETTER_SECRET_KEY": "test-secret"}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "newsletter", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)
