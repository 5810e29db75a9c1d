"""The two links in every digest: unsubscribe (RFC 8058 one-click) and preferences.

Each page acts only on the address inside its own signed token, and each token only for its
own purpose: a preferences link cannot unsubscribe, an unsubscribe link cannot change topics.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import replace
from functools import cache
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from newsletter.compose.paperview import one_line, paper_view
from newsletter.compose.render import TRENDING_HEADING
from newsletter.dispatch.deliver import Composed
from newsletter.models import Subscriber
from newsletter.signup import FormError, parse_topics
from newsletter.store.subscribers import (
    load_subscribers,
    subscriber_status,
    unsubscribe,
    update_preferences,
)
from newsletter.subscribers import WEEKDAYS, Entry
from newsletter.web.links import check
from newsletter.web.pages import (
    MAX_FORM_BYTES,
    checked_form,
    form_expired,
    invalid_link,
    message,
    render,
    web,
)
from newsletter.web.security import CSRF_FIELD, csrf_ok
from newsletter.web.state import schedule

ONE_CLICK = ("List-Unsubscribe", "One-Click")  # RFC 8058's POST body, as mail providers send it


# -- unsubscribe ------------------------------------------------------------------------------

async def unsubscribe_page(request: Request) -> Response:
    """GET never unsubscribes (link scanners and previews fetch links): it asks, one button."""
    state = web(request)
    email = check(state.secret, "unsubscribe", request.path_params["token"]).email
    if email is None:
        return invalid_link(request, "Unsubscribe")
    if await state.run(subscriber_status, state.engine, email) == "unsubscribed":
        return render(request, "unsubscribed.html", email=email, already=True)
    return render(request, "unsubscribe.html", email=email, one_click=ONE_CLICK)


async def unsubscribe_now(request: Request) -> Response:
    """The RFC 8058 one-click POST (no cookie, no CSRF field: the signed URL is the proof) or
    the confirmation page's button. Unsubscribes at once and answers 200, no redirect."""
    state = web(request)
    email = check(state.secret, "unsubscribe", request.path_params["token"]).email
    if email is None:
        return invalid_link(request, "Unsubscribe")
    length = request.headers.get("content-length", "0")
    if not length.isdigit() or int(length) > MAX_FORM_BYTES:
        return message(request, "Nothing was changed", "That request was not understood.",
                       status=400, tone="warning")
    form = await request.form(max_files=0, max_fields=20)
    one_click = form.get(ONE_CLICK[0]) == ONE_CLICK[1]
    if not one_click and not csrf_ok(request, state.secret, state.settings.base_url,
                                     form.get(CSRF_FIELD)):
        return form_expired(request)
    await state.run(unsubscribe, state.engine, email)
    return render(request, "unsubscribed.html", email=email, already=False)


# -- preferences ------------------------------------------------------------------------------

@cache
def timezones() -> tuple[str, ...]:
    """IANA zones a person would pick from: Region/City names, plus UTC."""
    legacy = ("Etc/", "SystemV/", "posix/", "right/", "US/", "Canada/", "Brazil/", "Mexico/",
              "Chile/")
    names = {z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith(legacy)}
    return ("UTC", *sorted(names))


def form_values(subscriber: Subscriber) -> dict[str, str]:
    return {"name": subscriber.name, "topics": "\n".join(subscriber.topics),
            "exclude": "\n".join(subscriber.exclude), "max_papers": str(subscriber.max_papers),
            "frequency": subscriber.frequency, "weekday": WEEKDAYS[subscriber.weekday],
            "send_time": subscriber.send_time.strftime("%H:%M"),
            "timezone": subscriber.timezone}


def parse_preferences(form: FormData, current: Subscriber) -> Subscriber:
    """The submitted preferences, checked by the same rules as the subscribers/ files.
    The email, id, status and origin come from the token's subscriber, never from the form."""
    values = {key: str(form.get(key, "")).strip() for key in form_values(current)}
    try:
        entry = Entry.model_validate({
            "email": current.email, "name": values["name"],
            "topics": parse_topics(values["topics"]),
            "exclude": parse_topics(values["exclude"], required=False),
            "max_papers": values["max_papers"] or "0", "frequency": values["frequency"],
            "weekday": values["weekday"] or "monday", "send_time": values["send_time"],
            "timezone": values["timezone"]})
    except ValidationError as exc:
        raise FormError(_explain(exc)) from None
    chosen = entry.to_subscriber(current.origin)
    return replace(chosen, id=current.id, status=current.status, email=current.email)


_FIELD_NAMES = {"name": "Name", "max_papers": "Papers per email", "frequency": "How often",
                "weekday": "Day", "send_time": "Time", "timezone": "Time zone",
                "topics": "Topics", "exclude": "Leave out"}


def _explain(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        field = _FIELD_NAMES.get(str(item["loc"][0]) if item["loc"] else "", "")
        text = item["msg"].removeprefix("Value error, ")
        parts.append(f"{field}: {text}" if field else text)
    return "; ".join(parts)


def preview(composed: Composed | None) -> dict[str, Any] | None:
    """What the page shows of the next digest: its subject line and its papers by section."""
    if composed is None:
        return None
    numbers = iter(range(1, len(composed.digest.items) + 1))
    sections = [{"topic": TRENDING_HEADING if s.trending else one_line(s.topic),
                 "papers": [paper_view(next(numbers), item) for item in s.items]}
                for s in composed.digest.sections if s.items]
    return {"subject": composed.rendered.subject, "preheader": composed.rendered.preheader,
            "count": len(composed.digest.items), "sections": sections}


async def preferences(request: Request) -> Response:
    state = web(request)
    token = request.path_params["token"]
    email = check(state.secret, "preferences", token).email
    if email is None:
        return invalid_link(request, "Preferences")
    found = await state.run(lambda: load_subscribers(state.engine, statuses=None,
                                                           email=email))
    if not found:
        return message(request, "No subscription here",
                       "This address is not on the list any more. You can subscribe again "
                       "in a minute.", status=404, action=("/", "Subscribe"))
    current = draft = found[0]
    values, errors, notice, status = form_values(current), [], None, 200
    if request.query_params.get("saved") == "1":
        notice = "Saved. Your next digest follows these preferences."
    if request.method == "POST":
        form = await checked_form(request)
        if form is None:
            return form_expired(request)
        try:
            draft = parse_preferences(form, current)
        except FormError as exc:
            values = {key: str(form.get(key, "")) for key in values}
            errors, status = [str(exc)], 422
        else:
            if form.get("action") == "save":
                await state.run(update_preferences, state.engine, draft)
                # See Other: a reload of the result page does not post the form again.
                return RedirectResponse(f"{request.url.path}?saved=1", status_code=303)
            values, notice = form_values(draft), "Preview of your changes: not saved yet."
    composed = await state.run(state.next_digest, draft)
    return render(request, "preferences.html", status=status, subscriber=current,
                  values=values, errors=errors, notice=notice, preview=preview(composed),
                  schedule=schedule(draft), timezones=timezones(),
                  weekdays=WEEKDAYS, action=request.url.path,
                  unsubscribed=current.status != "active")
