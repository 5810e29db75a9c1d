"""Write finished messages to a folder of ``.eml`` files: the transport when no SMTP host is set.

See :mod:`newsletter.delivery.transport` for the contract every transport keeps.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from newsletter.errors import ConfigError
from newsletter.models import Outgoing

_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]")


def safe_filename(name: str, *, limit: int = 100) -> str:
    """A single path component for ``name``: no separators, no leading dot, bounded length.

    When cleaning changed anything, a hash of the original is appended so that two different
    addresses (``a/b@x`` and ``a_b@x``) never share a file.
    """
    cleaned = _UNSAFE.sub("_", name).lstrip(".")[:limit] or "_"
    if cleaned == name:
        return cleaned
    return f"{cleaned}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:10]}"


class OutboxTransport:
    """Writes ``<directory>/<edition>/<recipient>.eml``: the default when no SMTP host is set.

    Sending the same edition to the same person again overwrites the file, which matches what a
    rerun means. Each file appears complete or not at all (temp file + fsync + ``os.replace``).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        return None

    def describe(self) -> str:
        return f"outbox folder {self.directory}"

    async def check(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(_write_atomically, self.directory / ".write-check", b"")
            (self.directory / ".write-check").unlink()
        except OSError as error:
            raise ConfigError(f"cannot write to the outbox folder {self.directory}: {error}. "
                              "Check NEWSLETTER_OUTBOX_DIR.") from error

    def path_for(self, message: Outgoing) -> Path:
        folder = self.directory / safe_filename(message.edition or "undated")
        return folder / f"{safe_filename(message.recipient)}.eml"

    async def send(self, message: Outgoing) -> str:
        path = self.path_for(message)
        try:
            # fsync can take milliseconds: keep it off the event loop
            await asyncio.to_thread(_write_atomically, path, message.data)
        except OSError as error:
            # A full disk or a broken folder fails every message alike and says nothing about
            # the address: stop the run (the digest stays queued) rather than fail each one.
            raise ConfigError(f"cannot write {path}: {error.strerror or error}. Free some "
                              "space or fix NEWSLETTER_OUTBOX_DIR; the digests not written "
                              "stay queued for the next run.") from error
        return str(path)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
