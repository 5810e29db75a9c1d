"""Whose link is this? The token in a URL, checked against its owner's keys (the token rules
live in ``newsletter.compose.tokens``; the keys in the subscribers table)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from newsletter.compose import tokens
from newsletter.store.schema import legacy_unsubscribe_until
from newsletter.store.subscribers import link_owner, subscriber_id
from newsletter.web.state import Web


@dataclass(frozen=True)
class Owner:
    """The subscriber a valid link belongs to."""

    subscriber_id: int
    email: str
    status: str
    current: bool  # made with the person's current key (False: a retired one, in its grace)
    item: str | None = None  # what the link is about, for purposes about one thing (a paper)


async def owner(request: Request, purpose: str) -> Owner | None:
    """The owner of the token in this request's path, if it is ours, intact, for ``purpose``
    and not signed out; None for anything else (the page says "this link does not work")."""
    state: Web = request.app.state.web
    token = request.path_params.get("token", "")
    parsed = tokens.parse(token, purpose)
    found = None if parsed is None else await state.run(link_owner, state.engine,
                                                         parsed.link_id)
    if parsed is None or found is None:
        return await _legacy(state, purpose, token)
    verdict = tokens.check(state.secret, purpose, parsed, found.link_key, found.retired,
                           state.now())
    if verdict is None:
        return None
    return Owner(found.subscriber_id, found.email, found.status, verdict == "current",
                 parsed.item)


async def _legacy(state: Web, purpose: str, token: str) -> Owner | None:
    """An unsubscribe link from before per-subscriber keys, while its grace lasts."""
    if purpose != "unsubscribe":
        return None
    email = tokens.legacy_unsubscribe_address(state.secret, token)
    if email is None:
        return None
    until = await state.run(legacy_unsubscribe_until, state.engine)
    if until is None or state.now() >= until:
        return None
    found = await state.run(subscriber_id, state.engine, email)
    if found is None:
        return None
    return Owner(found[0], email, found[1], current=False)
