"""`check`: is this configuration fit to mail real people (``newsletter.preflight``)?"""

from __future__ import annotations

import asyncio

import typer

from newsletter.cli.common import friendly, print_findings, say
from newsletter.delivery.transport import make_transport
from newsletter.errors import ConfigError
from newsletter.preflight import preflight
from newsletter.returns.mailboxes import open_mailbox
from newsletter.settings import Settings


@friendly
def check(
    connect: bool = typer.Option(
        True, "--connect/--no-connect",
        help="Also log in to the SMTP relay and to the mailbox of returns."),
) -> None:
    """Check the settings before mail goes to real people; exit 1 if `send` would refuse.

    Refuses, naming the setting to change: a base URL that is not https or that readers cannot
    reach (localhost), a From, List-Id or other address at a reserved domain (example.org), no
    NEWSLETTER_SECRET_KEY, templates that cannot render, a DKIM key that cannot sign. Warns: a
    relay without TLS, no DKIM signature from here, no mailbox of returns. Then logs in to the
    relay and opens the mailbox of returns. `send`, `run` and `worker` run the same checks
    before their first SMTP message (not for the outbox).
    """
    settings = Settings()
    findings = preflight(settings)
    print_findings(findings)
    refused = any(f.level == "refuse" for f in findings)
    if not settings.smtp_host:
        say(f"Mail goes to the {settings.describe_delivery()}: nothing above stops it. "
            "Over SMTP, " + ("`send` would refuse." if refused else "`send` would go."))
        return
    if refused:
        say("Not ready: `send` refuses to mail anyone over SMTP until the settings marked "
            "refused are changed.", stderr=True)
        raise typer.Exit(1)
    if connect:
        _connect(settings)
    say(f"Ready: mail goes to {settings.describe_delivery()}.")


def _connect(settings: Settings) -> None:
    async def smtp() -> None:
        async with make_transport(settings) as transport:
            await transport.check()

    try:
        asyncio.run(smtp())
        say(f"Logged in to {settings.describe_delivery()}.")
        mailbox = open_mailbox(settings)
        if mailbox is not None:
            with mailbox:
                say(f"Opened the mailbox of returns, {mailbox.describe()}.")
    except ConfigError as exc:
        say(("refused ", "red"), str(exc), stderr=True, wrap=False)
        raise typer.Exit(1) from None
