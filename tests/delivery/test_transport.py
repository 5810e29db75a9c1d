"""Transports against a real aiosmtpd server (tests/smtp_server.py) and a real folder."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from smtp_server import DROP, Rule, SmtpServer

from newsletter.delivery.faults import classify
from newsletter.delivery.outbox import OutboxTransport
from newsletter.delivery.smtpwire import data_payload
from newsletter.delivery.transport import SmtpTransport, make_transport
from newsletter.errors import ConfigError, SendError
from newsletter.models import Outgoing, SubscriberLinks
from newsletter.settings import Settings

Factory = Callable[..., SmtpServer]
PASSWORD = "pa55-w0rd-never-shown"
_numbers = itertools.count(1)


def outgoing(recipient: str = "ada@example.org", *, edition: str = "2026-11-23",
             body: str = "Hello.\r\n.A line starting with a dot survives.\r\n") -> Outgoing:
    number = next(_numbers)
    data = (f"From: Papers <papers@example.org>\r\nTo: {recipient}\r\nSubject: Digest {number}\r\n"
            f"Message-ID: <{number}@example.org>\r\n\r\n{body}").encode()
    return Outgoing(message_id=f"<{number}@example.org>", sender="papers@example.org",
                    recipient=recipient, data=data, edition=edition)


def smtp(server: SmtpServer, **options: object) -> SmtpTransport:
    options.setdefault("security", server.tls)
    options.setdefault("validate_certs", False)
    return SmtpTransport(server.host, server.port, **options)  # type: ignore[arg-type]


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- outbox ----------------------------------------------------------------------------------

async def test_outbox_writes_one_eml_per_message_under_its_edition(tmp_path: Path) -> None:
    messages = [outgoing("ada@example.org"), outgoing("bob@example.org"),
                outgoing("cy@example.org", edition="")]
    async with OutboxTransport(tmp_path) as outbox:
        paths = [await outbox.send(message) for message in messages]

    assert paths == [str(tmp_path / "2026-11-23" / "ada@example.org.eml"),
                     str(tmp_path / "2026-11-23" / "bob@example.org.eml"),
                     str(tmp_path / "undated" / "cy@example.org.eml")]
    assert [Path(path).read_bytes() for path in paths] == [m.data for m in messages]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == \
        ["ada@example.org.eml", "bob@example.org.eml", "cy@example.org.eml"]


async def test_outbox_sending_again_replaces_the_file(tmp_path: Path) -> None:
    outbox = OutboxTransport(tmp_path)
    first, second = outgoing(), outgoing()
    await outbox.send(first)
    path = await outbox.send(second)

    assert Path(path).read_bytes() == second.data
    assert len(list(tmp_path.rglob("*.eml"))) == 1


@pytest.mark.parametrize("address", [
    "../../x@y", "/etc/passwd@x", "..", "a\\..\\b@x", "nul\x00byte@x", ".hidden@x",
    "ü@例え.jp", "x" * 400 + "@example.org",
])
async def test_outbox_keeps_any_address_inside_the_edition_folder(tmp_path: Path,
                                                                  address: str) -> None:
    path = Path(await OutboxTransport(tmp_path).send(outgoing(address, edition="../up")))

    assert path.parent.parent == tmp_path
    assert path.resolve().is_relative_to(tmp_path.resolve())
    assert path.suffix == ".eml" and not path.name.startswith(".")
    assert len(path.name) < 200
    assert path.read_bytes().startswith(b"From: Papers")


async def test_outbox_gives_addresses_that_clean_alike_their_own_files(tmp_path: Path) -> None:
    outbox = OutboxTransport(tmp_path)
    paths = {await outbox.send(outgoing(address)) for address in ("a/b@x", "a_b@x", "a\\b@x")}

    assert len(paths) == 3


async def test_outbox_failed_rewrite_keeps_the_old_file_and_no_temp_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outbox = OutboxTransport(tmp_path)
    old = outgoing()
    path = Path(await outbox.send(old))

    def crash(fd: int) -> None:
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(ConfigError) as caught:  # every message would fail alike: stop the run
        await outbox.send(outgoing())

    assert "No space left" in str(caught.value) and "NEWSLETTER_OUTBOX_DIR" in str(caught.value)
    assert path.read_bytes() == old.data
    assert [p.name for p in path.parent.iterdir()] == [path.name]


async def test_outbox_renames_within_the_target_folder(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # os.replace is only atomic within one filesystem: the temp file must sit next to the target
    renames: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        renames.append((Path(src), Path(dst)))
        real_replace(src, dst)
    monkeypatch.setattr(os, "replace", spy)
    await OutboxTransport(tmp_path).send(outgoing())

    [(src, dst)] = renames
    assert src.parent == dst.parent and src != dst


async def test_outbox_check_reports_an_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "outbox"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(ConfigError) as caught:
        await OutboxTransport(blocker).check()

    assert str(blocker) in str(caught.value) and "NEWSLETTER_OUTBOX_DIR" in str(caught.value)


async def test_outbox_check_leaves_nothing_behind(tmp_path: Path) -> None:
    await OutboxTransport(tmp_path / "new").check()

    assert list((tmp_path / "new").iterdir()) == []


# -- SMTP: delivery and pooling --------------------------------------------------------------

async def test_smtp_delivers_envelope_and_bytes_unchanged(smtp_server: SmtpServer) -> None:
    message = outgoing("ada@example.org")
    async with smtp(smtp_server) as transport:
        reply = await transport.send(message)

    [received] = smtp_server.messages
    assert reply.startswith("250 ")
    assert received.mail_from == "papers@example.org"
    assert received.rcpt_tos == ("ada@example.org",)
    assert received.original_content == message.data
    assert not received.tls


async def test_smtp_reuses_connections_20_messages_over_2(smtp_server: SmtpServer) -> None:
    async with smtp(smtp_server, connections=2) as transport:
        await asyncio.gather(*(transport.send(outgoing(f"r{i}@example.org")) for i in range(20)))

    assert len(smtp_server.messages) == 20
    assert smtp_server.connections_opened == 2


async def test_smtp_opens_connections_lazily(smtp_server: SmtpServer) -> None:
    async with smtp(smtp_server, connections=4) as transport:
        assert smtp_server.connections_opened == 0
        for i in range(5):
            await transport.send(outgoing(f"r{i}@example.org"))

    assert smtp_server.connections_opened == 1  # sequential sends never need a second one


async def test_smtp_concurrency_is_bounded_by_the_pool(smtp_server_factory: Factory) -> None:
    server = smtp_server_factory(data_delay=0.05)
    async with smtp(server, connections=3) as transport:
        await asyncio.gather(*(transport.send(outgoing(f"r{i}@example.org")) for i in range(12)))

    assert len(server.messages) == 12
    assert server.max_concurrent_data == 3
    assert server.max_open_connections == 3


async def test_smtp_closing_quits_every_pooled_connection(smtp_server: SmtpServer) -> None:
    async with smtp(smtp_server, connections=3) as transport:
        await asyncio.gather(*(transport.send(outgoing(f"r{i}@example.org")) for i in range(6)))
        assert smtp_server.open_connections == 3

    assert smtp_server.wait_for(lambda server: server.open_connections == 0)


async def test_smtp_replaces_a_connection_the_server_closed_while_idle(
        smtp_server_factory: Factory) -> None:
    server = smtp_server_factory(idle_timeout=0.1)
    async with smtp(server, connections=1) as transport:
        await transport.send(outgoing("a@example.org"))
        await asyncio.sleep(0.4)  # the server hangs up; our loop sees the EOF meanwhile
        await transport.send(outgoing("b@example.org"))

    assert server.recipients() == ["a@example.org", "b@example.org"]
    assert server.connections_opened == 2


# -- SMTP: refusals and failures -------------------------------------------------------------

@pytest.mark.parametrize("stage", ["rcpt", "data"])
async def test_smtp_5xx_for_one_recipient_is_permanent_and_others_still_go(
        smtp_server_factory: Factory, stage: str) -> None:
    server = smtp_server_factory(
        rules=[Rule("550 5.1.1 no such user", at=stage, recipient="gone@example.org")])
    async with smtp(server) as transport:
        await transport.send(outgoing("a@example.org"))
        with pytest.raises(SendError) as caught:
            await transport.send(outgoing("gone@example.org"))
        await transport.send(outgoing("b@example.org"))

    error = caught.value
    assert (error.recipient, error.code, error.permanent) == ("gone@example.org", 550, True)
    assert "5.1.1 no such user" in error.reply
    assert server.recipients() == ["a@example.org", "b@example.org"]
    assert server.connections_opened == 1  # a refusal does not cost the connection


@pytest.mark.parametrize(("at", "stage"), [("rcpt", "rcpt"), ("data_command", "data"),
                                           ("data", "message")])
async def test_smtp_4xx_at_any_stage_is_retried_and_keeps_the_connection(
        smtp_server_factory: Factory, at: str, stage: str) -> None:
    server = smtp_server_factory(rules=[Rule("451 4.3.0 try later", at=at, times=1)])
    async with smtp(server, connections=1) as transport:
        with pytest.raises(SendError) as caught:
            await transport.send(outgoing("a@example.org"))
        await transport.send(outgoing("b@example.org"))

    error = caught.value
    assert (error.code, error.permanent, error.stage) == (451, False, stage)
    assert "4.3.0 try later" in error.reply
    assert classify(error).kind == "retry"
    # the server said no in so many words: the session (after RSET) carries the next message
    assert server.recipients() == ["b@example.org"]
    assert server.connections_opened == 1


async def test_smtp_550_at_rcpt_is_permanent_at_stage_rcpt(smtp_server_factory: Factory) -> None:
    server = smtp_server_factory(rules=[Rule("550 5.1.1 no such user", at="rcpt")])
    async with smtp(server) as transport:
        with pytest.raises(SendError) as caught:
            await transport.send(outgoing())

    assert (caught.value.code, caught.value.stage) == (550, "rcpt")
    assert classify(caught.value).kind == "permanent"


async def test_smtp_every_third_message_deferred(smtp_server_factory: Factory) -> None:
    server = smtp_server_factory(rules=[Rule("451 4.3.0 try later", every=3)])
    failed = []
    async with smtp(server, connections=1) as transport:
        for i in range(1, 10):
            try:
                await transport.send(outgoing(f"r{i}@example.org"))
            except SendError as error:
                failed.append(error.recipient)

    assert failed == ["r3@example.org", "r6@example.org", "r9@example.org"]
    assert len(server.messages) == 6


@pytest.mark.parametrize(("at", "stage"), [("rcpt", "rcpt"), ("data_command", "data")])
async def test_smtp_drop_before_the_body_is_retried_on_a_fresh_connection(
        smtp_server_factory: Factory, at: str, stage: str) -> None:
    server = smtp_server_factory(rules=[Rule(DROP, at=at, recipient="victim@example.org")])
    async with smtp(server, connections=1) as transport:
        await transport.send(outgoing("a@example.org"))
        with pytest.raises(SendError) as caught:
            await transport.send(outgoing("victim@example.org"))
        await transport.send(outgoing("b@example.org"))

    error = caught.value
    assert (error.code, error.permanent, error.stage) == (None, False, stage)
    assert classify(error).kind == "retry"
    assert server.recipients() == ["a@example.org", "b@example.org"]
    assert [m.connection for m in server.messages] == [1, 2]


async def test_smtp_drop_after_the_whole_message_is_uncertain_and_next_send_reconnects(
        smtp_server_factory: Factory) -> None:
    server = smtp_server_factory(rules=[Rule(DROP, at="data", recipient="victim@example.org")])
    async with smtp(server, connections=1) as transport:
        await transport.send(outgoing("a@example.org"))
        with pytest.raises(SendError) as caught:
            await transport.send(outgoing("victim@example.org"))
        await transport.send(outgoing("b@example.org"))

    error = caught.value
    assert (error.code, error.permanent, error.stage) == (None, False, "message")
    assert classify(error).kind == "uncertain"
    assert "may have accepted" in error.reply and "uncertain failure" in str(error)
    assert server.recipients() == ["a@example.org", "b@example.org"]
    assert [m.connection for m in server.messages] == [1, 2]


async def test_smtp_421_discards_the_connection(smtp_server_factory: Factory) -> None:
    server = smtp_server_factory(rules=[Rule("421 4.7.0 too busy, closing", at="rcpt", times=1)])
    async with smtp(server, connections=1) as transport:
        with pytest.raises(SendError) as caught:
            await transport.send(outgoing("a@example.org"))
        await transport.send(outgoing("b@example.org"))

    assert (caught.value.code, caught.value.permanent) == (421, False)
    assert classify(caught.value).kind == "retry"
    assert server.recipients() == ["b@example.org"]
    assert server.connections_opened == 2


async def test_smtp_timeout_waiting_for_the_final_reply_is_uncertain(
        smtp_server_factory: Factory) -> None:
    server = smtp_server_factory(data_delay=3)  # the delay starts after the body was received
    async with smtp(server, timeout=0.3, connections=1) as transport:
        with pytest.raises(SendError) as caught:
            await transport.send(outgoing())

    error = caught.value
    assert (error.code, error.permanent, error.stage) == (None, False, "message")
    assert classify(error).kind == "uncertain"


async def test_smtp_non_ascii_address_goes_out_with_smtputf8(smtp_server: SmtpServer) -> None:
    async with smtp(smtp_server) as transport:
        await transport.send(outgoing("jürgen@example.org"))

    assert smtp_server.recipients() == ["jürgen@example.org"]


async def test_smtp_non_ascii_address_without_smtputf8_is_permanent_and_keeps_the_connection(
        smtp_server_factory: Factory) -> None:
    server = smtp_server_factory(smtputf8=False)
    async with smtp(server, connections=1) as transport:
        with pytest.raises(SendError) as caught:
            await transport.send(outgoing("jürgen@example.org"))
        await transport.send(outgoing("b@example.org"))

    assert (caught.value.permanent, caught.value.stage) == (True, "mail")
    assert classify(caught.value).kind == "permanent"
    assert "SMTPUTF8" in caught.value.reply
    assert server.recipients() == ["b@example.org"]
    assert server.connections_opened == 1


async def test_smtp_sender_refused_is_a_config_error(smtp_server_factory: Factory) -> None:
    # the server wants AUTH and we sent no username: every message would fail alike
    server = smtp_server_factory(auth=("user", PASSWORD))
    async with smtp(server) as transport:
        with pytest.raises(ConfigError) as caught:
            await transport.send(outgoing())

    assert "530" in str(caught.value) and "NEWSLETTER_SMTP_USERNAME" in str(caught.value)


# -- SMTP: login and connection set-up -------------------------------------------------------

async def test_smtp_logs_in_with_username_and_password(smtp_server_factory: Factory) -> None:
    server = smtp_server_factory(auth=("user", PASSWORD))
    async with smtp(server, username="user", password=PASSWORD) as transport:
        await transport.send(outgoing())

    assert [m.login for m in server.messages] == ["user"]


async def test_smtp_wrong_password_is_a_clear_error_without_the_password(
        smtp_server_factory: Factory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = smtp_server_factory(auth=("user", "the-right-one"))
    transport = smtp(server, username="user", password=PASSWORD)
    async with transport:
        with pytest.raises(ConfigError) as caught:
            await transport.send(outgoing())

    text = str(caught.value)
    assert f"{server.host}:{server.port}" in text
    assert "NEWSLETTER_SMTP_USERNAME" in text and "NEWSLETTER_SMTP_PASSWORD" in text
    assert "535" in text
    for shown in (text, repr(caught.value), repr(transport), transport.describe(), caplog.text):
        assert PASSWORD not in shown
    assert server.messages == []


async def test_smtp_check_connects_once_and_send_reuses_it(smtp_server: SmtpServer) -> None:
    async with smtp(smtp_server) as transport:
        await transport.check()
        assert smtp_server.connections_opened == 1
        await transport.send(outgoing())

    assert smtp_server.connections_opened == 1 and len(smtp_server.messages) == 1


async def test_smtp_check_fails_fast_on_a_wrong_password(smtp_server_factory: Factory) -> None:
    server = smtp_server_factory(auth=("user", "the-right-one"))
    async with smtp(server, username="user", password=PASSWORD) as transport:
        with pytest.raises(ConfigError) as caught:
            await transport.check()

    assert "NEWSLETTER_SMTP_PASSWORD" in str(caught.value) and PASSWORD not in str(caught.value)


async def test_smtp_connection_refused_names_host_port_and_settings() -> None:
    port = free_port()
    async with SmtpTransport("127.0.0.1", port, "none", timeout=5) as transport:
        with pytest.raises(ConfigError) as caught:
            await transport.send(outgoing())

    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "NEWSLETTER_SMTP_HOST" in str(caught.value)
    assert "NEWSLETTER_SMTP_PORT" in str(caught.value)


async def test_smtp_refused_after_a_working_connection_is_temporary(
        smtp_server_factory: Factory) -> None:
    server = smtp_server_factory()
    async with smtp(server, connections=1) as transport:
        await transport.send(outgoing("a@example.org"))
        server.stop()  # closes our pooled connection and the listening socket
        errors = []
        for _ in range(2):  # the first may still find the old connection; the second must dial
            with pytest.raises(SendError) as caught:
                await transport.send(outgoing("b@example.org"))
            errors.append(caught.value)

    assert [(e.code, e.permanent) for e in errors] == [(None, False), (None, False)]
    assert f"cannot connect to SMTP server {server.host}:" in errors[1].reply
    assert (errors[1].stage, classify(errors[1]).kind) == ("connect", "retry")


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_smtp_encrypts_with_starttls_and_tls(smtp_server_factory: Factory,
                                                   security: str) -> None:
    server = smtp_server_factory(tls=security, auth=("user", PASSWORD))
    message = outgoing()
    async with smtp(server, username="user", password=PASSWORD) as transport:
        await transport.send(message)

    [received] = server.messages
    assert received.tls and received.login == "user"
    assert received.original_content == message.data


async def test_smtp_security_none_never_upgrades_opportunistically(
        smtp_server_factory: Factory) -> None:
    server = smtp_server_factory(tls="starttls")  # offers STARTTLS
    async with smtp(server, security="none") as transport:
        await transport.send(outgoing())

    assert [m.tls for m in server.messages] == [False]


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_smtp_validates_certificates_by_default(smtp_server_factory: Factory,
                                                      security: str) -> None:
    server = smtp_server_factory(tls=security)
    async with smtp(server, validate_certs=True) as transport:
        with pytest.raises(ConfigError) as caught:
            await transport.send(outgoing())

    assert f"{server.host}:{server.port}" in str(caught.value)
    assert "certificate" in str(caught.value).lower()
    assert server.messages == []


async def test_smtp_starttls_against_a_server_without_it_is_a_config_error(
        smtp_server: SmtpServer) -> None:
    async with smtp(smtp_server, security="starttls") as transport:
        with pytest.raises(ConfigError) as caught:
            await transport.send(outgoing())

    assert "NEWSLETTER_SMTP_SECURITY" in str(caught.value)


def test_smtp_describe_and_repr_leave_the_password_out() -> None:
    transport = SmtpTransport("mail.example.org", 587, "starttls", "user", PASSWORD)

    assert transport.describe() == "SMTP mail.example.org:587 (starttls)"
    assert PASSWORD not in repr(transport) and PASSWORD not in str(vars(transport))


# -- choosing a transport --------------------------------------------------------------------

def test_make_transport_without_smtp_host_uses_the_outbox(tmp_path: Path) -> None:
    transport = make_transport(Settings(_env_file=None, smtp_host=None, outbox_dir=tmp_path))

    assert isinstance(transport, OutboxTransport) and transport.directory == tmp_path


def test_make_transport_with_smtp_host_uses_smtp_settings() -> None:
    settings = Settings(_env_file=None, smtp_host="mail.example.org", smtp_port=None,
                        smtp_security="tls", smtp_username="u", smtp_password=PASSWORD,
                        smtp_timeout=7, smtp_connections=9, secret_key="x" * 16)
    transport = make_transport(settings)

    assert isinstance(transport, SmtpTransport)
    assert transport.describe() == "SMTP mail.example.org:465 (tls)"
    assert (transport.username, transport.timeout, transport.connections) == ("u", 7, 9)


def test_a_process_configured_by_environment_delivers_to_the_server(
        smtp_server_factory: Factory, tmp_path: Path) -> None:
    # a synchronous test driving a separate process, as CLI tests will
    server = smtp_server_factory(auth=("user", PASSWORD))
    script = ("import asyncio\n"
              "from newsletter.settings import Settings\n"
              "from newsletter.delivery.transport import make_transport\n"
              "from newsletter.models import Outgoing\n"
              "async def main():\n"
              "    async with make_transport(Settings()) as t:\n"
              "        print(await t.send(Outgoing('<1@x>', 'a@x.org', 'b@x.org', b'Subject: hi\\r\\n\\r\\nhi\\r\\n')))\n"
              "asyncio.run(main())\n")
    env = {**os.environ, **server.env(), "NEWSLETTER_SECRET_KEY": "x" * 16}
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("250 ")
    assert server.recipients() == ["b@x.org"]


# -- SMTP: the DATA payload ------------------------------------------------------------------

DOTTY = (b"Subject: dots\r\n\r\n.\r\n..two\r\n.leading\nbare lf\rbare cr\r\n\r\n.\r\n"
         b"...\n.\rlast line without a break")
DOTTY_CANONICAL = (b"Subject: dots\r\n\r\n.\r\n..two\r\n.leading\r\nbare lf\r\nbare cr\r\n\r\n"
                   b".\r\n...\r\n.\r\nlast line without a break\r\n")


async def test_smtp_sends_dots_and_bare_line_endings_exactly_right(smtp_server: SmtpServer) -> None:
    message = Outgoing("<dots@example.org>", "papers@example.org", "ada@example.org", DOTTY)
    async with smtp(smtp_server) as transport:
        await transport.send(message)
        await transport.send(outgoing("b@example.org"))  # the session is still in step

    first, second = smtp_server.messages
    # every line ends in CRLF, and no "." line ended the DATA early (the server un-stuffs dots)
    assert first.original_content == DOTTY_CANONICAL
    assert first.message["Subject"] == "dots"
    assert second.rcpt_tos == ("b@example.org",)


async def test_smtp_sends_a_built_message_byte_for_byte(smtp_server: SmtpServer) -> None:
    from datetime import datetime, timezone

    from newsletter.compose.message import CrlfMessage, build_message
    from newsletter.models import Digest, DigestItem, Paper, RenderedDigest, Section, Subscriber
    paper = Paper(id="p", title="t", abstract="a")
    digest = Digest(Subscriber("ada@example.org", "Zoë", ("x",)), "2026-11-23",
                    (Section("x", (DigestItem(paper, 1.0, "x", "r"),)),),
                    datetime(2026, 11, 23, tzinfo=timezone.utc))
    links = SubscriberLinks("https://x.example/u", "https://x.example/p", "mailto:u@x.example")
    text = ".hidden\n.\n..\n" + "y" * 75 + ".end\nplain\n"  # the soft break puts a dot first
    rendered = RenderedDigest("Subject — with a dash", "", "<p>\n.dot</p>", text)
    message = build_message(digest, rendered, links, from_address="papers@example.org",
                            from_name="Papers", list_id="papers.example.org",
                            now=datetime(2026, 11, 23, tzinfo=timezone.utc))
    assert isinstance(message.data, CrlfMessage) and b"\r\n." in message.data
    async with smtp(smtp_server) as transport:
        await transport.send(message)

    [received] = smtp_server.messages
    assert received.original_content == message.data
    assert received.message.get_body(("plain",)).get_content().replace("\r\n", "\n") == text


def test_data_payload_stuffs_dots_and_declares_the_unstuffed_size() -> None:
    payload, size = data_payload(DOTTY)
    assert size == len(DOTTY_CANONICAL)
    assert payload == (b"Subject: dots\r\n\r\n..\r\n...two\r\n..leading\r\nbare lf\r\nbare cr\r\n"
                       b"\r\n..\r\n....\r\n..\r\nlast line without a break\r\n.\r\n")
    assert data_payload(b"") == (b"\r\n.\r\n", 2)
    assert data_payload(b".x") == (b"..x\r\n.\r\n", 4)


@pytest.mark.parametrize("data", [b"a\r\nb\r\n", b"a\nb", b"a\rb\r\n", b".\r\n\r\n..\r\n",
                                  b"x\r\n.\n.\r\nMAIL FROM:<evil@example.org>\r\n"])
def test_data_payload_is_the_same_for_trusted_and_plain_bytes(data: bytes) -> None:
    from newsletter.compose.message import CrlfMessage
    canonical, size = data_payload(data)
    body = canonical[:-3]  # without the terminating ".\r\n"
    assert b"\r\n.\r\n" not in body and not body.startswith(b".\r\n")  # no early end of data
    assert body.count(b"\n") == body.count(b"\r\n") == body.count(b"\r")
    unstuffed = body.replace(b"\r\n..", b"\r\n.").removeprefix(b".")
    assert len(unstuffed) == size
    assert data_payload(CrlfMessage(unstuffed)) == (canonical, size)
    assert type(CrlfMessage(b"a\r\n")[:1]) is bytes  # an edited message is checked again
