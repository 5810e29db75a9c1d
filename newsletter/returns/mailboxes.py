"""Where returns wait: an IMAP folder, or a Maildir. Both give each waiting message's bytes and
move a handled one to the done folder; an unreadable one is simply not moved.

IMAP over imaplib (stdlib): the job reads a few messages a day at most, in a thread of its own
under ``newsletter run``, so an async client would buy nothing. A Maildir is read and moved
with ``os.rename`` (atomic within one filesystem): into ``<maildir>/.<done folder>/cur``, a
Maildir++ subfolder as dovecot and Courier name them.
"""

from __future__ import annotations

import imaplib
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from newsletter.errors import ConfigError
from newsletter.settings import Settings

IMAP_SETTINGS = ("NEWSLETTER_RETURNS_IMAP_HOST, _PORT, _SECURITY, _USERNAME and _PASSWORD")


@dataclass(frozen=True, slots=True)
class Letter:
    key: str  # the IMAP UID, or the Maildir file name
    data: bytes


class Mailbox(Protocol):
    def __enter__(self) -> Self: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...

    def letters(self) -> Iterator[Letter]: ...

    def done(self, letter: Letter) -> None: ...

    def describe(self) -> str: ...


def open_mailbox(settings: Settings) -> Mailbox | None:
    """The configured mailbox of returns, or None when there is none."""
    if settings.returns_imap_host:
        password = settings.returns_imap_password
        return ImapMailbox(settings.returns_imap_host, settings.imap_port,
                           settings.returns_imap_security, settings.returns_imap_username or "",
                           password.get_secret_value() if password else "",
                           settings.returns_imap_folder, settings.returns_done_folder)
    if settings.returns_maildir:
        return MaildirMailbox(settings.returns_maildir, settings.returns_done_folder)
    return None


class ImapMailbox:
    def __init__(self, host: str, port: int, security: str, username: str, password: str,
                 folder: str = "INBOX", done_folder: str = "Processed",
                 timeout: float = 30.0) -> None:
        self.host, self.port, self.security = host, port, security
        self.username, self._password = username, password
        self.folder, self.done_folder, self.timeout = folder, done_folder, timeout
        self._client: imaplib.IMAP4 | None = None

    def describe(self) -> str:
        return f"IMAP {self.username}@{self.host}:{self.port}/{self.folder}"

    def __enter__(self) -> Self:
        where = f"the IMAP server {self.host}:{self.port} ({self.security})"
        try:
            client = self._connect()
        except (OSError, imaplib.IMAP4.error) as exc:
            raise ConfigError(f"cannot connect to {where}: {exc}. Check {IMAP_SETTINGS}.") from exc
        try:
            client.login(self.username, self._password)
        except (OSError, imaplib.IMAP4.error) as exc:
            client.shutdown()
            raise ConfigError(f"{where} refused the login for {self.username!r}: "
                              f"{_text(exc)}. Check {IMAP_SETTINGS}.") from exc
        status, detail = client.select(_quoted(self.folder))
        if status != "OK":
            client.logout()
            raise ConfigError(f"{where} has no folder {self.folder!r} ({_text(detail)}). "
                              "Check NEWSLETTER_RETURNS_IMAP_FOLDER.")
        client.create(_quoted(self.done_folder))  # "already exists" is fine
        self._client = client
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
                client.logout()
            except (OSError, imaplib.IMAP4.error):
                client.shutdown()

    def letters(self) -> Iterator[Letter]:
        client = self._ready()
        _, found = client.uid("SEARCH", "ALL")
        for uid in (found[0] or b"").split():
            # PEEK: reading does not mark it seen, so one left in place looks untouched
            status, parts = client.uid("FETCH", uid, "(BODY.PEEK[])")
            data = next((p[1] for p in parts if isinstance(p, tuple)), None)
            if status == "OK" and data is not None:
                yield Letter(uid.decode(), data)

    def done(self, letter: Letter) -> None:
        client = self._ready()
        if "MOVE" in client.capabilities:  # RFC 6851: one atomic step
            status, detail = client.uid("MOVE", letter.key, _quoted(self.done_folder))
        else:
            status, detail = client.uid("COPY", letter.key, _quoted(self.done_folder))
            if status == "OK":
                client.uid("STORE", letter.key, "+FLAGS", "(\\Deleted)")
                client.expunge()
        if status != "OK":
            raise ConfigError(f"cannot move message {letter.key} to {self.done_folder!r}: "
                              f"{_text(detail)}. Check NEWSLETTER_RETURNS_DONE_FOLDER.")

    def _connect(self) -> imaplib.IMAP4:
        context = ssl.create_default_context()
        if self.security == "tls":
            return imaplib.IMAP4_SSL(self.host, self.port, ssl_context=context,
                                     timeout=self.timeout)
        client = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
        if self.security == "starttls":
            client.starttls(context)
        return client

    def _ready(self) -> imaplib.IMAP4:
        if self._client is None:
            raise RuntimeError("use the mailbox in a with block")
        return self._client


class MaildirMailbox:
    def __init__(self, path: Path, done_folder: str = "Processed") -> None:
        self.path = Path(path)
        self.done_path = self.path / f".{done_folder}"

    def describe(self) -> str:
        return f"Maildir {self.path}"

    def __enter__(self) -> Self:
        if not (self.path / "new").is_dir() or not (self.path / "cur").is_dir():
            raise ConfigError(f"{self.path} is not a Maildir (no new/ and cur/ in it): check "
                              "NEWSLETTER_RETURNS_MAILDIR")
        for sub in ("tmp", "new", "cur"):
            (self.done_path / sub).mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    def letters(self) -> Iterator[Letter]:
        for sub in ("new", "cur"):
            for path in sorted((self.path / sub).iterdir()):
                if path.is_file() and not path.name.startswith("."):
                    try:
                        yield Letter(f"{sub}/{path.name}", path.read_bytes())
                    except FileNotFoundError:
                        continue  # taken meanwhile by another reader

    def done(self, letter: Letter) -> None:
        source = self.path / letter.key
        name = source.name if ":2," in source.name else f"{source.name}:2,S"
        os.rename(source, self.done_path / "cur" / name)


def _quoted(folder: str) -> str:
    return f'"{folder}"' if any(c in folder for c in ' "(){%*\\') else folder


def _text(value: object) -> str:
    if isinstance(value, list):
        value = b" ".join(v for v in value if isinstance(v, bytes))
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value).split())
