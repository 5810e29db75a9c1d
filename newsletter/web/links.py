"""Whose link is this? The token in a URL, resolved by ``store.subscribers.resolve_link``
(token rules in ``newsletter.compose.tokens``, keys in the subscribers table)."""

from __future__ import annotations

from starlette.requests import Request

from newsletter.store.subscribers import Owner, resolve_link
from newsletter.web.state import Web

__all__ = ["Owner", "owner"]


async def owner(request: Request, purpose: str) -> Owner | None:
    """The owner of the token in this request's path, if it is ours, intact, for ``purpose``
    and not signed out; None for anything else (the page says "this link does not work")."""
    state: Web = request.app.state.web
    token = str(request.path_params.get("token", ""))
    return await state.run(resolve_link, state.engine, state.secret, purpose, token,
                           state.now())
