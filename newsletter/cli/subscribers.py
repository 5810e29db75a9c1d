"""`subscribers check`, `subscribers list`, `subscribers reactivate` and `subscribers forget`."""

from __future__ import annotations

import typer
from rich.table import Table

from newsletter.cli.common import friendly, open_database, out, say, sync_files, warn
from newsletter.errors import NewsletterError
from newsletter.settings import Settings
from newsletter.store.subscribers import forget, load_subscribers, reactivate
from newsletter.subscribers import read_subscriber_files

subscribers_app = typer.Typer(help="List and check the subscriber files in subscribers/.",
                              no_args_is_help=True)

@subscribers_app.command("check")
@friendly
def subscribers_check() -> None:
    """Validate the subscriber files without touching the database; exit 1 on any problem."""
    settings = Settings()
    found, problems = read_subscriber_files(settings.subscribers_dir)
    warn(problems)
    say(f"{len(found)} valid subscribers in {settings.subscribers_dir}, {len(problems)} problems.")
    if problems:
        raise typer.Exit(1)


@subscribers_app.command("list")
@friendly
def subscribers_list() -> None:
    """Sync the subscriber files into the database and list everyone with their status."""
    settings, engine = open_database()
    sync_files(engine, settings)
    table = Table("email", "name", "topics", "frequency", "max", "status")
    for sub in load_subscribers(engine, statuses=None):
        table.add_row(sub.email, sub.name, ", ".join(sub.topics), sub.frequency,
                      str(sub.max_papers), sub.status)
    out.print(table)


@subscribers_app.command("reactivate")
@friendly
def subscribers_reactivate(
    email: str = typer.Argument(..., help="The suppressed (bounced) address."),
) -> None:
    """Take a suppressed address out of "bounced": it gets digests again.

    An address is suppressed after NEWSLETTER_SUPPRESS_AFTER permanent refusals (5xx replies
    to RCPT or DATA). Reactivate it once the cause is gone (the mailbox exists again, the
    relay's rule was fixed); its earlier refusals no longer count. An address that
    unsubscribed itself stays unsubscribed: only its owner can subscribe again.
    """
    _, engine = open_database()
    before = reactivate(engine, email)
    if before is None:
        raise NewsletterError(f"{email} is not a subscriber (see `newsletter subscribers list`)")
    if before != "bounced":
        raise NewsletterError(f"{email} is {before}, not bounced: nothing to reactivate")
    say(f"{email} is active again; its earlier permanent failures no longer count.")


@subscribers_app.command("forget")
@friendly
def subscribers_forget(
    email: str = typer.Argument(..., help="The address whose data to delete."),
    yes: bool = typer.Option(False, "--yes", help="Delete without asking."),
) -> None:
    """Delete a subscriber and everything stored about them.

    Removes their row, their deliveries and the papers sent to them, clicks, returned mail,
    "More/Less like this" feedback and library, and pending sign-ups for the address. An
    address still listed in a subscribers/ file comes back at the next sync: remove it from
    the file first. To stop mail but keep the history, unsubscribe instead.
    """
    settings, engine = open_database()
    if not yes and not typer.confirm(f"Delete {email} and everything stored about them?"):
        raise typer.Exit(1)
    if not forget(engine, email):
        raise NewsletterError(f"{email} is not a subscriber (see `newsletter subscribers list`)")
    listed, _ = read_subscriber_files(settings.subscribers_dir)
    say(f"Deleted {email} and everything stored about them.")
    if any(sub.email == email.lower() for sub in listed):
        warn_text = (f"{email} is still listed in {settings.subscribers_dir}: remove it there, "
                     "or the next sync adds it again.")
        say(warn_text)
