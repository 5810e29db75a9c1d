"""A real SMTP server (aiosmtpd) for tests, with misbehaviour on request.

The server runs its own event loop in its own thread (aiosmtpd's ``Controller``), so the same
object serves async tests (the client runs on the test's loop) and synchronous tests that start
the CLI as a subprocess. It binds 127.0.0.1 on a port the OS picks, so tests never collide.

Usage::

    with SmtpServer(rules=[Rule("550 5.1.1 no such user", at="rcpt", recipient="x@y")]) as server:
        ...  # send to server.host, server.port
        assert server.messages[0].rcpt_tos == ("a@b",)
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"
DROP = "drop"  # a Rule reply that closes the connection instead of answering
Stage = Literal["rcpt", "data_command", "data"]
TlsMode = Literal["none", "starttls", "tls"]


@dataclass(frozen=True)
class Rule:
    """One planned misbehaviour: answer ``reply`` (or ``DROP``) instead of accepting.

    ``at="rcpt"`` answers the RCPT command; ``at="data_command"`` answers the DATA command
    itself, instead of its 354 (nothing of the message is sent); ``at="data"`` answers after the
    whole message was received (so ``DROP`` there is the worst case: the client sent everything
    and got no reply).
    ``recipient`` limits the rule to one address; ``every=N`` fires on the Nth, 2Nth, ... matching
    message only; ``times`` caps how often it fires in total.
    """

    reply: str
    at: Stage = "data"
    recipient: str | None = None
    every: int | None = None
    times: int | None = None


@dataclass(frozen=True)
class ReceivedMessage:
    """What the server accepted: the envelope and the bytes exactly as transmitted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    original_content: bytes
    connection: int  # 1-based number of the connection it arrived on
    tls: bool
    login: str | None

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.original_content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


class CertificateUnavailable(RuntimeError):
    pass


def make_self_signed_certificate(directory: Path) -> Certificate:
    """A throwaway certificate for CN=localhost via the openssl CLI (``cryptography`` is absent)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
               "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=localhost",
               "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
               "-keyout", str(key), "-out", str(cert)]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as error:
        raise CertificateUnavailable(f"cannot make a self-signed certificate with openssl: {error}")
    return Certificate(cert, key)


@dataclass
class _Counters:
    """Mutated only on the server thread; tests read them after the client got its reply."""

    counting: bool = False  # off while Controller.start() pokes the server itself
    opened: int = 0
    open_now: int = 0
    max_open: int = 0
    in_data: int = 0
    max_in_data: int = 0
    rule_hits: dict[int, int] = field(default_factory=dict)
    rule_fired: dict[int, int] = field(default_factory=dict)


class _CountingSMTP(SMTP):
    def __init__(self, counters: _Counters, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._counters = counters
        self.counted = counters.counting
        self.number = 0
        if self.counted:
            counters.opened += 1
            counters.open_now += 1
            counters.max_open = max(counters.max_open, counters.open_now)
            self.number = counters.opened

    async def smtp_DATA(self, arg: str) -> None:
        # the handler's DATA hook runs only after the body: a rule for the command itself
        # has to answer here, before aiosmtpd sends its 354
        if self.envelope is not None and self.envelope.rcpt_tos:
            reply = self.event_handler.owner.fire("data_command", list(self.envelope.rcpt_tos))
            if reply == DROP:
                assert self.transport is not None
                self.transport.close()
                return
            if reply is not None:
                await self.push(reply)
                return
        await super().smtp_DATA(arg)

    def connection_lost(self, error: Exception | None) -> None:
        if self.counted:
            self.counted = False
            self._counters.open_now -= 1
        super().connection_lost(error)


class _Controller(Controller):
    """Binds port 0 (Controller 1.4 cannot) and builds counting SMTP sessions."""

    def __init__(self, counters: _Counters, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, hostname=HOST, port=0, **kwargs)
        self._counters = counters

    def factory(self) -> SMTP:
        return _CountingSMTP(self._counters, self.handler, **self.SMTP_kwargs)

    async def _create_server(self) -> asyncio.AbstractServer:  # type: ignore[override]
        server = await self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=0, ssl=self.ssl_context)
        self.port = server.sockets[0].getsockname()[1]
        return server


# Settings `send` accepts for mail over SMTP; the secret key comes from each test's own env.
READY = {"NEWSLETTER_BASE_URL": "https://papers.newsletter.test",
         "NEWSLETTER_FROM_ADDRESS": "papers@newsletter.test"}


class SmtpServer:
    """A recording aiosmtpd server. Start with ``start()`` or ``with``; always ``stop()``."""

    def __init__(self, *, rules: list[Rule] | tuple[Rule, ...] = (),
                 auth: tuple[str, str] | None = None, tls: TlsMode = "none",
                 certificate: Certificate | None = None, data_delay: float = 0.0,
                 idle_timeout: float = 300.0, smtputf8: bool = True,
                 echo_auth: bool = False) -> None:
        if tls != "none" and certificate is None:
            raise ValueError(f"tls={tls!r} needs a certificate")
        self.rules = tuple(rules)
        self.auth = auth
        self.tls = tls
        self.certificate = certificate
        self.data_delay = data_delay  # seconds each DATA takes, to make overlap observable
        self.idle_timeout = idle_timeout  # the server hangs up on a client silent this long
        self.smtputf8 = smtputf8  # advertise SMTPUTF8 (non-ASCII addresses)
        self.echo_auth = echo_auth  # a failed login's reply repeats the AUTH PLAIN blob it got
        self.messages: list[ReceivedMessage] = []
        self.rejected: list[tuple[str, str]] = []  # (recipient, reply) for every rule that fired
        self._counters = _Counters()
        self._controller: _Controller | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> SmtpServer:
        context = self._ssl_context()
        kwargs: dict[str, Any] = {"auth_require_tls": False, "server_hostname": "localhost",
                                  "timeout": self.idle_timeout,
                                  "enable_SMTPUTF8": self.smtputf8}
        if self.auth:
            kwargs["authenticator"] = self._authenticate
        if self.tls == "starttls":
            kwargs["tls_context"] = context
        self._controller = _Controller(
            self._counters, _Handler(self), ssl_context=context if self.tls == "tls" else None,
            **kwargs)
        self._controller.start()
        self._counters.counting = True
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what tests look at ------------------------------------------------------------------
    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        assert self._controller is not None, "server not started"
        return self._controller.port

    @property
    def connections_opened(self) -> int:
        return self._counters.opened

    @property
    def open_connections(self) -> int:
        return self._counters.open_now

    @property
    def max_open_connections(self) -> int:
        return self._counters.max_open

    @property
    def max_concurrent_data(self) -> int:
        return self._counters.max_in_data

    @property
    def in_data(self) -> int:
        """Messages received whole and not answered yet (``data_delay`` holds them here)."""
        return self._counters.in_data

    def wait_for(self, condition: Callable[[SmtpServer], bool], timeout: float = 5.0) -> bool:
        """Poll ``condition(self)``: the server thread notices a client's close a little later."""
        deadline = time.monotonic() + timeout
        while not condition(self):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def recipients(self) -> list[str]:
        return [rcpt for message in self.messages for rcpt in message.rcpt_tos]

    def env(self, *, password: str | None = None) -> dict[str, str]:
        """``NEWSLETTER_SMTP_*`` variables pointing a CLI subprocess at this server, and what
        `send` requires before it mails anyone over SMTP (``newsletter.preflight``): an https
        base URL and a From address at a domain of our own (.test, reserved for tests)."""
        values = {"NEWSLETTER_SMTP_HOST": self.host, "NEWSLETTER_SMTP_PORT": str(self.port),
                  "NEWSLETTER_SMTP_SECURITY": self.tls,
                  "NEWSLETTER_SMTP_VALIDATE_CERTS": "false",
                  **READY}
        if self.auth:
            values["NEWSLETTER_SMTP_USERNAME"] = self.auth[0]
            values["NEWSLETTER_SMTP_PASSWORD"] = password if password is not None else self.auth[1]
        return values

    # -- internals ---------------------------------------------------------------------------
    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.certificate is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certificate.cert, self.certificate.key)
        return context

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        assert self.auth is not None
        ok = (isinstance(auth_data, LoginPassword)
              and (auth_data.login.decode(), auth_data.password.decode()) == self.auth)
        # handled=False makes aiosmtpd send its own 535 reply on failure, or ``message``
        echo = None
        if self.echo_auth and not ok and isinstance(auth_data, LoginPassword):
            blob = base64.b64encode(b"\0" + auth_data.login + b"\0" + auth_data.password)
            echo = f"535 5.7.8 authentication failed: {blob.decode()}"
        return AuthResult(success=ok, handled=False, message=echo,
                          auth_data=self.auth[0] if ok else None)

    def fire(self, stage: Stage, recipients: list[str]) -> str | None:
        """The reply of the first rule that fires for this event, counting matches per rule."""
        counters = self._counters
        for index, rule in enumerate(self.rules):
            if rule.at != stage or (rule.recipient and rule.recipient not in recipients):
                continue
            hits = counters.rule_hits[index] = counters.rule_hits.get(index, 0) + 1
            if rule.every and hits % rule.every:
                continue
            if rule.times is not None and counters.rule_fired.get(index, 0) >= rule.times:
                continue
            counters.rule_fired[index] = counters.rule_fired.get(index, 0) + 1
            self.rejected.extend((rcpt, rule.reply) for rcpt in recipients)
            return rule.reply
        return None


class _Handler:
    """aiosmtpd hooks; runs on the server thread."""

    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        if self.owner.auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        reply = self.owner.fire("rcpt", [address])
        if reply is not None:
            return await _answer(server, reply)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        counters = self.owner._counters
        counters.in_data += 1
        counters.max_in_data = max(counters.max_in_data, counters.in_data)
        try:
            if self.owner.data_delay:
                await asyncio.sleep(self.owner.data_delay)
            reply = self.owner.fire("data", list(envelope.rcpt_tos))
            if reply is not None:
                return await _answer(server, reply)
            self.owner.messages.append(_record(server, session, envelope))
            return f"250 2.0.0 OK queued as {len(self.owner.messages)}"
        finally:
            counters.in_data -= 1


async def _answer(server: SMTP, reply: str) -> str:
    if reply != DROP:
        return reply
    assert server.transport is not None
    server.transport.close()
    # connection_lost() cancels this session's task while we wait here; the timeout is a guard
    await asyncio.sleep(10)
    return "421 4.4.2 connection should have been dropped"


def _record(server: SMTP, session: Session, envelope: Envelope) -> ReceivedMessage:
    assert envelope.mail_from is not None and envelope.original_content is not None
    assert server.transport is not None
    return ReceivedMessage(
        mail_from=envelope.mail_from,
        rcpt_tos=tuple(envelope.rcpt_tos),
        original_content=envelope.original_content,
        connection=getattr(server, "number", 0),
        tls=server.transport.get_extra_info("sslcontext") is not None,
        login=session.auth_data if isinstance(session.auth_data, str) else None,
    )
