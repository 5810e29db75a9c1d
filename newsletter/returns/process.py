"""Read the mailbox of returns once: each message read (``reports.py``), matched to its
subscriber, recorded and applied (``store/returns.py``), then moved to the done folder.

The order makes a rerun safe: a message is recorded and applied in one transaction before it
is moved, so one whose move failed (a crash, a lost connection) is found recorded next time and
only moved. An unreadable one is left in place, reported in every run until a person acts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from newsletter.errors import ConfigError
from newsletter.returns.mailboxes import Mailbox, open_mailbox
from newsletter.returns.reports import Report, Unreadable, read_report
from newsletter.settings import Settings
from newsletter.store.returns import Returned, find_subscriber, locate_delivery, record_return
from newsletter.store.subscribers import resolve_link


@dataclass(frozen=True, slots=True)
class Handled:
    report: Report
    email: str | None  # the subscriber it was matched to; None: nobody
    edition: str | None
    effect: str  # suppressed, unsubscribed, counted, none; "seen before" when recorded already


@dataclass
class ReturnsReport:
    mailbox: str
    handled: list[Handled] = field(default_factory=list)
    left: list[tuple[str, str]] = field(default_factory=list)  # (message key, why)


def process_returns(engine: Engine, settings: Settings, secret: str, now: datetime,
                    mailbox: Mailbox | None = None) -> ReturnsReport:
    """Handle every message waiting in the mailbox of returns (the configured one by default).
    ConfigError when there is none or it cannot be opened."""
    mailbox = mailbox or open_mailbox(settings)
    if mailbox is None:
        raise ConfigError("no mailbox of returns is configured: set NEWSLETTER_RETURNS_IMAP_HOST "
                          "(and its _USERNAME, _PASSWORD) or NEWSLETTER_RETURNS_MAILDIR")
    result = ReturnsReport(mailbox.describe())
    with mailbox:
        for letter in mailbox.letters():
            try:
                report = read_report(letter.data, secret=secret)
            except Unreadable as exc:
                result.left.append((letter.key, str(exc)))
                continue
            who, edition = locate(engine, report, secret, now)
            returned = Returned(report.key, report.kind, who[0] if who else None, edition,
                                report.status, report.detail)
            effect = record_return(engine, returned, now, settings.soft_bounce_limit)
            mailbox.done(letter)
            result.handled.append(Handled(report, who[1] if who else None, edition,
                                          effect or "seen before"))
    return result


def locate(engine: Engine, report: Report, secret: str,
           now: datetime) -> tuple[tuple[int, str] | None, str | None]:
    """((subscriber id, email), edition) of what ``report`` is about, by what we signed or
    made unguessable only: the VERP token, our Message-ID, the unsubscribe token."""
    if report.verp is not None:
        found = find_subscriber(engine, subscriber_id=report.verp[0])
        if found is not None:
            return found, report.verp[1]
    if report.message_id is not None:
        delivery = locate_delivery(engine, report.message_id)
        if delivery is not None:
            return find_subscriber(engine, subscriber_id=delivery[0]), delivery[1]
    if report.token is not None:
        owner = resolve_link(engine, secret, "unsubscribe", report.token, now)
        return ((owner.subscriber_id, owner.email) if owner else None), None
    return None, None
