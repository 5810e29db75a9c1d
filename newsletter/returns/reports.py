"""One message from the mailbox of returns -> what it reports, and on whom. Pure: bytes in, a
:class:`Report` out, or :class:`Unreadable` saying why not.

- A delivery status notification (RFC 3464: ``multipart/report; report-type=delivery-status``)
  reports per recipient an Action and a Status (RFC 3463 codes). Its kind follows from them
  (``bounce_kind``): only a permanent failure of the *address* (5.1.x: no such mailbox or
  domain; 5.2.1: disabled) is a hard bounce. A full mailbox, or a temporary failure the remote
  server gave up on, is a soft one. A refusal for policy, content or the server's own reasons
  (5.7.x: often our reputation, not the reader) is recorded and counts for nothing, like a delay.
- A feedback report (RFC 5965: ``report-type=feedback-report``) with Feedback-Type ``abuse``,
  ``fraud``, ``virus`` or ``other`` is a complaint: the reader marked us as spam.
- A message whose subject is ``unsubscribe <token>``, as the ``mailto:`` of List-Unsubscribe
  makes it, is a request to unsubscribe; a token of no shape of ours is refused here, and whose
  it is (checked against that subscriber's key) is found by ``process.locate``.

Who a report is about comes only from what we signed or made unguessable: the VERP envelope
sender it was returned to (or ARF's Original-Mail-From), the Message-ID of our digest in the
returned headers, the unsubscribe token.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email import message_from_bytes, message_from_string, policy
from email.message import Message

from newsletter.compose.tokens import legacy_unsubscribe_address, parse, read_bounce_address

# Where the address a return was delivered to shows up: the VERP envelope sender we used
_ENVELOPE_HEADERS = ("To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To",
                     "Original-Recipient", "Original-Mail-From")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_UNSUBSCRIBE = re.compile(r"^\s*(?:(?:re|fwd?|aw|wg)\s*:\s*)*unsubscribe\s+(\S+)", re.I)
_MESSAGE_ID = re.compile(r"<[^<>\s]+@[^<>\s]+>")
COMPLAINTS = ("abuse", "fraud", "virus", "other")


class Unreadable(Exception):
    """The message is not a report we can act on; it stays in the mailbox for a person."""


@dataclass(frozen=True, slots=True)
class Report:
    kind: str  # hard-bounce, soft-bounce, refused, delayed, delivered, complaint, not-spam,
    #            unsubscribe
    key: str  # the returned message's own Message-ID, or a hash of its bytes: seen once
    verp: tuple[int, str] | None = None  # (subscriber id, edition) from our signed envelope
    message_id: str | None = None  # of the digest it reports on
    token: str | None = None  # an unsubscribe link's token: whose it is, ``locate`` finds out
    status: str | None = None  # "5.1.1"
    detail: str = ""  # one line a person can read: the diagnostic, the feedback type


def read_report(raw: bytes, *, secret: str) -> Report:
    """What ``raw`` reports; Unreadable when it is none of the three kinds above."""
    message = message_from_bytes(raw, policy=policy.compat32)
    key = _own_id(message) or "sha256:" + hashlib.sha256(raw).hexdigest()
    if message.get_content_type() == "multipart/report":
        report_type = (message.get_param("report-type") or "").lower()
        if report_type == "delivery-status":
            return _dsn(message, key, secret)
        if report_type == "feedback-report":
            return _arf(message, key, secret)
        raise Unreadable(f"a report of type {report_type or '(none)'!r}, neither a delivery "
                         "status (RFC 3464) nor a feedback report (RFC 5965)")
    return _unsubscribe(message, key, secret)


def bounce_kind(action: str, status: str | None) -> str:
    """hard-bounce, soft-bounce, refused, delayed or delivered, for one recipient's Action
    and Status (RFC 3464 2.3.3, RFC 3463)."""
    action = action.lower()
    if action == "delayed":
        return "delayed"
    if action != "failed":
        return "delivered"  # delivered, relayed, expanded: nothing went wrong
    if status is None:
        return "soft-bounce"  # failed, without saying why: let repetition decide
    klass, subject, detail = status.split(".")
    if klass == "5" and (subject == "1" or (subject, detail) == ("2", "1")):
        return "hard-bounce"  # the address: no such mailbox, user or domain; disabled
    if klass == "4" or subject == "2":
        return "soft-bounce"  # gave up on a temporary failure; the mailbox is full
    return "refused"  # policy, content, routing, the server itself: not the address's fault


# -- delivery status notifications (RFC 3464) ----------------------------------------------


_SEVERITY = ("hard-bounce", "soft-bounce", "refused", "delayed", "delivered")


def _dsn(message: Message, key: str, secret: str) -> Report:
    status_part = _part(message, "message/delivery-status")
    if status_part is None:
        raise Unreadable("a delivery report without its message/delivery-status part")
    blocks = _field_blocks(status_part)
    recipients = [b for b in blocks[1:] if b.get("Action")] or [b for b in blocks if b.get(
        "Action")]
    if not recipients:
        raise Unreadable("a delivery report with no recipient Action field")
    found = []
    for block in recipients:
        status = _status(block.get("Status", "")) or _status(block.get("Diagnostic-Code", ""))
        found.append((_SEVERITY.index(bounce_kind(block["Action"].strip(), status)), status,
                      block))
    rank, status, block = min(found, key=lambda f: f[0])
    detail = " ".join((block.get("Diagnostic-Code") or block.get("Action", "")).split())
    recipient = (block.get("Final-Recipient") or "").partition(";")[2].strip()
    return Report(_SEVERITY[rank], key, verp=_verp(message, secret),
                  message_id=_original_id(message), status=status,
                  detail=f"{recipient}: {detail}"[:500] if recipient else detail[:500])


def _status(text: str) -> str | None:
    match = _STATUS.search(text)
    return ".".join(match.groups()) if match else None


# -- feedback reports (RFC 5965) ------------------------------------------------------------


def _arf(message: Message, key: str, secret: str) -> Report:
    part = _part(message, "message/feedback-report")
    if part is None:
        raise Unreadable("a feedback report without its message/feedback-report part")
    blocks = _field_blocks(part)
    fields = blocks[0] if blocks else Message()
    kind = (fields.get("Feedback-Type") or "").strip().lower()
    if not kind:
        raise Unreadable("a feedback report without a Feedback-Type field")
    verp = _verp(message, secret) or _verp(fields, secret)
    report_kind = "complaint" if kind in COMPLAINTS else "not-spam" if kind == "not-spam" \
        else "refused"  # auth-failure and the like: about our DNS, not a reader
    source = fields.get("User-Agent") or fields.get("Reported-Domain") or "a mailbox provider"
    return Report(report_kind, key, verp=verp, message_id=_original_id(message),
                  detail=f"Feedback-Type {kind} from {' '.join(source.split())}"[:500])


# -- mail to the mailto: unsubscribe address -------------------------------------------------


def _unsubscribe(message: Message, key: str, secret: str) -> Report:
    subject = " ".join(str(message.get("Subject", "")).split())
    match = _UNSUBSCRIBE.match(subject)
    if match is None:
        raise Unreadable(f"neither a bounce, a complaint nor an unsubscribe request "
                         f"(subject {subject[:80]!r})")
    token = match.group(1)
    if parse(token, "unsubscribe") is None and legacy_unsubscribe_address(secret, token) is None:
        raise Unreadable("an unsubscribe request whose token is not ours")
    return Report("unsubscribe", key, token=token, detail="mailto: unsubscribe")


# -- helpers ---------------------------------------------------------------------------------


def _part(message: Message, content_type: str) -> Message | None:
    return next((p for p in message.walk() if p.get_content_type() == content_type), None)


def _field_blocks(part: Message) -> list[Message]:
    """The blocks of fields of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):  # the email package parses delivery-status into blocks
        return [p for p in payload if isinstance(p, Message)]
    text = payload if isinstance(payload, str) else ""
    if part.get("Content-Transfer-Encoding", "").lower() in ("base64", "quoted-printable"):
        text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    blocks = re.split(r"\r?\n[ \t]*\r?\n", text.strip())
    return [message_from_string(block.strip() + "\n\n") for block in blocks if block.strip()]


def _original_id(message: Message) -> str | None:
    """The Message-ID of the message a report returns (its headers ride along)."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else None
            found = inner.get("Message-ID") if isinstance(inner, Message) else None
        elif kind in ("text/rfc822-headers", "text/global-headers"):
            text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
            found = message_from_string(text + "\n\n").get("Message-ID")
        else:
            continue
        match = _MESSAGE_ID.search(str(found or ""))
        if match:
            return match.group(0)
    return None


def _verp(message: Message, secret: str) -> tuple[int, str] | None:
    for name in _ENVELOPE_HEADERS:
        for value in message.get_all(name) or ():
            found = read_bounce_address(secret, str(value))
            if found is not None:
                return found
    return None


def _own_id(message: Message) -> str | None:
    match = _MESSAGE_ID.search(str(message.get("Message-ID", "")))
    return match.group(0)[:300] if match else None
