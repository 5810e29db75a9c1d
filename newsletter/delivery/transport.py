"""Hand finished messages over: to an SMTP relay, or to a folder of ``.eml`` files.

Both transports are async context managers; ``send`` returns what the other side said (the
server's reply, or the file written) and raises ``SendError`` for one message that did not go
out, with the ``stage`` it failed at (see ``newsletter.delivery.faults`` for what to do about it). A
transport that can never work (wrong host, wrong password) raises ``ConfigError`` at the first
connection instead, so a run stops rather than failing every subscriber one by one.

The outbox lives in ``newsletter.delivery.outbox``; ``make_transport`` picks it when no SMTP host is set. What one
SMTP message takes on the wire (the DATA payload, MAIL parameters, EHLO/RSET/QUIT, reading an
error) is in ``newsletter.delivery.smtpwire``.
"""

from __future__ import annotations

import asyncio
import re
from base64 import b64decode, b64encode
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Protocol, Self

import aiosmtplib
from pydantic import SecretStr

from newsletter.delivery.outbox import OutboxTransport
from newsletter.delivery.smtpwire import (
    data_payload,
    describe,
    greet,
    mail_options,
    protocol_of,
    quit_quietly,
    reset,
    reusable,
)
from newsletter.errors import ConfigError, SendError, Stage
from newsletter.models import Outgoing

__all__ = ["OutboxTransport", "Security", "SmtpTransport", "Transport", "make_transport"]

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
        await asyncio.gather(*(quit_quietly(client) for client in clients))

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
                keep = reusable(client, error) and await reset(client)
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
            await greet(client)
        except (aiosmtplib.SMTPException, OSError) as error:
            client.close()
            raise self._connect_failure(recipient, error) from error
        self._connected_once = True
        return client

    def _connect_failure(self, recipient: str, error: Exception) -> Exception:
        where = f"SMTP server {self.host}:{self.port} ({self.security})"
        detail = self._scrub(describe(error))
        code = getattr(error, "code", None)
        if isinstance(error, aiosmtplib.SMTPAuthenticationError) and code and code >= 500:
            return ConfigError(f"{where} refused the login for user {self.username!r}: {detail}. "
                               f"Check {_LOGIN_SETTINGS}.")
        if code and 400 <= code < 500:
            return SendError(recipient, f"{where}: {detail}", code=code, stage="connect")
        if self._connected_once:
            # it worked before, so the settings are right: a passing outage, worth a retry
            return SendError(recipient, f"cannot connect to {where}: {detail}", stage="connect")
        return ConfigError(f"cannot connect to {where}: {detail}. Check {_CONNECTION_SETTINGS}"
                           + (f", {_LOGIN_SETTINGS}" if self.username else "") + ".")

    async def _transact(self, client: aiosmtplib.SMTP, message: Outgoing) -> str:
        """MAIL, RCPT, DATA and the body as separate steps, so a failure knows its stage.

        ``SMTP.sendmail`` (and ``SMTP.data``) would hide whether the server had answered 354
        when the connection broke: before it, the server cannot have the message and a retry is
        safe; after the body was written, it may have queued it and only the reply was lost.
        """
        stage: Stage = "mail"
        try:
            payload, size = data_payload(message.data)
            options, encoding = mail_options(client, message, size)
            await client.mail(message.sender, options=options, encoding=encoding)
            stage = "rcpt"
            await client.rcpt(message.recipient, encoding=encoding)
            stage = "data"
            reply = await client.execute_command(b"DATA")
            if reply.code != 354:
                raise aiosmtplib.SMTPDataError(reply.code, reply.message)
            # raises if the connection is already gone: then nothing of the body was sent
            protocol_of(client).write(payload)
            stage = "message"
            reply = await protocol_of(client).read_response(timeout=self.timeout)
            if reply.code != 250:
                raise aiosmtplib.SMTPDataError(reply.code, reply.message)
        except (aiosmtplib.SMTPException, OSError, ValueError) as error:
            raise self._send_failure(message.recipient, error, stage) from error
        return f"{reply.code} {reply.message}"

    def _send_failure(self, recipient: str, error: Exception,
                      stage: Stage) -> SendError | ConfigError:
        if isinstance(error, aiosmtplib.SMTPSenderRefused) and error.code >= 500:
            # Refusing our MAIL FROM refuses every message alike: recording it against each
            # subscriber would end up suppressing good addresses for our own misconfiguration
            return ConfigError(
                f"SMTP server {self.host}:{self.port} refused the sender {error.sender}: "
                f"{self._scrub(describe(error))}. Check NEWSLETTER_FROM_ADDRESS, "
                f"NEWSLETTER_SMTP_USERNAME and NEWSLETTER_SMTP_PASSWORD.")
        if isinstance(error, aiosmtplib.SMTPResponseException):
            return SendError(recipient, self._scrub(f"{error.code} {error.message}"),
                             code=error.code, stage=stage)
        if isinstance(error, (aiosmtplib.SMTPNotSupported, ValueError)):
            # an address SMTP cannot carry: refused before it went on the wire
            return SendError(recipient, self._scrub(describe(error)), permanent=True,
                             stage=stage)
        where = f"{self.host}:{self.port}"
        if stage == "message":
            text = (f"connection to {where} lost after the message was sent, before the "
                    f"server's reply ({describe(error)}): the server may have accepted it")
        else:
            text = f"connection to {where} failed at {stage}: {describe(error)}"
        return SendError(recipient, self._scrub(text), stage=stage)

    def _scrub(self, text: str) -> str:
        """Servers and libraries may echo what they were sent; never pass the password on,
        neither as typed nor as the base64 that AUTH PLAIN and AUTH LOGIN put on the wire."""
        if self._password is None:
            return text
        return scrub_secret(text, self._password.get_secret_value(), self.username or "")


_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{8,}={0,2}")


def scrub_secret(text: str, password: str, username: str = "") -> str:
    """``text`` with ``password`` masked: as typed, in the AUTH PLAIN and LOGIN encodings, and
    in any base64 run that decodes to a credential blob (NUL-separated), to the password or to a
    piece of it (a relay may echo what it was sent, whole or cut short)."""
    secret = password.encode()
    for form in (secret, b64encode(secret), b64encode(f"\0{username}\0{password}".encode())):
        text = text.replace(form.decode(errors="replace"), "***")

    def mask(match: re.Match[str]) -> str:
        run = match.group().rstrip("=")
        try:
            decoded = b64decode(run[:len(run) - len(run) % 4])
        except ValueError:
            return match.group()
        leaks = b"\0" in decoded or secret in decoded or (len(decoded) >= 4 and decoded in secret)
        return "***" if leaks else match.group()
    return _BASE64_RUN.sub(mask, text)


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
