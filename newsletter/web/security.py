"""CSRF protection, who the client is, the operator's password, and the headers on every response.

CSRF: a signed double-submit cookie. Each browser gets a random cookie; forms carry an HMAC of
it under the server's secret, so a page elsewhere can neither read nor forge the field, and a
cookie planted by a sibling domain is useless without the secret. The cookie is SameSite=Lax as
a second wall, and a POST whose Origin names another site is refused outright. No server-side
session is needed. The RFC 8058 one-click POST is the one exception (mail providers send it
without cookies), which is why unsubscribing is the only thing that POST can do.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_COOKIE = "newsletter_csrf"
CSRF_FIELD = "csrf"
ADMIN_COOKIE = "newsletter_admin"
ADMIN_MAX_AGE = 12 * 3600  # seconds an operator stays signed in (the session row says so)
MIN_ADMIN_PASSWORD = 12  # characters; "four random words" is ~25

# Pages are server-rendered with one stylesheet and no script: nothing else may load or run.
# Referrer-Policy same-origin keeps the signed tokens in our URLs from reaching the sites the
# pages link to (the papers), while our own POSTs still carry a real Origin header.
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")
DEFAULT_HEADERS = {
    "content-security-policy": PAGE_CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",  # the pages are personal: no shared cache may keep them
}


def new_csrf_cookie() -> str:
    return secrets.token_urlsafe(32)


def csrf_value(secret: str, cookie: str) -> str:
    """The hidden form field for this browser's cookie."""
    return hmac.new(secret.encode(), b"csrf:" + cookie.encode(), hashlib.sha256).hexdigest()


def csrf_ok(request: Request, secret: str, base_url: str, submitted: object) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not isinstance(submitted, str) or not submitted:
        return False
    if not hmac.compare_digest(submitted.encode(), csrf_value(secret, cookie).encode()):
        return False
    return same_origin(request, base_url)


def same_origin(request: Request, base_url: str) -> bool:
    """False only for a browser that says the form came from another site. "null" and a
    missing Origin pass: the SameSite cookie and the signed field already cover them."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return True
    netloc = urlsplit(origin).netloc
    return netloc in {urlsplit(base_url).netloc, request.headers.get("host", "")}


def password_fingerprint(secret: str, password: str) -> str:
    """Stored with each operator session: changing the password signs every operator out."""
    return hmac.new(secret.encode(), b"admin:" + password.encode(), hashlib.sha256).hexdigest()


def password_ok(given: object, password: str | None) -> bool:
    if not password or not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), password.encode())


def client_network(request: Request) -> str:
    """Who is asking, for the limits: the client's IPv4 address, or its IPv6 /64 (one
    household or server gets a whole /64). Behind a proxy, uvicorn puts the address from
    X-Forwarded-For here when the proxy is in ``--forwarded-allow-ips`` (127.0.0.1 by default)."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def client_key(secret: str, request: Request) -> str:
    """``client_network`` as stored: keyed hash, so the database holds no IP address."""
    network = client_network(request).encode()
    return hmac.new(secret.encode(), b"client:" + network, hashlib.sha256).hexdigest()[:32]


class SecurityHeaders:
    """Adds DEFAULT_HEADERS to every response (404s and errors included) unless the route set
    its own value, as the gallery's framed email does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name.encode(), value.encode()) for name, value
                            in DEFAULT_HEADERS.items() if name.encode() not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
