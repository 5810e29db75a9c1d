"""`preview`, `status` and `serve`: what a digest looks like, what happened, the web pages."""

from __future__ import annotations

import logging
import tempfile
import webbrowser
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from newsletter.cli.common import ensure_catalog, friendly, open_database, out, say, sync_files
from newsletter.dispatch import ledger
from newsletter.dispatch.deliver import Pipeline
from newsletter.errors import ConfigError, NewsletterError
from newsletter.preflight import weak_secret
from newsletter.relevance.select import edition_for
from newsletter.settings import Settings
from newsletter.store.catalog import count_papers
from newsletter.store.engine import utcnow
from newsletter.store.returns import returns_by_edition
from newsletter.store.subscribers import load_subscribers

SHOWN = 20  # failures and retries listed by `status`; the count of the rest follows


@friendly
def preview(
    email: str = typer.Argument(..., help="The subscriber whose next digest to show."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Write to this file instead of stdout."),
    text: bool = typer.Option(False, "--text", help="The plain-text part instead of the HTML."),
    open_: bool = typer.Option(False, "--open", help="Open the result in a web browser."),
) -> None:
    """Render exactly what `send` would send to EMAIL now, without sending or recording."""
    settings, engine = open_database()
    sync_files(engine, settings)
    ensure_catalog(engine, settings)
    subs = load_subscribers(engine, statuses=None, email=email)
    if not subs:
        raise NewsletterError(f"{email} is not a subscriber (see `newsletter subscribers list`)")
    sent = ledger.sent_papers_by_subscriber(engine, [subs[0].id or 0])
    now = utcnow()
    pipeline = Pipeline.build(engine, settings, now)
    reader = pipeline.readers(engine, [subs[0].id or 0]).get(subs[0].id or 0)
    composed = pipeline.compose(subs[0], sent.get(subs[0].id or 0, set()),
                                edition_for(subs[0], now), reader)
    if composed is None:
        say(f"Nothing relevant and new for {email}: `send` would skip them.", stderr=True)
        raise typer.Exit(1)
    body = composed.rendered.text if text else composed.rendered.html
    if open_ and out_file is None:
        out_file = Path(tempfile.mkstemp(suffix=".txt" if text else ".html")[1])
    if out_file is None:
        typer.echo(body)
        return
    out_file.write_text(body, encoding="utf-8")
    say(f"Wrote {out_file} ({len(body.encode()) // 1024} KB): {composed.rendered.subject}",
        stderr=True)
    if open_:
        webbrowser.open(out_file.resolve().as_uri())


@friendly
def status() -> None:
    """Show each edition's deliveries by state, its returns (bounces, complaints, unsubscribe
    requests, and the addresses they suppressed), and what failed or needs a look.

    Every uncertain delivery is listed with its id and Message-ID: look the Message-ID up in
    the relay's log, then settle it with `newsletter deliveries resolve ID --sent` or
    `--requeue`.
    """
    settings, engine = open_database()
    say(f"Catalog: {count_papers(engine)} papers. Mail goes to {settings.describe_delivery()}.")
    table = Table("edition", "state", "count", title="Deliveries")
    for row in ledger.counts(engine):
        table.add_row(row.edition, row.state, str(row.count))
    out.print(table)
    returned = returns_by_edition(engine)
    if returned:
        table = Table("edition", "hard bounces", "soft bounces", "complaints",
                      "mailto unsubscribes", "suppressed", title="Returns (newsletter bounces)")
        for r in returned:
            table.add_row(r.edition or "(none)", *map(str, (r.hard, r.soft, r.complaints,
                                                            r.unsubscribes, r.suppressed)))
        out.print(table)
    totals = ledger.count_states(engine)
    if not totals:
        say("No failures, retries or uncertain deliveries.")
        return
    others = ledger.problems(engine, limit=SHOWN, states=("failed", "retrying", "sending"))
    if others:
        say(("Needs attention", "bold"), " (most recent first):")
    for e in others:  # one line each, never wrapped: the SMTP reply stays greppable
        when = f", next try {e.next_attempt_at:%Y-%m-%d %H:%M} UTC" if e.next_attempt_at else ""
        say(f"  {e.state:<9} {e.email}  edition {e.edition}, {e.attempts} attempt(s){when}: "
            f"{e.error or ''}", wrap=False)
    hidden = sum(totals.get(state, 0) for state in ("failed", "retrying", "sending")) - len(others)
    if hidden > 0:
        say(f"  ... and {hidden} more failed, retrying or in flight.")
    uncertain = ledger.problems(engine, limit=None, states=("uncertain",))
    if uncertain:
        say((f"{len(uncertain)} uncertain", "yellow"), ": the server may have accepted these; "
            "they are never resent automatically. Look each Message-ID up in the relay's log, "
            "then run `newsletter deliveries resolve ID --sent` or `--requeue`:")
    for e in uncertain:
        say(f"  id {e.id}  {e.email}  edition {e.edition}  Message-ID {e.message_id or '(none)'}"
            f": {e.error or ''}", wrap=False)


@friendly
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
) -> None:
    """Serve the subscriber pages: one-click unsubscribe, preferences, sign-up, gallery.

    The links in every digest lead here, so NEWSLETTER_BASE_URL must be the public address of
    this server (put a TLS-terminating proxy in front of it). Sign-up confirmation emails go
    through the configured transport. The operator's preview gallery at /admin needs
    NEWSLETTER_ADMIN_PASSWORD. Ctrl-C stops.
    """
    import uvicorn  # only this command needs the web stack

    from newsletter.web import create_app

    settings = Settings()
    weak = weak_secret(settings)  # the pages take signed links from anybody on the internet
    if weak:
        raise ConfigError(f"NEWSLETTER_SECRET_KEY: {weak}")
    settings, engine = open_database()
    say(f"Serving on http://{host}:{port} (links point to {settings.base_url}); "
        f"mail goes to {settings.describe_delivery()}. Ctrl-C stops.", stderr=True)
    # No uvicorn access log: its lines would hold the links, each one a key to someone's
    # subscription, in a file that is kept, copied and shared. The app logs each request by
    # its route's pattern instead (newsletter.web.access).
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    uvicorn.run(create_app(settings, engine), host=host, port=port, proxy_headers=True,
                server_header=False, access_log=False, log_level="info")
