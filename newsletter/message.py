"""A rendered digest -> the RFC 5322 bytes handed to the transport.

Built with the standard library's ``email`` package so that names and subjects are encoded
(RFC 2047) and addresses quoted by code that knows the rules, never by string pasting.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy, SMTP
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any

from .models import Digest, Outgoing, RenderedDigest, SubscriberLinks

# Line breaks of every kind (CR, LF, NEL, LS, PS) and other control characters have no business
# in a name or subject; refusing them up front is what keeps a header from being injected.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_LIST_ID = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)+$")
# Headers whose values are URLs or ids: the library would fold an over-long one by turning it into
# RFC 2047 encoded words, which no mail client decodes back into a link.
_VERBATIM = frozenset({"list-unsubscribe", "list-id"})


class _Policy(EmailPolicy):
    """policy.SMTP, except that the URL headers are kept as given (already ASCII and checked) and
    folded between their <...> items only."""

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        if name.lower() in _VERBATIM:
            return name, value
        return super().header_store_parse(name, value)

    def fold(self, name: str, value: Any) -> str:
        if name.lower() in _VERBATIM:
            return _fold_list(name, str(value), self.linesep)
        return super().fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        if name.lower() in _VERBATIM:
            return _fold_list(name, str(value), self.linesep).encode("ascii")
        return super().fold_binary(name, value)


POLICY = _Policy() + SMTP


def _fold_list(name: str, value: str, linesep: str) -> str:
    # The values were checked to be ASCII without line breaks; folding before each "<" of a
    # "<a>, <b>" list keeps every URL whole on its own line.
    return f"{name}: " + value.replace(", <", f",{linesep} <") + linesep


def build_message(
    digest: Digest,
    rendered: RenderedDigest,
    links: SubscriberLinks,
    *,
    from_address: str,
    from_name: str,
    list_id: str,
    now: datetime,
) -> Outgoing:
    """multipart/alternative (text/plain first, text/html last), with the headers bulk senders
    need: List-Id, List-Unsubscribe (https and mailto) and RFC 8058 one-click unsubscribe."""
    subscriber = digest.subscriber
    sender = make_address("From", from_name, from_address)
    recipient = make_address("To", subscriber.name, subscriber.email)
    _check_line("Subject", rendered.subject, subscriber.email)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("build_message needs a timezone-aware 'now' for the Date header")
    message_id = make_msgid(domain=sender.domain)

    msg = EmailMessage(policy=POLICY)
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    msg["List-Id"] = list_id_header(from_name, list_id)
    msg["List-Unsubscribe"] = unsubscribe_header(links)
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # quoted-printable keeps the parts readable and every line under the 78-character limit.
    msg.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    for part in msg.iter_parts():
        del part["MIME-Version"]  # add_alternative repeats it in the part; once at the top is right
    return Outgoing(
        message_id=message_id,
        sender=sender.addr_spec,
        recipient=recipient.addr_spec,
        data=msg.as_bytes(),
        edition=digest.edition,
    )


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
