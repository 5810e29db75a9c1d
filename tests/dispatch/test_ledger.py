from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError

from newsletter.dispatch import claims, ledger
from newsletter.dispatch.journal import Journal, Outcome
from newsletter.models import Subscriber
from newsletter.store import schema
from newsletter.store.engine import utcnow
from newsletter.store.subscribers import load_subscribers, sync_subscribers

T0 = utcnow()


@pytest.fixture
def ids(engine: Engine) -> list[int]:
    sync_subscribers(engine, [
        Subscriber(email=f"s{i}@example.org", name="", topics=("GNN",)) for i in range(3)])
    return [s.id for s in load_subscribers(engine)]  # type: ignore[misc]


def test_a_second_row_for_the_same_edition_is_impossible(engine: Engine, ids: list[int]) -> None:
    assert claims.plan(engine, [(ids[1], "2026-11-23")]) == 1
    assert claims.plan(engine, [(ids[1], "2026-11-23")]) == 0  # tolerated, still one row
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(schema.deliveries).values(
            subscriber_id=ids[1], edition="2026-11-23", state="sending", attempts=0,
            paper_count=0, created_at=T0, updated_at=T0))
    assert [(c.state, c.count) for c in ledger.counts(engine)] == [("pending", 1)]


def test_failures_and_uncertain_messages_are_listed_with_their_reply(
        engine: Engine, ids: list[int]) -> None:
    claims.plan(engine, [(ids[0], "2026-11-23"), (ids[1], "2026-11-23")])
    first, second = claims.claim(engine, "me:1:a", 10, timedelta(minutes=1))

    async def outcomes() -> None:
        async with Journal(engine, "me:1:a") as journal:
            assert await journal.sending(first) and await journal.sending(second)
            journal.record(Outcome(first.id, "failed", 1, "550 no such user",
                                   hard_failure=True))
            journal.record(Outcome(second.id, "uncertain", 1, "connection lost after DATA",
                                   "<m@x>"))
    asyncio.run(outcomes())
    listed = {(e.email, e.state, e.error, e.attempts) for e in ledger.problems(engine)}
    assert listed == {("s0@example.org", "failed", "550 no such user", 1),
                      ("s1@example.org", "uncertain", "connection lost after DATA", 1)}
    assert ledger.hard_failures(engine, ids[0]) == 1
    assert ledger.hard_failures(engine, ids[1]) == 0
    (uncertain,) = ledger.problems(engine, states=("uncertain",))
    assert uncertain.message_id == "<m@x>" and uncertain.id == second.id
    assert claims.claim(engine, "other:1:b", 10, timedelta(minutes=1),
                        now=T0 + timedelta(days=1)) == []  # final: never claimed again


def test_the_lease_is_exclusive_renewable_and_released(engine: Engine) -> None:
    me, rival = ledger.lock_owner(), ledger.lock_owner()
    assert ledger.acquire(engine, "dispatch", me, timedelta(seconds=60)) == (True, None)
    assert ledger.acquire(engine, "dispatch", rival, timedelta(seconds=60)) == (False, me)
    assert ledger.acquire(engine, "dispatch", me, timedelta(seconds=60)) == (True, None)
    ledger.release(engine, "dispatch", me)
    assert ledger.acquire(engine, "dispatch", rival, timedelta(seconds=60))[0]


def test_an_expired_lease_is_taken_over(engine: Engine) -> None:
    old = T0 - timedelta(minutes=5)
    ledger.acquire(engine, "dispatch", "elsewhere:1:x", timedelta(seconds=60), now=old)
    assert ledger.acquire(engine, "dispatch", ledger.lock_owner(), timedelta(seconds=60)) == (
        True, "elsewhere:1:x")


def test_a_lease_held_by_a_dead_local_process_is_taken_at_once(engine: Engine) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    owner = ledger.lock_owner().split(":")[0] + f":{dead}:x"
    ledger.acquire(engine, "dispatch", owner, timedelta(hours=1))
    assert ledger.acquire(engine, "dispatch", ledger.lock_owner(), timedelta(seconds=60)) == (
        True, owner)
    assert os.getpid() != int(dead)
