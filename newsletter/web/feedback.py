""""More like this" and "Less like this": the two links beside each paper in a digest.

``/more/<token>`` and ``/less/<token>``: a link of the reader's about one paper (``compose/
tokens.py``), its choice named by its purpose, so a "more" link can never record "less".
Opening one changes nothing (mail scanners and link previews fetch every link in a message): the
page names the paper and the choice and records it with one button (a POST, CSRF-checked as
every form here). The result page offers Undo, another POST. What a reader chose is theirs: shown
only on their own pages, never logged (the access log names the route, never the path).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from newsletter.compose.paperview import one_line, paper_url
from newsletter.models import Paper, Subscriber
from newsletter.store.catalog import load_paper
from newsletter.store.readers import clear_feedback, feedback_list, set_feedback
from newsletter.store.subscribers import load_subscribers
from newsletter.web.links import Owner, owner
from newsletter.web.pages import checked_form, field, invalid_link, message, render, web
from newsletter.web.state import Web

Endpoint = Callable[[Request], Awaitable[Response]]

# What each choice does, in the reader's words.
CHOICES = {
    "more": ("More like this", "Papers like this one will come higher in your digests."),
    "less": ("Less like this", ("This paper will not be sent again, and papers like it will "
                                "come lower in your digests.")),
}


def page(verdict: str) -> Endpoint:
    """GET: the paper and the choice, and one button. Records nothing."""
    async def show(request: Request) -> Response:
        looked = await _look_up(request, verdict)
        if isinstance(looked, Response):
            return looked
        found, paper = looked
        state = web(request)
        chosen = await state.run(_current_choice, state, found)
        return _answer(request, verdict, paper, done=chosen == verdict)
    return show


def record(verdict: str) -> Endpoint:
    """POST: the button (records the choice) or Undo (``action=undo``: takes it back)."""
    async def act(request: Request) -> Response:
        looked = await _look_up(request, verdict)
        if isinstance(looked, Response):
            return looked
        found, paper = looked
        form = await checked_form(request)
        state = web(request)
        undo = field(form, "action") == "undo"
        if undo:
            await state.run(clear_feedback, state.engine, found.subscriber_id, found.item)
        else:
            await state.run(lambda: set_feedback(state.engine, found.subscriber_id,
                                                 found.item or "", verdict, state.now()))
        subscriber = await state.run(_subscriber, state, found.subscriber_id)
        preferences = (state.link("preferences", subscriber).removeprefix(
            state.settings.base_url) if subscriber is not None else None)
        return _answer(request, verdict, paper, done=not undo, undone=undo,
                       preferences=preferences)
    return act


def _answer(request: Request, verdict: str, paper: Paper, *, done: bool, undone: bool = False,
            preferences: str | None = None) -> Response:
    """The page of one paper and one choice: the button, or what was recorded (or undone)."""
    return render(request, "feedback.html", verdict=verdict, choice=CHOICES[verdict],
                  title=one_line(paper.title), url=paper_url(paper), done=done, undone=undone,
                  preferences=preferences)


async def _look_up(request: Request, verdict: str) -> tuple[Owner, Paper] | Response:
    """The link's reader and paper, or the page that says why there are none."""
    found = await owner(request, verdict)
    if found is None or found.item is None:
        return invalid_link(request, "Feedback")
    refused = _refusal(request, found)
    if refused is not None:
        return refused
    state = web(request)
    paper = await state.run(load_paper, state.engine, found.item)
    return _gone(request) if paper is None else (found, paper)


def _refusal(request: Request, found: Owner) -> Response | None:
    # An unsubscribed reader's feedback was deleted with their subscription: nothing is stored
    # for them again until they subscribe again.
    if found.status != "active":
        return message(request, "You are not subscribed",
                       "This address gets no digests now, so nothing was recorded. Subscribe "
                       "again and the links in your next digest will work.", status=409,
                       tone="warning", action=("/", "Subscribe again"))
    return None


def _gone(request: Request) -> Response:
    return message(request, "This paper is gone",
                   "It is no longer in our catalog, so nothing was recorded.", status=404)


def _current_choice(state: Web, found: Owner) -> str | None:
    entries = feedback_list(state.engine, found.subscriber_id)
    return next((e.verdict for e in entries if e.paper_id == found.item), None)


def _subscriber(state: Web, subscriber_id: int) -> Subscriber | None:
    found = load_subscribers(state.engine, statuses=None, ids=[subscriber_id])
    return found[0] if found else None
