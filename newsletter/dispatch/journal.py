"""Per-message ledger writes, group-committed.

Every message needs two writes: ``sending`` with its Message-ID before it goes (so a crash
leaves it ``uncertain``, with the id a person can look up in the relay's log, rather than
resent) and its outcome after the server's reply. One transaction each costs more
than composing the message, so the Journal collects the writes of all connections and commits
them together, in a thread (SQLite and psycopg release the GIL), while composing goes on.

A connection awaits its ``sending`` mark before it talks to the server; outcomes are queued
without waiting. Since one flush commits everything queued before it, in order, a connection's
previous outcome is durable before its next message is marked ``sending``: at most one row per
connection is ``sending`` at any moment, which bounds what a crash can leave uncertain.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Iterable, Self

from sqlalchemy import Engine, bindparam, func, update
from sqlalchemy.exc import InterfaceError, OperationalError

from newsletter.dispatch.claims import PENDING, RETRYING, SENDING, Claim
from newsletter.errors import NewsletterError
from newsletter.store.engine import insert_ignore, utcnow
from newsletter.store.schema import deliveries, sent_papers

_d = deliveries.c
log = logging.getLogger("newsletter")
RETRY_PAUSES = (0.2, 1.0)
# Guarded by the claim: a worker whose lease ran out cannot overwrite the row's new holder
# (but a "sent" still corrects an "uncertain" that a reaper wrote meanwhile).
_OUTCOME = (update(deliveries).where(
    (_d.id == bindparam("b_id"))
    & ((_d.claimed_by == bindparam("b_owner")) | (_d.state == "uncertain"))).values(
    state=bindparam("b_state"), last_error=bindparam("b_error"),
    message_id=func.coalesce(bindparam("b_message_id"), _d.message_id),
    next_attempt_at=bindparam("b_next"), paper_count=bindparam("b_count"),
    hard_failure=bindparam("b_hard"), attempts=_d.attempts + bindparam("b_tried"),
    updated_at=bindparam("b_now"), claimed_by=None, lease_until=None))
# The Message-ID of each message marked ``sending``, in the same transaction.
_MESSAGE_ID = (update(deliveries).where(_d.id == bindparam("b_id"))
               .values(message_id=bindparam("b_message_id")))


@dataclass(frozen=True, slots=True)
class Outcome:
    delivery_id: int
    state: str  # sent, skipped, retrying, failed, uncertain
    paper_count: int = 0
    error: str | None = None
    message_id: str | None = None
    next_attempt_at: datetime | None = None
    subscriber_id: int | None = None  # with ``paper_ids``: recorded for "sent"
    paper_ids: tuple[str, ...] = ()
    hard_failure: bool = False  # counts toward suppression (``faults.counts_toward_suppression``)
    tried: int = 0  # attempts to add: an attempt that never reached ``sending`` (composing failed)


class JournalError(NewsletterError):
    """The ledger could not be written: nothing more may be sent."""


class Journal:
    def __init__(self, engine: Engine, owner: str) -> None:
        self.engine, self.owner = engine, owner
        # Built once: a statement's cache key costs more than executing it on a few rows.
        self._record_papers = insert_ignore(engine, sent_papers, ("subscriber_id", "paper_id"))
        self._start = (update(deliveries)
                       .where(_d.id.in_(bindparam("b_ids", expanding=True))
                              & (_d.claimed_by == bindparam("b_owner"))
                              & _d.state.in_((PENDING, RETRYING)))
                       .values(state=SENDING, attempts=_d.attempts + 1, next_attempt_at=None,
                               updated_at=bindparam("b_now"))
                       .returning(_d.id))
        self._starts: list[tuple[Claim, str | None, asyncio.Future[bool]]] = []
        self._outcomes: list[Outcome] = []
        self._flushes: list[asyncio.Future[bool]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.error is None:
            await self.flush()
        if self._task:
            self._task.cancel()

    async def sending(self, claim: Claim, message_id: str | None = None) -> bool:
        """Mark the row ``sending`` with the message's Message-ID, durably; False when the
        claim was lost (its lease ran out and another worker took the row): then this message
        must not go."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._starts.append((claim, message_id, future))
        self._wake.set()
        return await future

    def record(self, outcome: Outcome) -> None:
        self._check()
        self._outcomes.append(outcome)
        self._wake.set()

    async def flush(self) -> None:
        """Wait until everything recorded so far is committed."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._flushes.append(future)
        self._wake.set()
        await future

    def _check(self) -> None:
        if self.error is not None:
            raise JournalError(f"the ledger could not be written: {self.error}")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._starts or self._outcomes or self._flushes:
                starts, outcomes, flushes = self._starts, self._outcomes, self._flushes
                self._starts, self._outcomes, self._flushes = [], [], []
                try:
                    granted = await self._write_retrying([(c, m) for c, m, _ in starts],
                                                         outcomes)
                except Exception as exc:  # the database is gone: stop every sender
                    self.error = exc
                    for future in [f for _, _, f in starts] + flushes:
                        future.set_exception(JournalError(f"the ledger could not be "
                                                          f"written: {exc}"))
                    continue
                for claim, _, future in starts:
                    future.set_result(claim.id in granted)
                for future in flushes:
                    future.set_result(True)

    async def _write_retrying(self, starts: list[tuple[Claim, str | None]],
                              outcomes: list[Outcome]) -> set[int]:
        """A lost connection or a deadlock victim is tried again (the transaction was rolled
        back whole); a third failure stops the worker."""
        for pause in RETRY_PAUSES:
            try:
                return await asyncio.to_thread(self._write, starts, outcomes)
            except (OperationalError, InterfaceError) as exc:
                log.warning("ledger write failed (%s); trying again in %gs", exc, pause)
                await asyncio.sleep(pause)
        return await asyncio.to_thread(self._write, starts, outcomes)

    def _write(self, starts: list[tuple[Claim, str | None]],
               outcomes: list[Outcome]) -> set[int]:
        now = utcnow()
        granted: set[int] = set()
        with self.engine.begin() as conn:
            if outcomes:
                conn.execute(_OUTCOME, [_params(o, now, self.owner) for o in outcomes])
                papers = list(_sent_rows(outcomes, now))
                if papers:
                    conn.execute(self._record_papers, papers)
            if starts:
                granted = set(conn.scalars(self._start, {
                    "b_ids": [c.id for c, _ in starts], "b_owner": self.owner, "b_now": now}))
                ids = [{"b_id": c.id, "b_message_id": m}
                       for c, m in starts if m is not None and c.id in granted]
                if ids:
                    conn.execute(_MESSAGE_ID, ids)
        return granted


def _params(o: Outcome, now: datetime, owner: str) -> dict[str, Any]:
    return {"b_id": o.delivery_id, "b_owner": owner, "b_state": o.state,
            "b_error": None if o.error is None else o.error[:1000],
            "b_message_id": o.message_id, "b_next": o.next_attempt_at,
            "b_count": o.paper_count, "b_hard": o.hard_failure, "b_tried": o.tried,
            "b_now": now}


def _sent_rows(outcomes: Iterable[Outcome], now: datetime) -> Iterable[dict[str, Any]]:
    for o in outcomes:
        if o.state == "sent" and o.subscriber_id is not None:
            for paper_id in dict.fromkeys(o.paper_ids):
                yield {"subscriber_id": o.subscriber_id, "paper_id": paper_id,
                       "delivery_id": o.delivery_id, "sent_at": now}
