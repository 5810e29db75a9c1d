"""Settings, read once at the edge (the CLI or the scheduler) and passed down.

Every field can be set as ``NEWSLETTER_<NAME>`` in the environment or in a ``.env`` file;
``.env.example`` documents each one.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATABASES = ("sqlite", "postgresql")  # the dialects the store is written and tested for


def project_path(name: str) -> Path:
    """``./name`` when it exists in the working directory, else the one in the project checkout."""
    here = Path(name)
    return here if here.exists() else PROJECT_ROOT / name


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NEWSLETTER_", env_file=".env", env_file_encoding="utf-8", extra="ignore",
        env_ignore_empty=True,  # `NEWSLETTER_SMTP_PORT=` as in .env.example means "unset"
    )

    database_url: str = "sqlite:///newsletter.db"

    smtp_host: str | None = None
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = Field(default=30.0, gt=0)
    smtp_connections: int = Field(default=4, ge=1, le=64)
    smtp_validate_certs: bool = True

    # Delivery policy: see .env.example for what each one does.
    rate_limit: float = Field(default=0.0, ge=0)
    max_attempts: int = Field(default=5, ge=1)
    retry_base_seconds: float = Field(default=30.0, gt=0)
    retry_cap_seconds: float = Field(default=1800.0, gt=0)
    breaker_threshold: int = Field(default=10, ge=1)
    breaker_pause_seconds: float = Field(default=60.0, ge=0)
    suppress_after: int = Field(default=3, ge=1)

    # The scheduler (`newsletter run`).
    dispatch_interval_seconds: float = Field(default=60.0, gt=0)
    ingest_interval_minutes: float = Field(default=360.0, gt=0)
    stale_after_hours: float = Field(default=12.0, gt=0)

    # Workers (`newsletter worker`, and `send`/`run` themselves) claim this many deliveries at
    # a time and hold them for this long unless renewed; a dead worker's rows return then.
    # The ingest lease (one ingest at a time) is held and renewed the same way.
    claim_batch: int = Field(default=200, ge=1, le=10000)
    worker_lease_seconds: float = Field(default=60.0, gt=0)

    # Catalog URLs: give up on a server silent this long (connect, or between two reads), and
    # on any answer not complete within the deadline, however it trickles in.
    fetch_timeout_seconds: float = Field(default=20.0, gt=0)
    fetch_deadline_seconds: float = Field(default=120.0, gt=0)

    # A digest picks from the papers the catalog first saw in this many days: "new or trending",
    # and a daily run ranks hundreds of papers rather than the whole archive.
    window_days: float = Field(default=14.0, gt=0)

    # Fuse sentence-embedding similarity into the ranking when the `semantic` extra is
    # installed ("auto"), or never ("off").
    semantic: Literal["auto", "off"] = "auto"

    # Over SMTP, settings that would mail everyone a broken digest stop the run ("refuse"), or
    # are printed and the run goes on ("warn": a test relay on purpose, e.g. a local catcher).
    preflight: Literal["refuse", "warn"] = "refuse"

    from_address: str = "papers@example.org"
    from_name: str = "Trending Papers"
    base_url: str = "http://localhost:8000"
    secret_key: SecretStr | None = None  # over SMTP: required, 16+ characters (preflight.py)
    admin_password: SecretStr | None = None  # `newsletter serve`: the preview gallery
    click_tracking: bool = False  # digest links go through /click, counting clicks
    list_id: str | None = None
    unsubscribe_mailto: str | None = None
    reply_to: str | None = None  # Reply-To of every digest
    feedback_id: str | None = None  # Feedback-ID: <edition>:digest:<this>
    # Envelope sender for bounces; set, each digest gets its own (VERP): bounces+<token>@domain
    bounce_address: str | None = None
    # DKIM signing (rsa-sha256): a PEM private key, its selector, the signing domain
    dkim_key_file: Path | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None  # default: the From domain, which DMARC aligns with

    # What comes back (`newsletter bounces`, and a job of `newsletter run`): an IMAP mailbox...
    returns_imap_host: str | None = None
    returns_imap_port: int | None = Field(default=None, ge=1, le=65535)
    returns_imap_security: Literal["none", "starttls", "tls"] = "tls"
    returns_imap_username: str | None = None
    returns_imap_password: SecretStr | None = None
    returns_imap_folder: str = "INBOX"
    # ...or a Maildir folder; handled messages move to this folder (IMAP) or subfolder (Maildir)
    returns_maildir: Path | None = None
    returns_done_folder: str = "Processed"
    returns_interval_minutes: float = Field(default=15.0, gt=0)
    # Soft bounces (mailbox full, ...) on this many editions suppress an address
    soft_bounce_limit: int = Field(default=5, ge=1)

    outbox_dir: Path = Path("outbox")
    subscribers_dir: Path = Field(default_factory=lambda: project_path("subscribers"))
    templates_dir: Path = Field(default_factory=lambda: project_path("templates"))
    sources: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [str(project_path("seeds"))])

    @field_validator("base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("sources", mode="before")
    @classmethod
    def _one_or_a_list(cls, value: object) -> object:
        # A JSON list as documented, or one path or URL alone as people write it; left to
        # pydantic-settings, anything but valid JSON was a traceback.
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text.startswith(("[", "{")):
            return [text]
        try:
            found = json.loads(text)
        except json.JSONDecodeError:
            found = None
        if not isinstance(found, list):
            raise ValueError(f"{text[:60]!r} is not a JSON list of files, folders or URLs: "
                             'write ["seeds", "https://..."], or one path or URL alone')
        return found

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        dialect = value.partition(":")[0].partition("+")[0].lower()
        if dialect not in DATABASES:
            raise ValueError(f"{dialect or value!r} databases are not supported: use "
                             "sqlite:///path/to/file.db or postgresql+psycopg://user@host/db")
        return value

    @field_validator("retry_cap_seconds")
    @classmethod
    def _cap_above_base(cls, value: float, info: ValidationInfo) -> float:
        base = info.data.get("retry_base_seconds")
        if base is not None and value < base:
            raise ValueError(f"the longest wait between retries ({value:g} s) is shorter than "
                             f"the first one (NEWSLETTER_RETRY_BASE_SECONDS={base:g}): raise it")
        return value

    @property
    def port(self) -> int:
        if self.smtp_port is not None:
            return self.smtp_port
        return {"none": 25, "starttls": 587, "tls": 465}[self.smtp_security]

    @cached_property
    def domain(self) -> str:
        return self.from_address.rpartition("@")[2] or "localhost"

    @property
    def list_id_value(self) -> str:
        return self.list_id or f"papers.{self.domain}"

    @property
    def unsubscribe_address(self) -> str:
        return self.unsubscribe_mailto or f"unsubscribe@{self.domain}"

    def as_environment(self) -> dict[str, str]:
        """These settings as NEWSLETTER_* variables: what a helper process needs to share them."""
        env = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, list):
                value = json.dumps(value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            env[f"NEWSLETTER_{name.upper()}"] = str(value)
        return env

    @property
    def imap_port(self) -> int:
        if self.returns_imap_port:
            return self.returns_imap_port
        return 993 if self.returns_imap_security == "tls" else 143

    @property
    def dkim_signing_domain(self) -> str:
        return self.dkim_domain or self.domain

    def describe_delivery(self) -> str:
        if self.smtp_host:
            return f"SMTP {self.smtp_host}:{self.port} ({self.smtp_security})"
        return f"outbox folder {self.outbox_dir}"
