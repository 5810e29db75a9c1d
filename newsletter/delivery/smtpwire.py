"""The SMTP side of one message on one aiosmtplib connection, for ``SmtpTransport``: the DATA
payload, MAIL parameters, session upkeep (EHLO, RSET, QUIT) and what an error means.

``SmtpTransport`` writes the message body on ``SMTP.protocol`` itself (``protocol_of``) rather
than through ``SMTP.data``/``sendmail``: those hide whether the server had answered 354 when a
connection broke, and rewrite every message with two regular expressions. That relies on
``SMTPProtocol.write`` and ``read_response``, which aiosmtplib 3 to 5 have; pyproject.toml pins
the range.
"""

from __future__ import annotations

import os
import re
import ssl

import aiosmtplib

from newsletter.compose.message import CrlfMessage
from newsletter.errors import SendError
from newsletter.models import Outgoing


def describe(error: BaseException) -> str:
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


def reusable(client: aiosmtplib.SMTP, error: SendError) -> bool:
    """A refused message leaves the session usable; a drop, timeout or 421 does not."""
    if not client.is_connected:
        return False
    if error.answered:
        return error.code != 421  # aiosmtplib already closed it, this is belt and braces
    # No reply: refused before anything was sent (bad address, no SMTPUTF8) is fine; a timeout
    # leaves a reply we gave up on in flight, which would be read as the next command's
    return error.permanent


async def reset(client: aiosmtplib.SMTP) -> bool:
    """RSET after a refusal, so the next message starts a clean envelope; False: discard it."""
    try:
        await client.rset()
    except (aiosmtplib.SMTPException, OSError):
        return False
    return client.is_connected


async def greet(client: aiosmtplib.SMTP) -> None:
    """EHLO now (HELO if refused), so the extensions are known before the first MAIL."""
    if not client.is_ehlo_or_helo_needed:
        return  # STARTTLS or the login already did it
    try:
        await client.ehlo()
    except aiosmtplib.SMTPHeloError:
        if not client.is_connected:
            raise
        await client.helo()


def mail_options(client: aiosmtplib.SMTP, message: Outgoing,
                 size: int) -> tuple[list[str], str]:
    """MAIL FROM parameters and the encoding of the addresses, as ``sendmail`` would choose."""
    options = [f"SIZE={size}"] if client.supports_extension("size") else []
    if message.sender.isascii() and message.recipient.isascii():
        return options, "ascii"
    # Non-ASCII addresses need SMTPUTF8; a server without it cannot take them (permanent)
    if not client.supports_extension("smtputf8"):
        raise aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported by this server")
    return [*options, "SMTPUTF8"], "utf-8"


_LINE_ENDING = re.compile(rb"\r\n|\n|\r(?!\n)")
_LEADING_DOT = re.compile(rb"\n\.")  # sre finds this literal faster than bytes' own search


def data_payload(data: bytes) -> tuple[bytes, int]:
    """What follows DATA's 354 for the message ``data``, and the SIZE to declare for it.

    The payload is the message with CRLF line endings and a final CRLF (RFC 5321 4.1.1.4: a bare
    CR or LF is never sent, which is also what stops a message from smuggling in an early
    end-of-data), a dot doubled at the start of every line (4.5.2), and the terminating
    ``.CRLF``. SIZE is the message's length without those dots (RFC 1870).

    aiosmtplib's ``data()`` does the same with two regular expressions over the whole message,
    ~0.5 ms for 30 KB, on every message. A ``CrlfMessage`` (what message.py builds) is CRLF
    throughout by construction and needs no scan; other bytes are checked with C-speed counts,
    and rewritten only when they have a bare CR or LF. Dots are doubled with one replace, in the
    quarter of messages that have a line starting with one.
    """
    if type(data) is not CrlfMessage:
        crlf = data.count(b"\r\n")
        if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
            data = _LINE_ENDING.sub(b"\r\n", data)  # a bare CR or LF
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
    size = len(data)
    if _LEADING_DOT.search(data):
        data = data.replace(b"\r\n.", b"\r\n..")
    if data.startswith(b"."):
        data = b"." + data
    return data + b".\r\n", size


def protocol_of(client: aiosmtplib.SMTP) -> aiosmtplib.protocol.SMTPProtocol:
    # The body is written on the protocol directly (as SMTP.data does internally) because the
    # public API offers no way to send it without also sending DATA
    if client.protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    return client.protocol


async def quit_quietly(client: aiosmtplib.SMTP) -> None:
    try:
        if client.is_connected:
            await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        pass  # closing anyway; a server that went away needs no goodbye
    finally:
        client.close()
