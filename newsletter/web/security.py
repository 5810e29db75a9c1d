"""CSRF protection, the operator's session, and the headers every response carries.

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
import secrets
from urllib.parse import urlsplit

from itsdangerous import BadSignature, TimestampSigner
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_COOKIE = "newsletter_csrf"
CSRF_FIELD = "csrf"
ADMIN_COOKIE = "newsletter_admin"
ADMIN_MAX_AGE = 12 * 3600  # seconds an operator stays signed in

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


def _fingerprint(secret: str, password: str) -> str:
    # Changing the password signs every operator out: the cookie is bound to it.
    return hmac.new(secret.encode(), b"admin:" + password.encode(), hashlib.sha256).hexdigest()


def admin_cookie(secret: str, password: str) -> str:
    signer = TimestampSigner(secret, salt="newsletter/admin")
    return signer.sign(_fingerprint(secret, password)).decode()


def is_admin(request: Request, secret: str, password: str | None) -> bool:
    cookie = request.cookies.get(ADMIN_COOKIE)
    if not password or not cookie or len(cookie) > 500:
        return False
    try:
        value = TimestampSigner(secret, salt="newsletter/admin").unsign(cookie,
                                                                      max_age=ADMIN_MAX_AGE)
    except BadSignature:
        return False
    return hmac.compare_digest(value, _fingerprint(secret, password).encode())


def password_ok(given: object, password: str | None) -> bool:
    if not password or not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode(), password.encode())


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
