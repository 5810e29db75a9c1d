"""The ``newsletter`` command: a thin driver over the pipeline stages, one module per group
of commands (``sending``, ``catalog``, ``subscribers``, ``review``, ``deliveries``, ``db``)."""

from __future__ import annotations

import typer

from newsletter.cli import catalog, check, returns, review, sending
from newsletter.cli.db import db_app
from newsletter.cli.deliveries import deliveries_app
from newsletter.cli.subscribers import subscribers_app

app = typer.Typer(
    help="Trending research papers in your inbox: ingest a catalog, pick papers for each "
         "subscriber's topics, and send personalized digests over SMTP (or to an outbox "
         "folder). Settings come from NEWSLETTER_* variables or a .env file; see .env.example.",
    no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
)
for command in (sending.send, sending.run, sending.worker, review.preview, catalog.ingest,
                catalog.recommend, review.serve, review.status, check.check,
                returns.bounces):
    app.command()(command)
app.add_typer(subscribers_app, name="subscribers")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(db_app, name="db")
