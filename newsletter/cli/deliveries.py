"""`deliveries resolve`: a person's verdict on a delivery the ledger could not settle."""

from __future__ import annotations

from typing import Optional

import typer

from newsletter.cli.common import friendly, open_database, say
from newsletter.dispatch import ledger
from newsletter.errors import NewsletterError

deliveries_app = typer.Typer(help="Settle deliveries that need a person (see `newsletter status`).",
                             no_args_is_help=True)


@deliveries_app.command("resolve")
@friendly
def resolve(
    delivery: int = typer.Argument(..., metavar="ID",
                                   help="The delivery's id, as `newsletter status` lists it."),
    sent: Optional[bool] = typer.Option(
        None, "--sent/--requeue",
        help="--sent: the relay's log shows the message went out; nothing more happens. "
             "--requeue: it did not; the next `send`, `run` tick or worker sends it again."),
) -> None:
    """Settle an uncertain delivery once you have looked its Message-ID up in the relay's log.

    An uncertain delivery is one whose connection died after the whole message was sent, or
    whose sending process died mid-send: the server may have it, so it is never resent on its
    own. `newsletter status` lists each one with its id and Message-ID.
    """
    if sent is None:
        raise NewsletterError("say what the relay's log shows: --sent or --requeue")
    _, engine = open_database()
    before = ledger.resolve(engine, delivery, sent=sent)
    what = ("marked sent" if sent else
            "queued again: the next `newsletter send`, `run` tick or worker sends it")
    say(f"Delivery {delivery} ({before.email}, edition {before.edition}, Message-ID "
        f"{before.message_id or '(none)'}): {what}.")
