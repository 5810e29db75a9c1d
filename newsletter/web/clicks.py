"""Click tracking (NEWSLETTER_CLICK_TRACKING, off by default).

When on, a digest links each paper as ``<base>/click/<token>``: a link of the reader's (see
``compose/tokens.py``) about one paper, never naming a destination. The redirect goes to the
paper's own URL from the catalog (as the digest would have linked it), so the endpoint cannot
be turned into an open redirect, and each reader counts once per paper toward "trending".
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from newsletter.compose.paperview import paper_url
from newsletter.compose.tokens import click_url
from newsletter.store.catalog import load_paper, record_click
from newsletter.web.links import owner
from newsletter.web.pages import message, web

__all__ = ["click", "click_url"]


async def click(request: Request) -> Response:
    state = web(request)
    found = await owner(request, "click")
    if found is None or found.item is None:
        return message(request, "This link does not work",
                       "It is incomplete or was changed. Open it again from the email.",
                       status=400, tone="warning")
    paper = await state.run(load_paper, state.engine, found.item)
    if paper is None:
        return message(request, "This paper is gone", "It is no longer in our catalog.",
                       status=404)
    # Links already sent keep working when tracking is turned off; they just count nothing.
    if state.settings.click_tracking:
        await state.run(record_click, state.engine, found.subscriber_id, found.item)
    return RedirectResponse(paper_url(paper), status_code=302)
