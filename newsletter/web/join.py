"""Sign-up with double opt-in: the form, and the confirmation link that makes it count.

Opening the link only asks (mail scanners and link previews fetch links); its one button posts
back to the same URL, and that POST is what activates the address.
"""

from __future__ import annotations

import logging

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from newsletter.delivery.transport import make_transport
from newsletter.models import Outgoing
from newsletter.signup import (
    CONFIRM_MAX_AGE,
    RESEND_AFTER,
    FormError,
    already_subscribed_message,
    confirmation_message,
    normalize_address,
    parse_topics,
)
from newsletter.store.subscribers import (
    confirm_signup,
    request_signup,
    requested_topics,
    subscriber_status,
)
from newsletter.web.links import Checked, check
from newsletter.web.pages import checked_form, form_expired, invalid_link, message, render, web
from newsletter.web.state import Web, schedule

log = logging.getLogger("newsletter.web")

# Shown as suggestions under the topics field: the kinds of phrases the ranker understands.
EXAMPLES = ("graph neural networks", "PINNs", "diffusion models", "LLM agents",
            "neural radiance fields", "reinforcement learning")


async def signup_page(request: Request) -> Response:
    return render(request, "signup.html", email="", topics="", errors=[], examples=EXAMPLES,
                  robots="index")


async def subscribe(request: Request) -> Response:
    """Record the request and answer "check your inbox", the same words whether the address is
    new, pending or already subscribed; the email itself goes out after the response, so the
    answer's timing does not tell either."""
    form = await checked_form(request)
    if form is None:
        return form_expired(request)
    raw_email, raw_topics = str(form.get("email", "")), str(form.get("topics", ""))
    try:
        email = normalize_address(raw_email)
        topics = parse_topics(raw_topics)
    except FormError as exc:
        return render(request, "signup.html", status=422, email=raw_email, topics=raw_topics,
                      errors=[str(exc)], examples=EXAMPLES)
    state = web(request)
    status, may_send = await state.run(lambda: request_signup(
        state.engine, email, topics, resend_after=RESEND_AFTER))
    response = render(request, "signup_sent.html", email=email,
                      minutes=int(RESEND_AFTER.total_seconds() // 60))
    if may_send:
        now = state.now()
        if status == "active":
            outgoing = already_subscribed_message(
                state.settings, state.pages, email=email,
                preferences_url=state.url("preferences", email), now=now)
        else:
            outgoing = confirmation_message(
                state.settings, state.pages, email=email, topics=topics,
                confirm_url=state.url("confirm", email), now=now)
        response.background = BackgroundTask(deliver, state, outgoing)
    return response


async def deliver(state: Web, outgoing: Outgoing) -> None:
    """Through the configured transport (SMTP, or the outbox folder), like every digest."""
    try:
        async with make_transport(state.settings) as transport:
            await transport.send(outgoing)
    except Exception as exc:  # after the response: nobody to tell but the log
        log.warning("sign-up email to %s not sent: %s", outgoing.recipient, exc)


def _checked(request: Request) -> Checked:
    return check(web(request).secret, "confirm", request.path_params["token"], CONFIRM_MAX_AGE)


async def confirm_page(request: Request) -> Response:
    """GET changes nothing: it shows what would be confirmed, and one button."""
    checked = _checked(request)
    if checked.email is None:
        return invalid_link(request, "Confirmation", expired=checked.expired)
    state = web(request)
    topics = await state.run(requested_topics, state.engine, checked.email)
    if topics is None:
        return await _not_waiting(request, state, checked.email)
    return render(request, "confirm.html", email=checked.email, topics=topics)


async def confirm(request: Request) -> Response:
    """The confirmation page's button: activates the address with the topics it asked for."""
    checked = _checked(request)
    if checked.email is None:
        return invalid_link(request, "Confirmation", expired=checked.expired)
    if await checked_form(request) is None:
        return form_expired(request)
    state, email = web(request), checked.email
    subscriber = await state.run(confirm_signup, state.engine, email)
    if subscriber is None:
        return await _not_waiting(request, state, email)
    return render(request, "confirmed.html", subscriber=subscriber,
                  schedule=schedule(subscriber),
                  preferences_url=state.url("preferences", email))


async def _not_waiting(request: Request, state: Web, email: str) -> Response:
    """A valid link whose sign-up is gone: confirmed already, or replaced by a newer link."""
    if await state.run(subscriber_status, state.engine, email) == "active":
        return message(request, "You are already subscribed",
                       "This address is confirmed and on the list. You can change your "
                       "topics, or how often the digest comes, at any time.",
                       action=(state.url("preferences", email), "Change your preferences"))
    return message(request, "This link was already used",
                   "This confirmation link was replaced by a newer one, or has been used "
                   "up. Sign up again and we will send you a fresh one.", status=400,
                   tone="warning", action=("/", "Sign up"))
