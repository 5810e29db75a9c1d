"""The operator's preview gallery: every active subscriber's next digest, as `send` would send
it (HTML and text), behind NEWSLETTER_ADMIN_PASSWORD. Read-only.

Signing in is throttled (``throttle.py``: one guess checked at a time, slower after each, a
lockout per client and for everybody) and opens a session kept on the server
(``store/sessions.py``), which signing out ends."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from newsletter.compose import tokens
from newsletter.models import Subscriber
from newsletter.store.sessions import close_session, open_session, session_valid
from newsletter.store.subscribers import load_subscribers
from newsletter.web.pages import Refused, checked_form, message, render, web
from newsletter.web.security import (
    ADMIN_COOKIE,
    ADMIN_MAX_AGE,
    client_network,
    password_fingerprint,
    password_ok,
)
from newsletter.web.state import schedule

PER_PAGE = 20
# The email is shown in an iframe, sandboxed: no script, no form, no navigation of our page.
EMAIL_CSP = ("sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
             "style-src 'unsafe-inline'; img-src https: data:; frame-ancestors 'self'")
GALLERY_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "
               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def _not_found() -> Refused:
    # Without a password there is no gallery: a plain 404, naming no setting to the public.
    return Refused(404, "Page not found", "There is nothing at this address. The links in "
                                          "our emails lead to the right pages.")


async def _gate(request: Request) -> Response | None:
    """None when the operator is signed in; else the page to show instead."""
    state = web(request)
    if not state.admin_password:
        raise _not_found()
    cookie = request.cookies.get(ADMIN_COOKIE, "")
    if cookie and len(cookie) <= 100 and await state.run(
            session_valid, state.engine, tokens.token_hash(cookie),
            password_fingerprint(state.secret, state.admin_password)):
        return None
    return render(request, "admin_login.html", status=401, error=None)


async def login(request: Request) -> Response:
    state = web(request)
    password = state.admin_password
    if not password:
        raise _not_found()
    form = await checked_form(request)
    outcome, wait = await state.login_throttle.attempt(
        client_network(request), lambda: password_ok(form.get("password"), password))
    if outcome == "locked":
        minutes = max(1, math.ceil(wait / 60))
        return render(request, "admin_login.html", status=429,
                      headers={"retry-after": str(math.ceil(wait))},
                      error=f"Too many wrong passwords. Try again in {minutes} minute"
                            f"{'s' if minutes != 1 else ''}.")
    if outcome == "wrong":
        return render(request, "admin_login.html", status=401,
                      error="That password is not right.")
    token, token_hash = tokens.one_time_token()
    await state.run(lambda: open_session(state.engine, token_hash,
                                         password_fingerprint(state.secret, password),
                                         timedelta(seconds=ADMIN_MAX_AGE)))
    response = RedirectResponse("/admin", status_code=303)
    response.set_cookie(ADMIN_COOKIE, token, max_age=ADMIN_MAX_AGE, httponly=True,
                        samesite="strict", secure=state.secure_cookies, path="/admin")
    return response


async def logout(request: Request) -> Response:
    """Ends the session on the server: the cookie, wherever it was copied, opens nothing."""
    await checked_form(request)
    state = web(request)
    cookie = request.cookies.get(ADMIN_COOKIE, "")
    if cookie and len(cookie) <= 100:
        await state.run(close_session, state.engine, tokens.token_hash(cookie))
    response = RedirectResponse("/admin", status_code=303)
    response.delete_cookie(ADMIN_COOKIE, path="/admin")
    return response


def _card(state: Any, sub: Subscriber) -> dict[str, Any]:
    composed = state.next_digest(sub)
    return {"subscriber": sub, "schedule": schedule(sub),
            "subject": composed.rendered.subject if composed else None,
            "count": len(composed.digest.items) if composed else 0,
            "size": len(composed.message.data) if composed else 0}


async def gallery(request: Request) -> Response:
    if (refused := await _gate(request)) is not None:
        return refused
    state = web(request)
    page = request.query_params.get("page", "1")
    number = int(page) if page.isascii() and page.isdigit() and 0 < len(page) < 7 else 1
    number = max(number, 1)
    subs = await state.run(load_subscribers, state.engine)
    pages = max(1, -(-len(subs) // PER_PAGE))
    number = min(number, pages)
    shown = subs[(number - 1) * PER_PAGE:number * PER_PAGE]
    cards = await state.run(lambda: [_card(state, sub) for sub in shown])
    return render(request, "admin_gallery.html", cards=cards, page=number, pages=pages,
                  total=len(subs), headers={"content-security-policy": GALLERY_CSP})


async def _subscriber(request: Request) -> Subscriber | None:
    state = web(request)
    wanted = request.path_params["id"]
    subs = await state.run(load_subscribers, state.engine, None)
    return next((sub for sub in subs if sub.id == wanted), None)


async def digest(request: Request) -> Response:
    """One subscriber's next digest: the HTML part framed at its real width, the text part."""
    if (refused := await _gate(request)) is not None:
        return refused
    state = web(request)
    sub = await _subscriber(request)
    if sub is None:
        return message(request, "No such subscriber", "Go back to the gallery.", status=404,
                       action=("/admin", "All digests"))
    composed = await state.run(state.next_digest, sub)
    return render(request, "admin_digest.html", subscriber=sub, composed=composed,
                  schedule=schedule(sub),
                  headers={"content-security-policy": GALLERY_CSP,
                           "x-frame-options": "DENY"})


async def digest_part(request: Request) -> Response:
    """The raw HTML (for the frame) or text part, byte for byte what the email carries."""
    if (refused := await _gate(request)) is not None:
        return refused
    state = web(request)
    sub = await _subscriber(request)
    composed = await state.run(state.next_digest, sub) if sub else None
    if composed is None:
        return PlainTextResponse("Nothing to send to this subscriber now.", status_code=404)
    if request.url.path.endswith("/text"):
        return PlainTextResponse(composed.rendered.text)
    return Response(composed.rendered.html, media_type="text/html; charset=utf-8",
                    headers={"content-security-policy": EMAIL_CSP,
                             "x-frame-options": "SAMEORIGIN"})
