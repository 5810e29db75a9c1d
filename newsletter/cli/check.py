"""`check`: is this configuration fit to mail real people (``newsletter.preflight``)?"""

from __future__ import annotations

import asyncio

import typer

from newsletter.cli.common import err, friendly, out, print_findings
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
        out.print(f"Mail goes to the {settings.describe_delivery()}: nothing above stops it. "
                  "Over SMTP, " + ("`send` would refuse." if refused else "`send` would go."),
                  highlight=False)
        return
    if refused:
        err.print("Not ready: `send` refuses to mail anyone over SMTP until the settings "
                  "marked refused are changed.", highlight=False)
        raise typer.Exit(1)
    if connect:
        _connect(settings)
    out.print(f"Ready: mail goes to {settings.describe_delivery()}.", highlight=False)


def _connect(settings: Settings) -> None:
    async def smtp() -> None:
        async with make_transport(settings) as transport:
            await transport.check()

    try:
        asyncio.run(smtp())
        out.print(f"Logged in to {settings.describe_delivery()}.", highlight=False)
        mailbox = open_mailbox(settings)
        if mailbox is not None:
            with mailbox:
                out.print(f"Opened the mailbox of returns, {mailbox.describe()}.",
                          highlight=False)
    except ConfigError as exc:
        err.print(f"refused {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
