"""Sign-up with double opt-in: what the form accepts, and the two emails it can cause.

A new (or returning) address gets a confirmation link; an address that is already subscribed
gets a note with its preferences link instead. Neither email carries anything the form's sender
typed (the topics are shown on the page the link opens): the form is no way to mail a stranger.
The web page answers the same in both cases, so the form never tells anybody whether an address
is on the list: only the mailbox's owner learns.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

import jinja2
from email_validator import EmailNotValidError, validate_email

from newsletter.compose.message import make_address
from newsletter.dispatch.deliver import returns_of
from newsletter.models import Outgoing
from newsletter.safetext import MAX_TOPIC_CHARS, TextError, clean_line, unsafe
from newsletter.settings import Settings

CONFIRM_MAX_AGE = timedelta(days=3)  # a confirmation link older than this must be asked again
MAX_TOPICS = 20
_SPLIT = re.compile(r"[\n\r\u2028\u2029,;]+")


class FormError(ValueError):
    """What is wrong with one field of a submitted form, in words for the person who filled it
    in; ``field`` is the form field's name, so the page can show the words next to it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def normalize_address(raw: str) -> str:
    """The address as stored (lowercase, normalized); FormError when it cannot receive mail
    from us. Non-ASCII local parts are refused: most relays cannot carry them (SMTPUTF8)."""
    raw = raw.strip()
    if not raw:
        raise FormError("email", "Enter your email address.")
    if len(raw) > 254 or unsafe(raw) is not None:
        raise FormError("email", "That email address does not look right. Check it for typos.")
    try:
        return validate_email(raw, check_deliverability=False,
                              allow_smtputf8=False).normalized.lower()
    except EmailNotValidError:
        # The validator's own wording is for programmers; this is for the person typing.
        raise FormError("email", "That email address does not look right. Check it for "
                                 "typos: it should look like name@example.org.") from None


def parse_topics(raw: str, *, field: str = "topics", required: bool = True) -> list[str]:
    """Topics typed one per line or separated by commas, cleaned by the rules every name and
    topic follows (``newsletter.safetext``), duplicates dropped, in the order given."""
    topics: list[str] = []
    for part in _SPLIT.split(raw):
        try:
            topic = clean_line(part, max_chars=MAX_TOPIC_CHARS, multiline=True)
        except TextError as exc:
            raise FormError(field, f"A topic {exc}.") from None
        if topic and topic not in topics:
            topics.append(topic)
    if required and not topics:
        raise FormError(field, "Add at least one topic, for example “graph neural networks”.")
    if len(topics) > MAX_TOPICS:
        raise FormError(field, f"At most {MAX_TOPICS} topics, please.")
    return topics


def confirmation_message(settings: Settings, env: jinja2.Environment, *, email: str,
                         confirm_url: str, now: datetime) -> Outgoing:
    """The link, and nothing the form's sender wrote: the topics are shown on the page the link
    opens, so the form cannot make us mail somebody a stranger's words."""
    hours = int(CONFIRM_MAX_AGE.total_seconds() // 3600)
    return _message(settings, env, "confirm", email, f"Confirm your subscription to "
                    f"{settings.from_name}", now, url=confirm_url, valid_hours=hours)


def already_subscribed_message(settings: Settings, env: jinja2.Environment, *, email: str,
                               preferences_url: str, now: datetime) -> Outgoing:
    return _message(settings, env, "already", email, f"You are already subscribed to "
                    f"{settings.from_name}", now, url=preferences_url)


def _message(settings: Settings, env: jinja2.Environment, name: str, email: str, subject: str,
             now: datetime, **context: object) -> Outgoing:
    """A small multipart/alternative message; headers are set by the email library from
    checked values (``make_address`` refuses line breaks), never pasted together."""
    sender = make_address("From", settings.from_name, settings.from_address)
    recipient = make_address("To", "", email)
    context = {**context, "site_name": settings.from_name, "base_url": settings.base_url,
               "subject": subject}
    text = env.get_template(f"email/{name}.txt").render(context) + "\n"
    html = env.get_template(f"email/{name}.html").render(context) + "\n"
    message_id = make_msgid(domain=sender.domain)
    msg = EmailMessage(policy=SMTP)  # CRLF line endings, as DATA carries them
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to this, please
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    if settings.reply_to:
        msg["Reply-To"] = make_address("Reply-To", "", settings.reply_to)
    for part in msg.iter_parts():
        del part["MIME-Version"]
    # signed and bounced like a digest, so DMARC passes for these too; no VERP: not a subscriber
    returns = returns_of(settings, "", now)
    data = msg.as_bytes()
    if returns.signer is not None:
        data = returns.signer.sign(data) + data
    return Outgoing(message_id=message_id, sender=settings.bounce_address or sender.addr_spec,
                    recipient=recipient.addr_spec, data=data, edition="signup")
