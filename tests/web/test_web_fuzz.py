"""Property: no request to a form or token route of `newsletter serve` ever gets a 500.

Hypothesis sends every form and token route arbitrary bodies (urlencoded, multipart with odd
boundaries and charsets, raw bytes, oversized), arbitrary tokens (real ones mutated, random
text, giant ones), random header values and chunkings, with and without a valid CSRF pair, from
random client addresses. Calls go to the ASGI app in process (the same app `serve` runs), which
keeps 2,000 cases per route (FUZZ_EXAMPLES) within a minute or two.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient
from web_site import ADA, ROOT, SECRET, clean_environment, csrf_in, site_settings

from newsletter.catalog import ingest
from newsletter.compose import tokens
from newsletter.store.catalog import load_papers
from newsletter.store.engine import connect, utcnow
from newsletter.store.subscribers import load_subscribers, sync_subscribers
from newsletter.subscribers import read_subscriber_files
from newsletter.web import create_app
from newsletter.web.security import CSRF_COOKIE
from newsletter.web.throttle import LoginThrottle

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2000"))
# Real values too, so that many cases get past the first check to the deeper ones.
REAL = {"email": ["new@example.org", "a+b@example.org", "x@localhost"],
        "topics": ["GNN", "graph neural networks\nPINNs", ""], "exclude": ["", "GAN"],
        "name": ["Grace Hopper", ""], "max_papers": ["10", "0", "51"],
        "frequency": ["daily", "weekly"], "weekday": ["monday", "sunday"],
        "send_time": ["07:00", "25:61"], "timezone": ["UTC", "Europe/Paris", "Mars/Base"],
        "action": ["save", "preview", "undo", "add", "remove"],
        "password": ["correct horse battery staple", "guess"],
        "List-Unsubscribe": ["One-Click"],
        # the feedback pages and the preferences page's marked papers and library
        "paper": ["2401.00001", "", "x" * 500], "key": ["arxiv:2101.00001", ""],
        "papers": ["2101.00001\nnot an id", "@article{k, title={T}, abstract={A}}", "@x{"]}
FIELDS = tuple(REAL)


@dataclass
class Target:
    app: Any
    loop: asyncio.AbstractEventLoop
    cookie: str
    csrf: str
    tokens: dict[str, str]  # a real token per purpose


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp("fuzz")
    monkeypatch = pytest.MonkeyPatch()
    clean_environment(monkeypatch, tmp)
    settings = site_settings(tmp, click_tracking=True)
    engine = connect(settings.database_url)
    # A small catalog keeps each preview cheap; the routes' parsing is what is under test.
    ingest.ingest(engine, [ROOT / "tests" / "fixtures" / "papers.jsonl"], utcnow())
    found, _ = read_subscriber_files(settings.subscribers_dir)
    sync_subscribers(engine, found)
    app = create_app(settings, engine)
    app.state.web.login_throttle = LoginThrottle(delay=0, max_delay=0)
    ada = load_subscribers(engine, email=ADA)[0]
    client = TestClient(app)
    page = client.get("/")
    client.post("/subscribe", data={"email": "new@example.org", "topics": "GNN",
                                    "csrf": csrf_in(page.text)})
    outbox = next(Path(settings.outbox_dir).rglob("*.eml")).read_text()
    confirm = re.search(r"/confirm/([A-Za-z0-9_-]+)", outbox)[1]  # type: ignore[index]
    real = {purpose: tokens.make(SECRET, purpose, ada.link_id, ada.link_key)
            for purpose in ("unsubscribe", "preferences")}
    paper = load_papers(engine)[0].id
    for purpose in ("click", "more", "less"):
        real[purpose] = tokens.make(SECRET, purpose, ada.link_id, ada.link_key, paper)
    real["confirm"] = confirm
    loop = asyncio.new_event_loop()
    yield Target(app, loop, client.cookies[CSRF_COOKIE], csrf_in(page.text), real)
    loop.close()
    monkeypatch.undo()
    engine.dispose()


async def call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]],
               chunks: list[bytes], client: str) -> int:
    """One request through the ASGI interface; the response status (500 if anything escaped)."""
    path_only, _, query = path.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path_only,
             "raw_path": quote(path_only).encode(), "query_string": query.encode(),
             "root_path": "", "headers": headers, "client": (client, 40000),
             "server": ("testserver", 80)}
    messages = [{"type": "http.request", "body": chunk, "more_body": n < len(chunks) - 1}
                for n, chunk in enumerate(chunks or [b""])]
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    try:
        await app(scope, receive, send)
    except Exception:
        return 500
    return status[0] if status else 500


# -- what to send ---------------------------------------------------------------------------

texts = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=300)
header_values = st.binary(max_size=120).map(
    lambda b: bytes(c for c in b if c >= 0x20 and c != 0x7f))  # what an HTTP parser lets in
charsets = st.sampled_from(["utf-8", "latin-1", "utf-16", "utf-7", "ascii", "nonsense", "",
                            "utf-8\"; x=\"", "cp1252"])


def mostly(draw: st.DrawFn) -> bool:
    return draw(st.integers(0, 3)) > 0  # three times in four


@st.composite
def form_fields(draw: st.DrawFn, csrf: str) -> list[tuple[str, str]]:
    fields = [(name, draw(st.sampled_from(REAL[name])) if mostly(draw) else draw(texts))
              for name in FIELDS if mostly(draw)]
    fields += draw(st.lists(st.tuples(texts, texts), max_size=4))
    if mostly(draw):
        fields.append(("csrf", csrf))
    return draw(st.permutations(fields))


@st.composite
def bodies(draw: st.DrawFn, csrf: str) -> tuple[bytes, bytes]:
    """(content type, body)."""
    kind = draw(st.sampled_from(["urlencoded"] * 3 + ["multipart"] * 2 + ["raw", "big"]))
    if kind == "urlencoded":
        fields = draw(form_fields(csrf))
        raw = urlencode(fields).encode()
        if draw(st.booleans()):  # stray escapes and invalid UTF-8
            raw += b"&" + draw(st.sampled_from([b"a=%ff%fe", b"%zz=1", b"=&&=", b"a=%", b"\xff"]))
        return b"application/x-www-form-urlencoded", raw
    if kind == "multipart":
        boundary = "b0undary" if mostly(draw) else draw(
            st.text(alphabet="abcXYZ019-_'()+,./:=? ", min_size=0, max_size=70))
        charset = "utf-8" if mostly(draw) else draw(charsets)
        parts = []
        for name, value in draw(form_fields(csrf)):
            disposition = 'form-data; name="%s"' if mostly(draw) else draw(st.sampled_from([
                "form-data; name=%s", 'form-data; name="%s"; filename="f.txt"', "attachment",
                'form-data; name="%s\r\nX: y"']))
            head = ("Content-Disposition: " + (disposition % name if "%s" in disposition
                                               else disposition))
            parts.append(head.encode("utf-8", "replace") + b"\r\n\r\n"
                         + value.encode("utf-8", "replace"))
        body = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts)
        body += draw(st.sampled_from([b"--" + boundary.encode() + b"--\r\n", b"", b"--"]))
        content_type = f"multipart/form-data; boundary={boundary}; charset={charset}"
        return content_type.encode("latin-1", "replace"), body
    if kind == "raw":
        return draw(header_values), draw(st.binary(max_size=2000))
    size = draw(st.integers(min_value=60_000, max_value=300_000))
    return b"application/x-www-form-urlencoded", b"topics=" + b"x" * size


def mutated(token: str) -> st.SearchStrategy[str]:
    edits = st.lists(st.tuples(st.integers(0, max(0, len(token) - 1)),
                               st.sampled_from(list("A_-.x/%é\u2028\x00"))), max_size=4)

    def apply(changes: list[tuple[int, str]]) -> str:
        chars = list(token)
        for at, char in changes:
            chars[at:at + 1] = [char]
        return "".join(chars)
    return edits.map(apply)


def token_for(target: Target, purpose: str) -> st.SearchStrategy[str]:
    real = target.tokens.get(purpose, target.tokens["preferences"])
    return st.one_of(st.just(real), st.just(real), st.just(real), mutated(real),
                     texts.filter(bool), st.integers(1000, 20000).map(lambda n: "A" * n))


@st.composite
def requests(draw: st.DrawFn, target: Target, method: str, route: str) -> dict[str, Any]:
    path = route
    if "{token}" in route:
        purpose = route.split("/")[1] if not route.startswith("/signout") else draw(
            st.sampled_from(["preferences", "unsubscribe", "click", "x"]))
        path = path.replace("{purpose}", purpose).replace(
            "{token}", draw(token_for(target, purpose)))
    if not mostly(draw):
        path += "?" + draw(st.sampled_from(["saved=1", "page=²", "page=-1", "page=99999999999",
                                            "x=%ff"]))
    headers: list[tuple[bytes, bytes]] = [(b"host", b"testserver")]
    chunks: list[bytes] = []
    if method == "POST":
        content_type, body = draw(bodies(target.csrf))
        headers.append((b"content-type", content_type))
        cut = draw(st.lists(st.integers(0, len(body)), max_size=4, unique=True))
        edges = [0, *sorted(cut), len(body)]
        chunks = [body[a:b] for a, b in zip(edges, edges[1:])]
        length = draw(st.sampled_from(["right", "none", "lie"]))
        if length == "right":
            headers.append((b"content-length", str(len(body)).encode()))
        elif length == "lie":
            headers.append((b"content-length", draw(st.sampled_from(
                [b"0", b"5", b"-1", b"99999999999", b"abc"]))))
    if mostly(draw):
        headers.append((b"cookie", f"{CSRF_COOKIE}={target.cookie}".encode()))
    else:
        headers.append((b"cookie", draw(header_values)))
    if not mostly(draw):
        headers.append((b"origin", draw(st.sampled_from(
            [b"http://testserver", b"https://evil.example", b"null", b"\xff\xfe"]))))
    client = draw(st.sampled_from(["203.0.113.5", "2001:db8::1", "unix-socket", ""])
                  if not mostly(draw) else st.ip_addresses().map(str))
    return {"method": method, "path": path, "headers": headers, "chunks": chunks,
            "client": client}


ROUTES = [
    ("POST", "/subscribe"), ("GET", "/confirm/{token}"), ("POST", "/confirm/{token}"),
    ("GET", "/unsubscribe/{token}"), ("POST", "/unsubscribe/{token}"),
    ("GET", "/preferences/{token}"), ("POST", "/preferences/{token}"),
    ("POST", "/signout/{purpose}/{token}"), ("GET", "/click/{token}"),
    ("GET", "/more/{token}"), ("POST", "/more/{token}"), ("GET", "/less/{token}"),
    ("POST", "/less/{token}"), ("POST", "/preferences/{token}/marked"),
    ("POST", "/preferences/{token}/library"),
    ("POST", "/admin/login"), ("POST", "/admin/logout"),
]


@pytest.mark.parametrize("method,route", ROUTES, ids=[f"{m} {r}" for m, r in ROUTES])
def test_no_request_to_a_form_or_token_route_gets_a_500(
        target: Target, method: str, route: str) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(request=requests(target, method, route))
    def never_500(request: dict[str, Any]) -> None:
        status = target.loop.run_until_complete(call(target.app, **request))
        assert status != 500 and 200 <= status < 500, (status, request["path"][:200])

    never_500()
