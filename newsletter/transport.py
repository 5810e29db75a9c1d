"""Hand finished messages over: to an SMTP relay, or to a folder of ``.eml`` files.

Both transports are async context managers; ``send`` returns what the other side said (the
server's reply, or the file written) and raises ``SendError`` for one message that did not go
out. A transport that can never work (wrong host, wrong password) raises ``ConfigError`` at the
first connection instead, so a run stops rather than failing every subscriber one by one.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import ssl
import tempfile
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Protocol, Self

import aiosmtplib
from pydantic import SecretStr

from newsletter.errors import ConfigError, SendError
from newsletter.models import Outgoing

if TYPE_CHECKING:
    from newsletter.settings import Settings

Security = Literal["none", "starttls", "tls"]
_SECURITIES = ("none", "starttls", "tls")


class Transport(Protocol):
    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None: ...

    async def send(self, message: Outgoing) -> str: ...

    async def check(self) -> None:
        """Raise ConfigError now if sending cannot work, before any delivery is begun."""

    def describe(self) -> str: ...


# -- outbox ----------------------------------------------------------------------------------

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
            raise SendError(message.recipient, f"cannot write {path}: {error}") from error
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


# -- SMTP ------------------------------------------------------------------------------------

_CONNECTION_SETTINGS = "NEWSLETTER_SMTP_HOST, NEWSLETTER_SMTP_PORT and NEWSLETTER_SMTP_SECURITY"
_LOGIN_SETTINGS = "NEWSLETTER_SMTP_USERNAME and NEWSLETTER_SMTP_PASSWORD"


class SmtpTransport:
    """Sends through one relay over a pool of at most ``connections`` reused connections.

    A semaphore of ``connections`` bounds the sends in flight; each send takes the most recently
    used idle client, or connects when there is none. So at most ``connections`` are ever open,
    and no more are opened than the concurrency actually needs. A connection that failed is
    closed rather than returned, and the next send that finds no idle client connects afresh.
    """

    def __init__(self, host: str, port: int, security: Security = "starttls",
                 username: str | None = None, password: str | None = None,
                 timeout: float = 30.0, connections: int = 4, *,
                 validate_certs: bool = True) -> None:
        if security not in _SECURITIES:
            raise ConfigError(f"NEWSLETTER_SMTP_SECURITY must be one of {', '.join(_SECURITIES)}, "
                              f"not {security!r}")
        if connections < 1:
            raise ConfigError(f"NEWSLETTER_SMTP_CONNECTIONS must be at least 1, not {connections}")
        self.host, self.port, self.security = host, port, security
        self.username = username
        # SecretStr keeps it out of repr(), vars() and tracebacks that show locals
        self._password = SecretStr(password) if password else None
        self.timeout = timeout
        self.connections = connections
        self.validate_certs = validate_certs
        self._limit = asyncio.Semaphore(connections)
        self._idle: list[aiosmtplib.SMTP] = []  # a stack: reuse the warmest connection first
        self._connected_once = False

    def __repr__(self) -> str:
        return (f"SmtpTransport({self.host!r}, {self.port}, {self.security!r}, "
                f"username={self.username!r}, connections={self.connections})")

    def describe(self) -> str:
        return f"SMTP {self.host}:{self.port} ({self.security})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """QUIT every idle connection; the transport can be entered again afterwards."""
        clients, self._idle = self._idle, []
        await asyncio.gather(*(_quit(client) for client in clients))

    async def check(self) -> None:
        """Open (and pool) one connection, so wrong settings fail before any work starts."""
        async with self._limit:
            client = self._take_idle() or await self._connect("(connection check)")
            self._idle.append(client)

    async def send(self, message: Outgoing) -> str:
        async with self._limit:
            client = self._take_idle() or await self._connect(message.recipient)
            keep = False
            try:
                reply = await self._transact(client, message)
                keep = True
                return reply
            except SendError as error:
                keep = _reusable(client, error)
                raise
            finally:
                # cancellation and ConfigError land here too: the session state is unknown
                if keep:
                    self._idle.append(client)
                else:
                    client.close()

    # -- internals ---------------------------------------------------------------------------
    def _take_idle(self) -> aiosmtplib.SMTP | None:
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:  # the server may have hung up while it sat idle
                return client
            client.close()
        return None

    async def _connect(self, recipient: str) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self.host, port=self.port, username=self.username,
            password=self._password.get_secret_value() if self._password else None,
            timeout=self.timeout,
            use_tls=self.security == "tls",
            # for "none", False stops aiosmtplib's opportunistic STARTTLS
            start_tls=self.security == "starttls",
            validate_certs=self.validate_certs)
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as error:
            client.close()
            raise self._connect_failure(recipient, error) from error
        self._connected_once = True
        return client

    def _connect_failure(self, recipient: str, error: Exception) -> Exception:
        where = f"SMTP server {self.host}:{self.port} ({self.security})"
        detail = self._scrub(_describe(error))
        code = getattr(error, "code", None)
        if isinstance(error, aiosmtplib.SMTPAuthenticationError) and code and code >= 500:
            return ConfigError(f"{where} refused the login for user {self.username!r}: {detail}. "
                               f"Check {_LOGIN_SETTINGS}.")
        if code and 400 <= code < 500:
            return SendError(recipient, f"{where}: {detail}", code=code)
        if self._connected_once:
            # it worked before, so the settings are right: a passing outage, worth a retry
            return SendError(recipient, f"cannot connect to {where}: {detail}")
        return ConfigError(f"cannot connect to {where}: {detail}. Check {_CONNECTION_SETTINGS}"
                           + (f", {_LOGIN_SETTINGS}" if self.username else "") + ".")

    async def _transact(self, client: aiosmtplib.SMTP, message: Outgoing) -> str:
        # Non-ASCII addresses need SMTPUTF8; the server says no if it cannot (a permanent error)
        ascii_only = message.sender.isascii() and message.recipient.isascii()
        try:
            _, reply = await client.sendmail(
                message.sender, [message.recipient], message.data,
                mail_options=None if ascii_only else ["SMTPUTF8"])
        except (aiosmtplib.SMTPException, OSError, ValueError) as error:
            raise self._send_failure(message.recipient, error) from error
        return f"250 {reply}"

    def _send_failure(self, recipient: str, error: Exception) -> SendError | ConfigError:
        if isinstance(error, aiosmtplib.SMTPRecipientsRefused) and error.recipients:
            error = error.recipients[0]
        if isinstance(error, aiosmtplib.SMTPSenderRefused) and error.code >= 500:
            # Refusing our MAIL FROM refuses every message alike: recording it against each
            # subscriber would end up suppressing good addresses for our own misconfiguration
            return ConfigError(
                f"SMTP server {self.host}:{self.port} refused the sender {error.sender}: "
                f"{self._scrub(_describe(error))}. Check NEWSLETTER_FROM_ADDRESS, "
                f"NEWSLETTER_SMTP_USERNAME and NEWSLETTER_SMTP_PASSWORD.")
        if isinstance(error, aiosmtplib.SMTPResponseException):
            return SendError(recipient, self._scrub(f"{error.code} {error.message}"),
                             code=error.code, permanent=error.code >= 500)
        if isinstance(error, (aiosmtplib.SMTPNotSupported, ValueError)):
            return SendError(recipient, self._scrub(_describe(error)), permanent=True)
        # Disconnects and timeouts: the server may or may not have the message; retry later
        return SendError(recipient, self._scrub(
            f"connection to {self.host}:{self.port} failed: {_describe(error)}"))

    def _scrub(self, text: str) -> str:
        """Servers and libraries may echo what they were sent; never pass the password on."""
        if self._password is None:
            return text
        return text.replace(self._password.get_secret_value(), "***")


def _describe(error: BaseException) -> str:
    """The part of an error a person can act on, without aiosmtplib's repeated host and port."""
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return f"{error.code} {error.message}"
    cause = error.__cause__
    if isinstance(error, aiosmtplib.SMTPConnectError) and isinstance(cause, OSError):
        error = cause
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed: {error.reason or error}"
    if isinstance(error, OSError) and not isinstance(error, aiosmtplib.SMTPException):
        if error.errno and error.errno > 0:
            return os.strerror(error.errno)
        return error.strerror or str(error) or type(error).__name__
    return (str(error) or type(error).__name__).rstrip(".")


def _reusable(client: aiosmtplib.SMTP, error: SendError) -> bool:
    """A refused message leaves the session usable; a drop, timeout or 421 does not."""
    if not client.is_connected:
        return False
    if error.code is not None:
        return error.code != 421  # aiosmtplib already closed it, this is belt and braces
    return error.permanent  # refused before anything was sent (bad address, no SMTPUTF8)


async def _quit(client: aiosmtplib.SMTP) -> None:
    try:
        if client.is_connected:
            await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        pass  # closing anyway; a server that went away needs no goodbye
    finally:
        client.close()


# -- choice ----------------------------------------------------------------------------------

def make_transport(settings: Settings) -> Transport:
    """SMTP when a host is configured, else the outbox folder."""
    if not settings.smtp_host:
        return OutboxTransport(settings.outbox_dir)
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpTransport(
        settings.smtp_host, settings.port, settings.smtp_security,
        username=settings.smtp_username, password=password, timeout=settings.smtp_timeout,
        connections=settings.smtp_connections,
        validate_certs=settings.smtp_validate_certs)
