"""Rendering pages: the CSRF cookie and field, the shared context, the plain message page every
refusal uses, and reading a submitted form."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse

from newsletter.web.security import CSRF_COOKIE, CSRF_FIELD, csrf_ok, csrf_value, new_csrf_cookie
from newsletter.web.state import Web

MAX_FORM_BYTES = 64 * 1024  # the largest real form (preferences) is a few KB
# ...but for the library: a BibTeX export with abstracts is ~1.5 KB a paper
MAX_LIBRARY_BYTES = 2 * 1024 * 1024


def web(request: Request) -> Web:
    return request.app.state.web  # type: ignore[no-any-return]


class Refused(HTTPException):
    """A request turned away; ``app.http_error`` shows ``title`` and ``text`` on the plain
    message page (nothing from the request itself)."""

    def __init__(self, status: int, title: str, text: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, text, headers)
        self.title = title


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
            tone: str = "info", action: tuple[str, str] | None = None,
            headers: dict[str, str] | None = None) -> HTMLResponse:
    """A short page that says one thing: a result, or why a link or form was refused. It
    shows nothing from the request, so a refusal reveals nothing about anybody."""
    return render(request, "message.html", status=status, title=title, text=text, tone=tone,
                  action=action, headers=headers)


def invalid_link(request: Request, what: str, *, expired: bool = False) -> HTMLResponse:
    if expired:
        return message(request, "This link has expired",
                       f"{what} links stop working after a while. Sign up again and we will "
                       "send you a fresh one.", status=400, tone="warning",
                       action=("/", "Sign up again"))
    return message(request, "This link does not work",
                   f"This {what.lower()} link is incomplete, was changed, or was signed out. "
                   "Open the link in your newest email from us, or copy the whole address "
                   "into your browser.", status=400, tone="warning")


async def read_form(request: Request, *, max_files: int = 0) -> FormData:
    """The submitted form; Refused (400) when it cannot be parsed. The body limit (413) is
    enforced as the bytes arrive, by ``middleware.BodyLimit``. Only the library form takes a
    file (``max_files=1``)."""
    try:
        # Starlette's own cap on one field (1 MB) would cut the library's 2 MB paste with a
        # misleading "could not be read": the body limit is what bounds a field.
        return await request.form(max_files=max_files, max_fields=100,
                                  max_part_size=MAX_LIBRARY_BYTES)
    except HTTPException as exc:
        if exc.status_code != 400:
            raise
        raise Refused(400, "That form could not be read",
                      "Nothing was changed. Reload the page and submit the form from it "
                      "again.") from None


async def checked_form(request: Request, *, max_files: int = 0) -> FormData:
    """The submitted form, when it carries this browser's CSRF field and came from our site;
    Refused (403) otherwise."""
    form = await read_form(request, max_files=max_files)
    state = web(request)
    if not csrf_ok(request, state.secret, state.settings.base_url, form.get(CSRF_FIELD)):
        raise Refused(403, "Please try that again",
                      "This page was open too long, or the form came from another site, so "
                      "nothing was changed. Reload the page and submit it again.")
    return form


def field(form: FormData, name: str) -> str:
    """One text field as a string ("" when absent)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""
