"""A real HTTP server for the catalog tests, on 127.0.0.1 in a thread.

Register what each path answers: ``serve`` (a body, with an ETag and Last-Modified, answering
304 to a matching conditional request), ``fail`` (a status), ``stall`` (no answer until the
client gives up) or ``drip`` (a body sent a byte at a time, slowly, or bytes without end).
Every request is recorded with its headers, so tests can check what the client sent.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LAST_MODIFIED = "Sun, 22 Nov 2026 13:00:00 GMT"


@dataclass(frozen=True)
class Route:
    body: bytes = b""
    content_type: str = "application/octet-stream"
    status: int = 200
    stall: bool = False
    drip: float | None = None  # seconds between bytes; with an empty body, bytes without end

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha1(self.body).hexdigest()[:16] + '"'


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]


class FixtureServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self.stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)

    def start(self) -> FixtureServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # releases stalled handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def url(self, path: str) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def serve(self, path: str, body: bytes | str | Path, content_type: str = "text/plain") -> str:
        if isinstance(body, Path):
            body = body.read_bytes()
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.routes[path] = Route(body, content_type)
        return self.url(path)

    def fail(self, path: str, status: int) -> str:
        self.routes[path] = Route(status=status)
        return self.url(path)

    def stall(self, path: str) -> str:
        self.routes[path] = Route(stall=True)
        return self.url(path)

    def drip(self, path: str, body: bytes | str = b"", *, seconds: float = 1.0,
             content_type: str = "application/x-ndjson") -> str:
        """Answer 200 at once, then ``body`` one byte at a time over ``seconds``; an empty
        body: one byte every ``seconds``, without end (until the server stops)."""
        data = body.encode() if isinstance(body, str) else body
        interval = seconds / len(data) if data else seconds
        self.routes[path] = Route(data, content_type, drip=interval)
        return self.url(path)

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (timeout, oversized answer) is what the tests want


def _handler(server: FixtureServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            server.requests.append(Request(self.path, dict(self.headers.items())))
            route = server.routes.get(self.path)
            if route is None:
                return self._answer(404, b"not found")
            if route.stall:
                server.stopping.wait(30)  # longer than any client timeout in the tests
                return
            if route.status != 200:
                return self._answer(route.status, b"something broke")
            if route.drip is not None:
                return self._drip(route)
            if (self.headers.get("If-None-Match") == route.etag
                    or self.headers.get("If-Modified-Since") == LAST_MODIFIED
                    and "If-None-Match" not in self.headers):
                return self._answer(304, b"", etag=route.etag)
            self._answer(200, route.body, route.content_type, route.etag)

        def _answer(self, status: int, body: bytes, content_type: str = "text/plain",
                    etag: str | None = None) -> None:
            self.send_response(status)
            if etag:
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", LAST_MODIFIED)
            if status != 304:
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 304:
                self.wfile.write(body)

        def _drip(self, route: Route) -> None:
            endless = not route.body
            self.send_response(200)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(10**9 if endless else len(route.body)))
            self.end_headers()
            sent = 0
            while endless or sent < len(route.body):
                if server.stopping.wait(route.drip):
                    return
                self.wfile.write(b"\n" if endless else route.body[sent:sent + 1])
                self.wfile.flush()
                sent += 1

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean

    return Handler
