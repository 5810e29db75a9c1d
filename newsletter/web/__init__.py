"""`newsletter serve`: the pages people reach from the links in their digests.

One-click unsubscribe (RFC 8058), preferences with a preview of the next digest and what the
reader told us (marked papers, their own library), "More like this" / "Less like this" beside
every paper, sign-up with double opt-in, the operator's preview gallery, and optional click
tracking. Server-rendered (Jinja2, templates/web/), no JavaScript.
"""

from newsletter.web.app import create_app
from newsletter.web.clicks import click_url

__all__ = ["click_url", "create_app"]
