"""The two links in every digest: unsubscribe (RFC 8058 one-click) and preferences, and
"sign out every link".

Each page acts only on the owner of its own link, and each link only for its own purpose: a
preferences link cannot unsubscribe, an unsubscribe link cannot change topics. An unsubscribe
link keeps working for a while after its owner signed their links out (``tokens.py``); such a
link unsubscribes but shows no address.
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
from newsletter.compose.tokens import UNSUBSCRIBE_GRACE
from newsletter.dispatch.deliver import Composed
from newsletter.models import Subscriber
from newsletter.signup import FormError, parse_topics
from newsletter.store.subscribers import (
    load_subscribers,
    sign_out_links,
    unsubscribe,
    update_preferences,
)
from newsletter.subscriber_entry import WEEKDAYS, Entry
from newsletter.web import reading
from newsletter.web.links import Owner, owner
from newsletter.web.pages import (
    Refused,
    checked_form,
    field,
    invalid_link,
    message,
    read_form,
    render,
    web,
)
from newsletter.web.security import CSRF_FIELD, csrf_ok
from newsletter.web.state import schedule

ONE_CLICK = ("List-Unsubscribe", "One-Click")  # RFC 8058's POST body, as mail providers send it


# -- unsubscribe ------------------------------------------------------------------------------

async def unsubscribe_page(request: Request) -> Response:
    """GET never unsubscribes (link scanners and previews fetch links): it asks, one button."""
    found = await owner(request, "unsubscribe")
    if found is None:
        return invalid_link(request, "Unsubscribe")
    email = found.email if found.current else None
    if found.status == "unsubscribed":
        return _unsubscribed(request, found, already=True)
    return render(request, "unsubscribe.html", email=email, one_click=ONE_CLICK)


async def unsubscribe_now(request: Request) -> Response:
    """The RFC 8058 one-click POST (no cookie, no CSRF field: the link is the proof) or the
    confirmation page's button. Unsubscribes at once and answers 200, no redirect."""
    found = await owner(request, "unsubscribe")
    if found is None:
        return invalid_link(request, "Unsubscribe")
    form = await read_form(request)
    state = web(request)
    one_click = form.get(ONE_CLICK[0]) == ONE_CLICK[1]
    if not one_click and not csrf_ok(request, state.secret, state.settings.base_url,
                                     form.get(CSRF_FIELD)):
        await checked_form(request)  # raises the "try again" page
    await state.run(unsubscribe, state.engine, found.email)
    return _unsubscribed(request, found, already=False)


def _unsubscribed(request: Request, found: Owner, *, already: bool) -> Response:
    # The "sign out every link" button posts to /signout with this same link.
    return render(request, "unsubscribed.html", email=found.email if found.current else None,
                  already=already, signout=f"/signout/unsubscribe/{request.path_params['token']}",
                  signed_out=False)


async def sign_out(request: Request) -> Response:
    """"Sign out every link": a new key for the person's links. Their preferences link (and any
    copy of it) stops working now; their unsubscribe links go on unsubscribing for
    ``UNSUBSCRIBE_GRACE``; their next email carries new links."""
    purpose = request.path_params["purpose"]
    if purpose not in ("preferences", "unsubscribe"):
        raise Refused(404, "Page not found", "There is nothing at this address.")
    found = await owner(request, purpose)
    if found is None or not found.current:
        return invalid_link(request, purpose.capitalize())
    await checked_form(request)
    state = web(request)
    await state.run(lambda: sign_out_links(state.engine, found.subscriber_id,
                                           keep_for=UNSUBSCRIBE_GRACE))
    return message(request, "Every link is signed out",
                   "The links in the emails you have had no longer open your preferences, "
                   "wherever they were copied or forwarded. Your next email carries new ones. "
                   "To change your preferences before then, enter your address on the sign-up "
                   "page: we will email you a fresh link.", tone="success",
                   action=("/", "Go to the sign-up page"))


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
    """The submitted preferences, checked by the same rules as the subscribers/ files; a
    FormErrors names each field that is wrong. The email, id, status, origin and link keys come
    from the link's subscriber, never from the form."""
    values = {key: field(form, key).strip() for key in form_values(current)}
    errors: dict[str, str] = {}
    topics: dict[str, list[str]] = {}
    for name in ("topics", "exclude"):
        try:
            topics[name] = parse_topics(values[name], field=name, required=name == "topics")
        except FormError as exc:
            errors[exc.field] = str(exc)
    try:
        entry = Entry.model_validate({
            "email": current.email, "name": values["name"],
            "topics": topics.get("topics") or ["-"], "exclude": topics.get("exclude", []),
            "max_papers": values["max_papers"] or "0", "frequency": values["frequency"],
            "weekday": values["weekday"] or "monday", "send_time": values["send_time"],
            "timezone": values["timezone"]})
    except ValidationError as exc:
        errors = {**_explain(exc), **errors}
    if errors:
        raise FormErrors(errors)
    chosen = entry.to_subscriber(current.origin)
    return replace(chosen, id=current.id, status=current.status, email=current.email,
                   link_id=current.link_id, link_key=current.link_key)


class FormErrors(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


# What each field must be, in the words the page uses (pydantic's own wording is for
# programmers: "Input should be less than or equal to 50").
_FIELD_ERRORS = {
    "max_papers": "Papers per email: a number from 1 to 50.",
    "frequency": "How often: choose daily or weekly.",
    "weekday": "Day: choose a day of the week.",
    "send_time": "Time: a time of day such as 07:30.",
    "timezone": "Time zone: choose one from the list.",
}


def _explain(error: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for item in error.errors():
        name = str(item["loc"][0]) if item["loc"] else ""
        if name in _FIELD_ERRORS:
            errors.setdefault(name, _FIELD_ERRORS[name])
        elif name == "name":
            text = item["msg"].removeprefix("Value error, ").removeprefix("name ")
            errors.setdefault("name", f"Your name {text}.")
        elif name in ("topics", "exclude"):
            errors.setdefault(name, "Each topic must be 1 to 80 characters.")
    return errors


def preview(composed: Composed | None) -> dict[str, Any] | None:
    """What the page shows of the next digest: its subject line, its papers by section, and the
    topics that found nothing (their section is missing)."""
    if composed is None:
        return None
    numbers = iter(range(1, len(composed.digest.items) + 1))
    sections = [{"topic": TRENDING_HEADING if s.trending else one_line(s.topic),
                 "papers": [paper_view(next(numbers), item) for item in s.items]}
                for s in composed.digest.sections if s.items]
    found = {item.topic for item in composed.digest.items}
    quiet = [one_line(t) for t in composed.digest.subscriber.topics if t not in found]
    return {"subject": composed.rendered.subject, "preheader": composed.rendered.preheader,
            "count": len(composed.digest.items), "sections": sections, "quiet": quiet}


async def preferences(request: Request) -> Response:
    found = await owner(request, "preferences")
    if found is None:
        return invalid_link(request, "Preferences")
    state = web(request)
    subs = await state.run(lambda: load_subscribers(state.engine, statuses=None,
                                                    ids=[found.subscriber_id]))
    if not subs:
        return invalid_link(request, "Preferences")
    current = draft = subs[0]
    values, errors, status = form_values(current), {}, 200
    notice = reading.notice(request.query_params)
    if request.query_params.get("saved") == "1":
        notice = "Saved. Your next digest follows these preferences."
    if request.method == "POST":
        form = await checked_form(request)
        try:
            draft = parse_preferences(form, current)
        except FormErrors as exc:
            values = {key: field(form, key)[:4000] for key in values}
            errors, status = exc.errors, 422
        else:
            if form.get("action") == "save":
                await state.run(update_preferences, state.engine, draft)
                # See Other: a reload of the result page does not post the form again.
                return RedirectResponse(f"{request.url.path}?saved=1", status_code=303)
            values, notice = form_values(draft), "Preview of your changes: not saved yet."
    return await show_preferences(request, current, draft, values=values, errors=errors,
                                  notice=notice, status=status)


async def show_preferences(request: Request, current: Subscriber,
                           draft: Subscriber | None = None, *,
                           values: dict[str, str] | None = None,
                           errors: dict[str, str] | None = None, notice: str | None = None,
                           status: int = 200, library_text: str = "",
                           action: str | None = None) -> Response:
    """The preferences page of ``current`` (``draft``: unsaved changes, previewed); also shown
    by the library form (``reading.py``) with its problems in ``errors``."""
    state = web(request)
    draft = draft or current
    with state.previews.entered() as room:  # busy: the page without its preview
        composed = await state.run(state.next_digest, draft) if room else None
    told = await state.run(reading.context, state, current.id)
    page = action or request.url.path
    token = page.rsplit("/", 1)[-1]
    return render(request, "preferences.html", status=status, subscriber=current,
                  values=values or form_values(current), errors=errors or {}, notice=notice,
                  preview=preview(composed), preview_busy=not room, schedule=schedule(draft),
                  timezones=timezones(), weekdays=WEEKDAYS, action=page,
                  unsubscribed=current.status != "active",
                  unsubscribe_url=state.link("unsubscribe", current).removeprefix(
                      state.settings.base_url),
                  signout=f"/signout/preferences/{token}", library_text=library_text,
                  title_of=reading.title_of, **told)
