"""Rendering pages: the CSRF cookie and field, the shared context, and the plain message page
every refusal uses."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse

from newsletter.web.security import CSRF_COOKIE, CSRF_FIELD, csrf_ok, csrf_value, new_csrf_cookie
from newsletter.web.state import Web

MAX_FORM_BYTES = 64 * 1024  # the largest real form (preferences) is a few KB


def web(request: Request) -> Web:
    return request.app.state.web  # type: ignore[no-any-return]


def render(request: Request, template: str, *, status: int = 200,
           headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """The page, with a CSRF field for its forms; a browser without the cookie gets one."""
    state = web(request)
    cookie = request.cookies.get(CSRF_COOKIE)
    fresh = None
    if not cookie or len(cookie) > 100:
        cookie = fresh = new_csrf_cookie()
    context = {"site_name": state.settings.from_name, "csrf_field": CSRF_FIELD,
               "csrf": csrf_value(state.secret, cookie), "robots": "noindex", **context}
    body = state.pages.get_template(template).render(context)
    response = HTMLResponse(body, status_code=status, headers=headers)
    if fresh:
        response.set_cookie(CSRF_COOKIE, fresh, httponly=True, samesite="lax",
                            secure=state.secure_cookies, path="/")
    return response


def message(request: Request, title: str, text: str, *, status: int = 200,
            tone: str = "info", action: tuple[str, str] | None = None) -> HTMLResponse:
    """A short page that says one thing: a result, or why a link or form was refused. It
    shows nothing from the request, so a refusal reveals nothing about anybody."""
    return render(request, "message.html", status=status, title=title, text=text, tone=tone,
                  action=action)


def invalid_link(request: Request, what: str, *, expired: bool = False) -> HTMLResponse:
    if expired:
        return message(request, "This link has expired",
                       f"{what} links stop working after a while. Sign up again and we will "
                       "send you a fresh one.", status=400, tone="warning",
                       action=("/", "Sign up again"))
    return message(request, "This link does not work",
                   f"This {what.lower()} link is incomplete or was changed. Open it again from "
                   "the email we sent you, or copy the whole address into your browser.",
                   status=400, tone="warning")


async def checked_form(request: Request) -> FormData | None:
    """The submitted form, or None when it is too big or fails the CSRF check."""
    length = request.headers.get("content-length")
    if length and (not length.isdigit() or int(length) > MAX_FORM_BYTES):
        return None
    form = await request.form(max_files=0, max_fields=100)
    state = web(request)
    if not csrf_ok(request, state.secret, state.settings.base_url, form.get(CSRF_FIELD)):
        return None
    return form


def form_expired(request: Request) -> HTMLResponse:
    return message(request, "Please try that again",
                   "This form was open too long or came from another site, so nothing was "
                   "changed. Reload the page and submit it again.", status=403, tone="warning")
