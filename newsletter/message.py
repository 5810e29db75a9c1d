"""A rendered digest -> the RFC 5322 bytes handed to the transport.

Assembled directly rather than through ``email.message.EmailMessage``: the library's header
parsing and generator cost ~5 ms a message, 70% of composing a digest, and none of it is needed
for a fixed structure. The encoding itself still comes from the standard library: names and
subjects from ``email.header.Header`` and ``formataddr`` (RFC 2047, quoting), bodies from
``binascii.b2a_qp`` (quoted-printable, lines of at most 76 characters). Tests parse every
message back with the library's strict policy and compare.
"""

from __future__ import annotations

import binascii
import os
import random
import re
import sys
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.utils import format_datetime, formataddr

from .models import Digest, Outgoing, RenderedDigest, SubscriberLinks

# Line breaks of every kind (CR, LF, NEL, LS, PS) and other control characters have no business
# in a name or subject; refusing them up front is what keeps a header from being injected.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_LIST_ID = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)+$")
CRLF = "\r\n"
_PART = ('Content-Type: text/{subtype}; charset="utf-8"' + CRLF
         + "Content-Transfer-Encoding: quoted-printable" + CRLF + CRLF)


class Letterhead:
    """What every message of a run shares (sender, list, date), encoded once per run."""

    def __init__(self, *, from_address: str, from_name: str, list_id: str, now: datetime) -> None:
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("build_message needs a timezone-aware 'now' for the Date header")
        self.sender = make_address("From", from_name, from_address)
        self.head = (f"From: {_address(self.sender)}{CRLF}"
                     f"Date: {format_datetime(now)}{CRLF}"
                     f"List-Id: {list_id_header(from_name, list_id)}{CRLF}")
        self._rng = random.Random(os.urandom(16))

    def build(self, digest: Digest, rendered: RenderedDigest, links: SubscriberLinks) -> Outgoing:
        """multipart/alternative (text/plain first, text/html last), with the headers bulk
        senders need: List-Id, List-Unsubscribe (https and mailto), RFC 8058 one-click."""
        subscriber = digest.subscriber
        recipient = make_address("To", subscriber.name, subscriber.email)
        _check_line("Subject", rendered.subject, subscriber.email)
        message_id = f"<{self._rng.getrandbits(96):024x}.{digest.edition}@{self.sender.domain}>"
        boundary = "=" * 15 + repr(self._rng.randrange(sys.maxsize)) + "=="
        head = (f"{self.head}To: {_address(recipient)}{CRLF}"
                f"Subject: {_text_header('Subject', rendered.subject)}{CRLF}"
                f"Message-ID: {message_id}{CRLF}"
                f"List-Unsubscribe: {unsubscribe_header(links).replace(', <', ',' + CRLF + ' <')}"
                f"{CRLF}List-Unsubscribe-Post: List-Unsubscribe=One-Click{CRLF}"
                f"MIME-Version: 1.0{CRLF}"
                f'Content-Type: multipart/alternative;{CRLF} boundary="{boundary}"{CRLF}{CRLF}')
        data = b"".join((
            head.encode("ascii"),
            f"--{boundary}{CRLF}{_PART.format(subtype='plain')}".encode("ascii"),
            _quoted_printable(rendered.text),
            f"{CRLF}--{boundary}{CRLF}{_PART.format(subtype='html')}".encode("ascii"),
            _quoted_printable(rendered.html),
            f"{CRLF}--{boundary}--{CRLF}".encode("ascii"),
        ))
        return Outgoing(message_id=message_id, sender=self.sender.addr_spec,
                        recipient=recipient.addr_spec, data=data, edition=digest.edition)


def build_message(digest: Digest, rendered: RenderedDigest, links: SubscriberLinks, *,
                  from_address: str, from_name: str, list_id: str, now: datetime) -> Outgoing:
    """One message; a run builds its :class:`Letterhead` once and calls ``build`` instead."""
    letterhead = Letterhead(from_address=from_address, from_name=from_name, list_id=list_id,
                            now=now)
    return letterhead.build(digest, rendered, links)


def _quoted_printable(text: str) -> bytes:
    """The body ends with a line break of its own (as the email package makes it); the CRLF
    before the next boundary belongs to the boundary."""
    text = text.replace("\r\n", "\n")
    if not text.endswith("\n"):
        text += "\n"
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


def _address(address: Address) -> str:
    name = address.display_name
    if name.isascii():
        return formataddr((name, address.addr_spec))  # quotes a name with specials
    return f"{_text_header('To', name)} <{address.addr_spec}>"


def _text_header(name: str, value: str) -> str:
    """ASCII as it is; anything else as RFC 2047 encoded words, folded with CRLF."""
    if value.isascii() and len(value) < 900:
        return value
    return Header(value, "utf-8", header_name=name).encode(linesep=CRLF)


def make_address(field: str, name: str, address: str) -> Address:
    """An Address the library will encode; ValueError names the address when it is unusable."""
    _check_line(f"{field} name", name, address)
    _check_line(f"{field} address", address, address)
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"{field} address {address!r} is not an email address")
    if not local.isascii():
        raise ValueError(f"{field} address {address!r}: a non-ASCII local part needs SMTPUTF8")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
        return Address(display_name=name, addr_spec=f"{local}@{ascii_domain}")
    except (UnicodeError, ValueError, IndexError) as exc:
        raise ValueError(f"{field} address {address!r} is not valid: {exc}") from exc


def list_id_header(name: str, list_id: str) -> str:
    """``Name <list.id>`` (RFC 2919); formataddr quotes or RFC 2047-encodes the phrase."""
    list_id = list_id.strip("<> ")
    if not _LIST_ID.match(list_id):
        raise ValueError(f"List-Id {list_id!r} must look like a domain name, e.g. papers.example.org")
    _check_line("List-Id name", name, list_id)
    return formataddr((name, list_id)) if name else f"<{list_id}>"


def unsubscribe_header(links: SubscriberLinks) -> str:
    urls = (links.unsubscribe_url, links.unsubscribe_mailto)
    for url in urls:
        if not url.isascii() or _UNSAFE.search(url) or any(c in url for c in "<>, "):
            raise ValueError(f"List-Unsubscribe link {url!r} must be an ASCII URL without ',<> '")
    return ", ".join(f"<{url}>" for url in urls)


def _check_line(what: str, value: str, address: str) -> None:
    if _UNSAFE.search(value):
        raise ValueError(
            f"{what} for {address!r} contains a line break or control character: "
            "refusing to put it in a header"
        )
