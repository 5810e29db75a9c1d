"""What wraps every request: a body limit that counts bytes as they arrive, and an access log
that names the route, never the path (paths carry the tokens that open people's pages)."""

from __future__ import annotations

import logging
import re
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("newsletter.web.access")


# Every route whose path holds a token; a message that quotes one of our URLs loses the token.
_TOKEN_IN_PATH = re.compile(r"/(unsubscribe|preferences|confirm|click|signout|more|less)/[^\s'\"<>]+")


def redact(text: str) -> str:
    return _TOKEN_IN_PATH.sub(lambda match: f"/{match[1]}/<token>", text)


class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, "request body too large")


def route_name(scope: Scope) -> str:
    """``/preferences/{token}``: the route's pattern, which holds no token; "-" when no route
    matched (a 404: its path is whatever the client sent, so it is not logged either)."""
    route = scope.get("route")
    return str(getattr(route, "path", "-"))


class BodyLimit:
    """Refuses a request body over ``max_bytes`` (413), counted as the bytes arrive: a chunked
    upload, or one whose Content-Length lies, is cut off at the limit, never held in memory.
    ``larger`` gives the paths (a pattern) that take more: the library upload."""

    def __init__(self, app: ASGIApp, max_bytes: int,
                 larger: tuple[tuple[str, int], ...] = ()) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.larger = tuple((re.compile(pattern), limit) for pattern, limit in larger)

    def limit(self, path: str) -> int:
        return next((limit for pattern, limit in self.larger if pattern.fullmatch(path)),
                    self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length", b"0")
        most = self.limit(str(scope.get("path", "")))
        received = 0

        async def limited() -> Message:
            nonlocal received
            if not declared.isdigit() or int(declared) > most:
                raise BodyTooLarge()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > most:
                    raise BodyTooLarge()
            return message

        await self.app(scope, limited, send)


class AccessLog:
    """One line per request: method, route pattern, status, milliseconds."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            access_log.info("%s %s %d %.0fms", scope.get("method", "-"), route_name(scope),
                            status, 1000 * (time.perf_counter() - start))
