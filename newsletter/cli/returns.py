"""`bounces`: read the mailbox of returns once (``newsletter.returns``)."""

from __future__ import annotations

import typer

from newsletter.cli.common import friendly, open_database, say
from newsletter.returns.process import ReturnsReport, process_returns
from newsletter.store.engine import utcnow
from newsletter.store.schema import secret_key

_SAID = {"hard-bounce": "hard bounce", "soft-bounce": "soft bounce", "refused": "refused",
         "delayed": "delayed", "delivered": "delivered", "complaint": "spam complaint",
         "not-spam": "not-spam report", "unsubscribe": "unsubscribe request"}


@friendly
def bounces() -> None:
    """Read the mailbox of returns: bounces, spam complaints, mailto unsubscribes.

    Reads NEWSLETTER_RETURNS_IMAP_HOST (or NEWSLETTER_RETURNS_MAILDIR). A hard bounce (no such
    address) suppresses the subscriber at once; soft bounces (mailbox full) on
    NEWSLETTER_SOFT_BOUNCE_LIMIT editions do; a spam complaint or mail to the unsubscribe
    address unsubscribes at once. Only a report that names the subscriber in a way nobody can
    forge counts: the VERP bounce address (NEWSLETTER_BOUNCE_ADDRESS), the Message-ID of our
    digest, the signed unsubscribe token. Each message is recorded and moved to
    NEWSLETTER_RETURNS_DONE_FOLDER, so a rerun counts nothing twice; one that cannot be read is
    left where it is and listed (exit 1). `newsletter run` does this every
    NEWSLETTER_RETURNS_INTERVAL_MINUTES.
    """
    settings, engine = open_database()
    secret = (settings.secret_key.get_secret_value() if settings.secret_key
              else secret_key(engine))
    report = process_returns(engine, settings, secret, utcnow())
    print_returns(report)
    if report.left:
        raise typer.Exit(1)


def print_returns(report: ReturnsReport) -> None:
    for item in report.handled:
        r = item.report
        who = item.email or "nobody we know"
        where = ", ".join(filter(None, (f"edition {item.edition}" if item.edition else "",
                                        r.status or "")))
        say(f"{_SAID.get(r.kind, r.kind)} {who}" + (f" ({where})" if where else "")
            + f": {item.effect}" + (f" — {r.detail}" if r.detail else ""), stderr=True,
            wrap=False)
    for key, why in report.left:
        say(f"left in place: message {key}: {why}", stderr=True, wrap=False)
    changed = sum(i.effect in ("suppressed", "unsubscribed") for i in report.handled)
    say(f"{report.mailbox}: {len(report.handled)} handled ({changed} addresses suppressed or "
        f"unsubscribed), {len(report.left)} left for a person.")
