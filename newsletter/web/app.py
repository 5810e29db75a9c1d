"""The ASGI application: routes, error pages, and the headers every response carries."""

from __future__ import annotations

import logging
import traceback
from functools import cache
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import StatementError
from starlette.applications import Starlette
from starlette.convertors import IntegerConvertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsletter.compose import tokens
from newsletter.settings import Settings
from newsletter.store.engine import connect
from newsletter.web import admin, clicks, feedback, join, manage, reading
from newsletter.web.middleware import AccessLog, BodyLimit, redact, route_name
from newsletter.web.pages import MAX_FORM_BYTES, MAX_LIBRARY_BYTES, Refused, message
from newsletter.web.security import DEFAULT_HEADERS, SecurityHeaders
from newsletter.web.state import Web

log = logging.getLogger("newsletter.web")
ASSETS = {"site.css": "text/css; charset=utf-8", "icon.svg": "image/svg+xml"}


class RowId(IntegerConvertor):
    """A database id: at most 18 digits, so a longer number in a URL matches no route (404)
    instead of reaching ``int()``, which raises on over 4,300 digits (a 500 for anybody)."""

    regex = "[0-9]{1,18}"


register_url_convertor("rowid", RowId())


@cache
def _asset(folder: Path, name: str) -> bytes:
    return (folder / name).read_bytes()


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS:  # a fixed list: no path from the URL ever reaches the file system
        raise HTTPException(404)
    loader = request.app.state.web.pages.loader
    body = _asset(Path(loader.searchpath[0]), name)
    return Response(body, media_type=ASSETS[name],
                    headers={"cache-control": "public, max-age=3600"})


async def http_error(request: Request, exc: Exception) -> Response:
    code = exc.status_code if isinstance(exc, HTTPException) else 500
    headers = exc.headers if isinstance(exc, HTTPException) else None
    if isinstance(exc, Refused):
        return message(request, exc.title, exc.detail, status=code, tone="warning",
                       headers=headers)
    if code == 413 and request.url.path.endswith("/library"):
        return message(request, "That file is too large",
                       "A library can be up to 2 MB, so nothing was added. Export only the "
                       "papers that show what you work on (a collection, not the whole "
                       "library), or paste their arXiv ids.", status=413, tone="warning")
    if code == 413:
        return message(request, "That was too much to send",
                       "The form was larger than any of ours can be, so nothing was changed. "
                       "Reload the page and try again with less text.", status=413,
                       tone="warning")
    if code == 404:
        return message(request, "Page not found",
                       "There is nothing at this address. The links in our emails lead to "
                       "the right pages.", status=404, action=("/", "Go to the front page"))
    if code == 405:  # Starlette's Allow header goes with it: RFC 9110 requires one
        return message(request, "Not like this", "That request was not understood.",
                       status=405, tone="warning", headers=headers)
    return message(request, "Something went wrong", "Please try again in a moment.",
                   status=code, tone="warning")


async def server_error(request: Request, exc: Exception) -> Response:
    # The route's pattern, never the path: paths carry the tokens that open people's pages.
    # The exception's own words may quote a URL (a token); they are redacted, and the
    # traceback is given as the frames it passed through, which hold no values.
    frames = traceback.extract_tb(exc.__traceback__)[-6:]
    where = " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))
    log.error("error on %s %s: %s: %s (at %s)", request.method, route_name(request.scope),
              type(exc).__name__, redact(_said(exc))[:500], where)
    # Starlette sends this page from outside the app's middleware, so SecurityHeaders never
    # sees it: the headers every page carries are set here.
    return message(request, "Something went wrong on our side",
                   "Nothing was changed. Please try again in a moment.", status=500,
                   tone="warning", headers=DEFAULT_HEADERS)


def _said(exc: Exception) -> str:
    """What an exception says, for the log. A database error's own text quotes the statement's
    parameters (a reader's address, name, topics) and PostgreSQL adds a DETAIL line with the
    row's values: only the driver's first line is kept (what went wrong, naming no value)."""
    if isinstance(exc, StatementError):
        said = str(exc.orig) if exc.orig is not None else ""
        return said.strip().split("\n", 1)[0]
    return str(exc)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Starlette:
    """The app for `newsletter serve`; tests pass their own settings and database."""
    settings = settings or Settings()
    engine = engine or connect(settings.database_url)
    routes = [
        Route("/", join.signup_page, methods=["GET"]),
        Route("/subscribe", join.subscribe, methods=["POST"]),
        Route("/confirm/{token}", join.confirm_page, methods=["GET"]),
        Route("/confirm/{token}", join.confirm, methods=["POST"]),
        Route("/unsubscribe/{token}", manage.unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe/{token}", manage.unsubscribe_now, methods=["POST"]),
        Route("/preferences/{token}", manage.preferences, methods=["GET", "POST"]),
        Route("/signout/{purpose}/{token}", manage.sign_out, methods=["POST"]),
        Route("/preferences/{token}/marked", reading.unmark, methods=["POST"]),
        Route("/preferences/{token}/library", reading.library, methods=["POST"]),
        Route("/click/{token}", clicks.click, methods=["GET"]),
        *(Route(f"/{verdict}/{{token}}", endpoint, methods=[method])
          for verdict in tokens.FEEDBACK
          for method, endpoint in (("GET", feedback.page(verdict)),
                                   ("POST", feedback.record(verdict)))),
        Route("/admin", admin.gallery, methods=["GET"]),
        Route("/admin/login", admin.login, methods=["POST"]),
        Route("/admin/logout", admin.logout, methods=["POST"]),
        Route("/admin/digest/{id:rowid}", admin.digest, methods=["GET"]),
        Route("/admin/digest/{id:rowid}/html", admin.digest_part, methods=["GET"]),
        Route("/admin/digest/{id:rowid}/text", admin.digest_part, methods=["GET"]),
        Route("/assets/{name}", asset, methods=["GET"]),
    ]
    middleware = [Middleware(AccessLog), Middleware(SecurityHeaders),
                  Middleware(BodyLimit, max_bytes=MAX_FORM_BYTES,
                             larger=((r"/preferences/[^/]+/library", MAX_LIBRARY_BYTES),))]
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={HTTPException: http_error, Exception: server_error})
    app.state.web = Web(settings, engine)
    return app
