"""A rendered digest -> the RFC 5322 bytes handed to the transport.

Assembled directly rather than through ``email.message.EmailMessage``: the library's header
parsing and generator cost ~5 ms a message, 70% of composing a digest, and none of it is needed
for a fixed structure. Tests parse every message back with the library's strict policy.

The two encodings every message needs are done here too, because the library's are slow where a
digest needs them: ``email.header`` RFC 2047-encodes a subject one character at a time,
re-encoding the whole prefix for each (every subject has an em dash), so names and subjects go
through ``encoded_words`` below. The HTML body's quoted-printable is mostly the same few thousand
long lines (the template's, the day's papers') again and again, so it goes through
``binascii.b2a_qp`` one line at a time behind a bounded cache: quoted-printable is line-local, so
the bytes are those of encoding the whole body at once. The plain-text part has short lines and
more of the reader's own: there the per-line overhead would cost what the cache saves, so it is
encoded whole. The result has CRLF line endings only, no bare CR or LF, and says so by its type
(``CrlfMessage``), so the SMTP transport need not scan it again.
"""

from __future__ import annotations

import os
import random
import re
import string
import sys
from binascii import b2a_base64, b2a_qp
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.utils import format_datetime, formataddr
from functools import lru_cache
from itertools import accumulate

from newsletter.compose.signing import DkimSigner
from newsletter.compose.tokens import bounce_address
from newsletter.models import Digest, Outgoing, RenderedDigest, SubscriberLinks
from newsletter.safetext import unsafe

_LIST_ID = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)+$")
CRLF = "\r\n"
_PART = ('Content-Type: text/{subtype}; charset="utf-8"' + CRLF
         + "Content-Transfer-Encoding: quoted-printable" + CRLF + CRLF)
# Distinct HTML lines a Letterhead keeps encoded: the template's and the day's papers' lines come
# back in every digest; the lines that are one subscriber's own fall out of the LRU soon enough.
QP_CACHE_LINES = 16384
# A plain address, as Address() would take it and give it back unchanged (RFC 5322 dot-atoms,
# an ASCII domain); anything else takes the library's parser.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]{{1,63}}(?:\.[A-Za-z0-9-]{{1,63}})*")


class CrlfMessage(bytes):
    """Message bytes as ``Letterhead.build`` makes them: CRLF line endings only (no bare CR or
    LF) and a final CRLF, by construction. The SMTP transport sends these without scanning 30 KB
    for stray line endings. Bytes made from them (sliced, joined, replaced) are plain bytes again,
    which the transport checks, so the promise cannot outlive an edit."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Returns:
    """Where what comes back goes: optional headers, the VERP bounce address, the signer."""

    reply_to: str | None = None  # Reply-To: replies reach a person, not the sender address
    feedback_id: str | None = None  # Feedback-ID: <edition>:digest:<this> (Gmail's FBL)
    bounce_address: str | None = None  # bounces@domain: VERP bounces+<token>@domain
    secret: str = ""  # signs the VERP token
    signer: DkimSigner | None = None


class Letterhead:
    """What every message of a run shares (sender, list, date), encoded once per run."""

    def __init__(self, *, from_address: str, from_name: str, list_id: str, now: datetime,
                 returns: Returns = Returns()) -> None:
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("build_message needs a timezone-aware 'now' for the Date header")
        self.sender = make_address("From", from_name, from_address)
        self.returns = returns
        reply_to = ""
        if returns.reply_to:
            address = make_address("Reply-To", "", returns.reply_to).addr_spec
            reply_to = f"Reply-To: {address}{CRLF}"
        if returns.feedback_id:
            _check_line("Feedback-ID", returns.feedback_id, returns.feedback_id)
        if returns.bounce_address:
            make_address("Bounce", "", returns.bounce_address)  # ValueError when unusable
        # RFC 3834: machine-made, so vacation responders and the like stay quiet
        self.head = (f"From: {_address('From', self.sender.display_name, self.sender.addr_spec)}"
                     f"{CRLF}{reply_to}Date: {format_datetime(now)}{CRLF}"
                     f"List-Id: {list_id_header(from_name, list_id)}{CRLF}"
                     f"Auto-Submitted: auto-generated{CRLF}")
        self._rng = random.Random(os.urandom(16))
        self._qp_line = lru_cache(maxsize=QP_CACHE_LINES)(_qp_line)

    def build(self, digest: Digest, rendered: RenderedDigest, links: SubscriberLinks) -> Outgoing:
        """multipart/alternative (text/plain first, text/html last), with the headers bulk
        senders need: List-Id, List-Unsubscribe (https and mailto), RFC 8058 one-click."""
        subscriber = digest.subscriber
        recipient = _mailbox("To", subscriber.name, subscriber.email)
        _check_line("Subject", rendered.subject, subscriber.email)
        _check_line("Edition", digest.edition, subscriber.email)  # it goes into the Message-ID
        message_id = f"<{self._rng.getrandbits(96):024x}.{digest.edition}@{self.sender.domain}>"
        boundary = "=" * 15 + repr(self._rng.randrange(sys.maxsize)) + "=="
        feedback = (f"Feedback-ID: {digest.edition}:digest:{self.returns.feedback_id}{CRLF}"
                    if self.returns.feedback_id else "")
        head = (f"{self.head}To: {_address('To', subscriber.name, recipient)}{CRLF}"
                f"Subject: {_text_header('Subject', rendered.subject)}{CRLF}"
                f"Message-ID: {message_id}{CRLF}{feedback}"
                f"List-Unsubscribe: {unsubscribe_header(links).replace(', <', ',' + CRLF + ' <')}"
                f"{CRLF}List-Unsubscribe-Post: List-Unsubscribe=One-Click{CRLF}"
                f"MIME-Version: 1.0{CRLF}"
                f'Content-Type: multipart/alternative;{CRLF} boundary="{boundary}"{CRLF}{CRLF}')
        data = CrlfMessage(b"".join((
            head.encode("ascii"),
            f"--{boundary}{CRLF}{_PART.format(subtype='plain')}".encode("ascii"),
            quoted_printable(rendered.text),
            f"{CRLF}--{boundary}{CRLF}{_PART.format(subtype='html')}".encode("ascii"),
            self._quoted_printable_by_line(rendered.html),
            f"{CRLF}--{boundary}--{CRLF}".encode("ascii"),
        )))
        if self.returns.signer is not None:  # last: the signature covers the final bytes
            data = CrlfMessage(self.returns.signer.sign(data) + data)
        return Outgoing(message_id=message_id, sender=self._envelope_sender(digest),
                        recipient=recipient, data=data, edition=digest.edition)

    def _envelope_sender(self, digest: Digest) -> str:
        """MAIL FROM: the From address, or with a bounce address set, one that names the
        subscriber and the edition (VERP), so a bounce says whose it is."""
        returns, sub_id = self.returns, digest.subscriber.id
        if not returns.bounce_address:
            return self.sender.addr_spec
        if sub_id is None:
            return returns.bounce_address
        return bounce_address(returns.secret, returns.bounce_address, sub_id, digest.edition)

    def _quoted_printable_by_line(self, text: str) -> bytes:
        """``quoted_printable(text)``, each line from the cache."""
        lines = _lf_lines(text).split("\n")
        if len(lines) > 1 and not lines[-1]:
            lines.pop()  # the final line break ends the last line rather than adding one
        return b"".join(map(self._qp_line, lines))


def quoted_printable(text: str) -> bytes:
    """The body ends with a line break of its own (as the email package makes it); the CRLF
    before the next boundary belongs to the boundary."""
    text = _lf_lines(text)
    if not text.endswith("\n"):
        text += "\n"
    return b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


def _lf_lines(text: str) -> str:
    """A bare CR is a line break too: the message must not carry one (RFC 5322 2.3), and it was
    sent as one before (the transport turned it into CRLF)."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def build_message(digest: Digest, rendered: RenderedDigest, links: SubscriberLinks, *,
                  from_address: str, from_name: str, list_id: str, now: datetime,
                  returns: Returns = Returns()) -> Outgoing:
    """One message; a run builds its :class:`Letterhead` once and calls ``build`` instead."""
    letterhead = Letterhead(from_address=from_address, from_name=from_name, list_id=list_id,
                            now=now, returns=returns)
    return letterhead.build(digest, rendered, links)


def _qp_line(line: str) -> bytes:
    """One body line, quoted-printable (soft breaks keep it within 76 columns), ending in CRLF.
    b2a_qp's output for a line depends on that line alone: what it does at a line break
    (encoding a space or tab before it, a lone dot) looks only at the line it ends."""
    return b2a_qp(line.encode("utf-8") + b"\n", istext=True).replace(b"\n", b"\r\n")


def _mailbox(field: str, name: str, address: str) -> str:
    """``make_address(...).addr_spec`` for one message's recipient, without the library's
    address parser when the address is plain (it cost a tenth of composing a message)."""
    _check_line(f"{field} name", name, address)
    if _PLAIN_ADDRESS.fullmatch(address):
        return address  # what Address() and the IDNA codec would give back for it
    return make_address(field, name, address).addr_spec


def _address(field: str, name: str, addr_spec: str) -> str:
    """``Name <addr>`` for the header ``field``, the name quoted or RFC 2047-encoded."""
    if not name:
        return addr_spec
    if name.isascii():
        return formataddr((name, addr_spec))  # quotes a name with specials
    words = encoded_words(name, MAX_LINE - len(field) - 2)
    _, crlf, last_line = words.rpartition(CRLF)
    column = len(last_line) if crlf else len(field) + 2 + len(words)
    # the address stays on the name's last line while that line keeps within 78 columns
    fold = CRLF if column + len(addr_spec) + 3 > MAX_LINE else ""
    return f"{words}{fold} <{addr_spec}>"


def _text_header(name: str, value: str) -> str:
    """ASCII as it is (unless it looks like an encoded word); anything else as RFC 2047
    encoded words, folded with CRLF."""
    if value.isascii() and len(value) < 900 and "=?" not in value:
        return value
    return encoded_words(value, MAX_LINE - len(name) - 2)


# -- RFC 2047 encoded words --------------------------------------------------------------------

MAX_LINE = 78  # RFC 5322 2.1.1: lines SHOULD be at most 78 characters
MAX_WORD = 75  # RFC 2047 2: an encoded word is at most 75 characters
_CHROME = len("=?utf-8?q??=")
# The Q encoding of a phrase (RFC 2047 5(3)) may leave these as they are: the email package's
# conservative set. A space is "_"; every other byte is "=XX".
_Q_SAFE = frozenset((string.ascii_letters + string.digits + "-!*+/").encode("ascii"))
_Q = tuple(chr(b) if b in _Q_SAFE else "_" if b == 0x20 else f"={b:02X}" for b in range(256))
_Q_ESCAPED = bytes(b for b in range(256) if b not in _Q_SAFE and b != 0x20)


def encoded_words(text: str, first: int) -> str:
    """``text`` as UTF-8 encoded words, B or Q, whichever is shorter (as the email package
    chooses), folded with CRLF SP.

    The first word fits in ``first`` columns (what the header's first line has left after
    "Name: "); every word is at most 75 characters and every line at most 78. A word ends on a
    UTF-8 character boundary, since each must decode on its own (RFC 2047 5); readers join
    adjacent words and drop the folding between them (6.2), so nothing is lost or added.
    """
    if not text:
        return ""
    if first < _CHROME + 12:  # 12: the longest Q encoding of one character
        raise ValueError(f"{first} columns cannot hold an encoded word")
    data = text.encode("utf-8")
    q_length = len(data) + 2 * (len(data) - len(data.translate(None, _Q_ESCAPED)))
    b_length = (len(data) + 2) // 3 * 4
    rooms = (min(first, MAX_WORD) - _CHROME, MAX_WORD - _CHROME)
    words = _b_words(data, rooms) if b_length < q_length else _q_words(data, rooms)
    return (CRLF + " ").join(words)


def _b_words(data: bytes, rooms: tuple[int, int]) -> list[str]:
    words, start, room = [], 0, rooms[0]
    while start < len(data):
        end = _char_start(data, start + room // 4 * 3)
        words.append(f"=?utf-8?b?{b2a_base64(data[start:end], newline=False).decode()}?=")
        start, room = end, rooms[1]
    return words


def _q_words(data: bytes, rooms: tuple[int, int]) -> list[str]:
    encoded = list(map(_Q.__getitem__, data))
    ends = list(accumulate(map(len, encoded)))  # where each byte's encoding ends in the text
    words, start, room = [], 0, rooms[0]
    while start < len(data):
        # the bytes from start whose encodings fit in room, cut back to a character boundary
        end = _char_start(data, bisect_right(ends, room + (ends[start - 1] if start else 0)))
        words.append("=?utf-8?q?" + "".join(encoded[start:end]) + "?=")
        start, room = end, rooms[1]
    return words


def _char_start(data: bytes, at: int) -> int:
    """``at``, or the start of the UTF-8 sequence ``at`` falls inside (10xxxxxx: a continuation
    byte); the end of ``data`` when ``at`` is past it."""
    if at >= len(data):
        return len(data)
    while data[at] & 0xC0 == 0x80:
        at -= 1
    return at


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
    """``Name <list.id>`` (RFC 2919), the phrase quoted or RFC 2047-encoded."""
    list_id = list_id.strip("<> ")
    if not _LIST_ID.match(list_id):
        raise ValueError(f"List-Id {list_id!r} must look like a domain name, e.g. papers.example.org")
    _check_line("List-Id name", name, list_id)
    return _address("List-Id", name, list_id) if name else f"<{list_id}>"


def unsubscribe_header(links: SubscriberLinks) -> str:
    urls = (links.unsubscribe_url, links.unsubscribe_mailto)
    for url in urls:
        if not url.isascii() or unsafe(url) or any(c in url for c in "<>, "):
            raise ValueError(f"List-Unsubscribe link {url!r} must be an ASCII URL without ',<> '")
    return ", ".join(f"<{url}>" for url in urls)


def _check_line(what: str, value: str, address: str) -> None:
    # Line breaks of every kind and other control or format characters have no business in a
    # name or subject; refusing them is what keeps a header from being injected. The rule is
    # the one every input is cleaned by (newsletter/safetext.py), so nothing accepted at the
    # door is refused here.
    if unsafe(value) is not None:
        raise ValueError(
            f"{what} for {address!r} contains a line break or control character: "
            "refusing to put it in a header"
        )
