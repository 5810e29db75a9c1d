"""`subscribers check` and `subscribers list`."""

from __future__ import annotations

import typer
from rich.table import Table

from newsletter.cli.common import friendly, open_database, out, sync_files, warn
from newsletter.settings import Settings
from newsletter.store.subscribers import load_subscribers
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
    out.print(f"{len(found)} valid subscribers in {settings.subscribers_dir}, "
              f"{len(problems)} problems.")
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
