"""Sign-up with double opt-in: the form, and the confirmation link that makes it count.

Opening the link only asks (mail scanners and link previews fetch links); its one button posts
back to the same URL, and that POST is what activates the address. Each link stands for one
request (``store/signups.py``): nobody can change what another person's link confirms, and a
link that was used shows nothing about anybody.
"""

from __future__ import annotations

import logging

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from newsletter.compose import tokens
from newsletter.delivery.transport import make_transport
from newsletter.models import Outgoing
from newsletter.signup import (
    CONFIRM_MAX_AGE,
    FormError,
    already_subscribed_message,
    confirmation_message,
    normalize_address,
    parse_topics,
)
from newsletter.store.signups import Pending, confirm_signup, pending_signup, request_signup
from newsletter.store.subscribers import load_subscribers
from newsletter.web.pages import Refused, checked_form, field, message, render, web
from newsletter.web.security import client_key
from newsletter.web.state import Web, schedule

log = logging.getLogger("newsletter.web")

# Shown as suggestions under the topics field: the kinds of phrases the ranker understands.
EXAMPLES = ("graph neural networks", "PINNs", "diffusion models", "LLM agents",
            "neural radiance fields", "reinforcement learning")


async def signup_page(request: Request) -> Response:
    return render(request, "signup.html", email="", topics="", errors={}, examples=EXAMPLES,
                  robots="index")


async def subscribe(request: Request) -> Response:
    """Record the request and answer "check your inbox", the same words whether the address is
    new, pending or already subscribed; the email itself goes out after the response, so the
    answer's timing does not tell either."""
    form = await checked_form(request)
    raw_email, raw_topics = field(form, "email"), field(form, "topics")
    errors: dict[str, str] = {}
    email, topics = "", []
    try:
        email = normalize_address(raw_email)
    except FormError as exc:
        errors[exc.field] = str(exc)
    try:
        topics = parse_topics(raw_topics)
    except FormError as exc:
        errors[exc.field] = str(exc)
    if errors:
        return render(request, "signup.html", status=422, email=raw_email[:254],
                      topics=raw_topics[:4000], errors=errors, examples=EXAMPLES)
    state = web(request)
    token, token_hash = tokens.one_time_token()
    verdict = await state.run(lambda: request_signup(
        state.engine, email, topics, client=client_key(state.secret, request),
        token_hash=token_hash, limits=state.signup_limits, now=state.now()))
    if verdict.refused is not None:
        raise Refused(429, "Too many sign-ups", (
            "Too many sign-ups came from your network in the last hour. Please try again "
            "later." if verdict.refused == "client" else
            "We are getting more sign-ups than usual and have paused for a while. Please try "
            "again in an hour."), headers={"retry-after": "3600"})
    minutes = int(state.signup_limits.address_gap.total_seconds() // 60)
    response = render(request, "signup_sent.html", email=email, minutes=minutes)
    if verdict.send:
        response.background = BackgroundTask(deliver, state, await state.run(
            _email, state, email, verdict.status, token))
    return response


def _email(state: Web, email: str, status: str | None, token: str) -> Outgoing:
    now = state.now()
    if status == "active":
        subscriber = load_subscribers(state.engine, statuses=None, email=email)[0]
        return already_subscribed_message(state.settings, state.pages, email=email,
                                          preferences_url=state.link("preferences", subscriber),
                                          now=now)
    return confirmation_message(state.settings, state.pages, email=email,
                                confirm_url=f"{state.settings.base_url}/confirm/{token}",
                                now=now)


async def deliver(state: Web, outgoing: Outgoing) -> None:
    """Through the configured transport (SMTP, or the outbox folder), like every digest."""
    try:
        async with make_transport(state.settings) as transport:
            await transport.send(outgoing)
    except Exception as exc:  # after the response: nobody to tell but the log
        log.warning("sign-up email to %s not sent: %s", outgoing.recipient, exc)


async def _pending(request: Request) -> Pending | None:
    """The request the link in this URL stands for, while it waits and is young enough."""
    state = web(request)
    token = request.path_params["token"]
    if len(token) > 100:
        return None
    found = await state.run(pending_signup, state.engine, tokens.token_hash(token))
    if found is None or state.now() - found.requested_at > CONFIRM_MAX_AGE:
        return None
    return found


async def confirm_page(request: Request) -> Response:
    """GET changes nothing: it shows what would be confirmed, and one button."""
    pending = await _pending(request)
    if pending is None:
        return _used_or_unknown(request)
    return render(request, "confirm.html", email=pending.email, topics=pending.topics)


async def confirm(request: Request) -> Response:
    """The confirmation page's button: activates the address with the topics it asked for."""
    if await _pending(request) is None:
        return _used_or_unknown(request)
    await checked_form(request)
    state = web(request)
    token_hash = tokens.token_hash(request.path_params["token"])
    subscriber = await state.run(confirm_signup, state.engine, token_hash, state.now())
    if subscriber is None:  # used a moment ago, by another tab
        return _used_or_unknown(request)
    return render(request, "confirmed.html", subscriber=subscriber,
                  schedule=schedule(subscriber),
                  preferences_url=state.link("preferences", subscriber))


def _used_or_unknown(request: Request) -> Response:
    """A link that was used, expired, or never ours: the same page, naming nobody, linking to
    nothing of anybody's (whoever holds an old email must not get a way in from it)."""
    return message(request, "This link was already used, or has expired",
                   "If you confirmed your subscription, it is active: every digest has links "
                   "to change it. Otherwise, sign up again and we will send you a fresh link.",
                   status=400, tone="warning", action=("/", "Sign up"))

