"""The deliveries table as a shared work queue: planning, claims, leases, the group-commit
journal. Every test runs on SQLite and on the local PostgreSQL (the ``engine`` fixture)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from newsletter.dispatch import claims, ledger
from newsletter.dispatch.journal import Journal, Outcome
from newsletter.models import Subscriber
from newsletter.store import schema
from newsletter.store.engine import utcnow
from newsletter.store.subscribers import load_subscribers, sync_subscribers

T0 = utcnow()
LEASE = timedelta(minutes=1)
EDITION = "2026-11-23"


@pytest.fixture
def ids(engine: Engine) -> list[int]:
    sync_subscribers(engine, [
        Subscriber(email=f"s{i}@example.org", name="", topics=("GNN",)) for i in range(6)])
    return [s.id for s in load_subscribers(engine)]  # type: ignore[misc]


def states(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        return Counter(conn.scalars(select(schema.deliveries.c.state)))


def dead_owner() -> str:
    pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return claims.lock_owner().split(":")[0] + f":{pid}:x"


def test_planning_twice_queues_each_edition_once(engine: Engine, ids: list[int]) -> None:
    assert claims.plan(engine, [(i, EDITION) for i in ids]) == 6
    assert claims.plan(engine, [(i, EDITION) for i in ids]) == 0
    assert claims.plan(engine, [(ids[0], "2026-11-24")]) == 1
    assert states(engine) == {"pending": 7}


def test_a_claimed_row_goes_to_no_one_else_until_its_lease_runs_out(
        engine: Engine, ids: list[int]) -> None:
    claims.plan(engine, [(i, EDITION) for i in ids[:3]])
    mine = claims.claim(engine, "a:1:x", 2, LEASE, now=T0)
    theirs = claims.claim(engine, "b:1:x", 5, LEASE, now=T0)
    assert len(mine) == 2 and len(theirs) == 1
    assert not {c.id for c in mine} & {c.id for c in theirs}
    assert claims.claim(engine, "b:1:x", 5, LEASE, now=T0 + timedelta(seconds=30)) == []
    taken = claims.claim(engine, "b:1:x", 5, LEASE, now=T0 + timedelta(seconds=61))
    assert {c.id for c in taken} == {c.id for c in mine + theirs}  # every lease ran out


def test_renewing_keeps_the_rows_of_a_live_worker(engine: Engine, ids: list[int]) -> None:
    claims.plan(engine, [(ids[0], EDITION)])
    claims.claim(engine, "a:1:x", 5, LEASE, now=T0)
    claims.renew(engine, "a:1:x", LEASE, now=T0 + timedelta(seconds=50))
    assert claims.claim(engine, "b:1:x", 5, LEASE, now=T0 + timedelta(seconds=70)) == []


def test_renewing_keeps_every_row_a_live_worker_holds_sending_and_retrying_too(
        engine: Engine, ids: list[int]) -> None:
    claims.plan(engine, [(i, EDITION) for i in ids[:3]])
    waiting, in_flight, retry = claims.claim(engine, "a:1:x", 5, LEASE, now=T0)

    async def start() -> None:
        async with Journal(engine, "a:1:x") as journal:
            assert await journal.sending(in_flight)  # a slow server: DATA takes its time
            assert await journal.sending(retry)
            journal.record(Outcome(retry.id, "retrying", 1, "451 try later",
                                   next_attempt_at=T0))
    asyncio.run(start())
    (retry,) = claims.claim(engine, "a:1:x", 5, LEASE, now=T0)  # due again: ours, queued
    claims.renew(engine, "a:1:x", LEASE, now=T0 + timedelta(seconds=50))
    later = T0 + timedelta(seconds=70)  # past the first lease, inside the renewed one
    assert claims.reap(engine, now=later) == claims.Reaped(uncertain=0, freed=0)
    assert claims.claim(engine, "b:1:x", 5, LEASE, now=later) == []
    assert states(engine) == {"pending": 1, "sending": 1, "retrying": 1}
    assert {waiting.id, retry.id} <= {c.id for c in claims.claim(
        engine, "b:1:x", 5, LEASE, now=T0 + timedelta(seconds=111))}  # not renewed again


def test_workers_claiming_at_once_never_share_a_row(engine: Engine, ids: list[int]) -> None:
    many = [Subscriber(email=f"m{i}@example.org", name="", topics=("GNN",)) for i in range(300)]
    sync_subscribers(engine, many)
    claims.plan(engine, [(s.id, EDITION) for s in load_subscribers(engine)])  # type: ignore[misc]
    taken: dict[str, list[int]] = {}

    def work(owner: str) -> None:
        got = taken.setdefault(owner, [])
        while batch := claims.claim(engine, owner, 7, LEASE):
            got.extend(c.id for c in batch)

    threads = [threading.Thread(target=work, args=(f"w{i}:1:x",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for got in taken.values() for i in got]
    assert len(every) == len(set(every)) == 300
    assert sum(1 for got in taken.values() if got) >= 2  # they really did run side by side


def test_a_retry_is_claimable_only_once_its_time_has_come(engine: Engine, ids: list[int]) -> None:
    claims.plan(engine, [(ids[0], EDITION)])
    (claim,) = claims.claim(engine, "a:1:x", 5, LEASE)

    async def retry() -> None:
        async with Journal(engine, "a:1:x") as journal:
            assert await journal.sending(claim)
            journal.record(Outcome(claim.id, "retrying", 1, "451 try later",
                                   next_attempt_at=T0 + timedelta(minutes=5)))
    asyncio.run(retry())
    assert claims.claim(engine, "b:1:x", 5, LEASE, now=T0) == []
    (again,) = claims.claim(engine, "b:1:x", 5, LEASE, now=T0 + timedelta(minutes=6))
    assert (again.id, again.attempts) == (claim.id, 1)


def test_the_journal_records_outcomes_and_the_papers_sent(engine: Engine, ids: list[int]) -> None:
    claims.plan(engine, [(ids[0], EDITION), (ids[1], EDITION)])
    first, second = claims.claim(engine, "a:1:x", 5, LEASE)

    async def send() -> None:
        async with Journal(engine, "a:1:x") as journal:
            assert await journal.sending(first)
            journal.record(Outcome(first.id, "sent", 2, message_id="<m1@x>",
                                   subscriber_id=ids[0], paper_ids=("p1", "p2")))
            journal.record(Outcome(second.id, "skipped"))
    asyncio.run(send())
    assert states(engine) == {"sent": 1, "skipped": 1}
    assert ledger.sent_papers_by_subscriber(engine, ids) == {ids[0]: {"p1", "p2"}}
    assert ledger.states_for(engine, {ids[0]: EDITION}) == {ids[0]: ("sent", None)}


def test_a_paper_already_recorded_for_a_person_is_kept_once(engine: Engine, ids: list[int]) -> None:
    claims.plan(engine, [(ids[0], EDITION), (ids[0], "2026-11-24")])
    one, two = claims.claim(engine, "a:1:x", 5, LEASE)

    async def send() -> None:
        async with Journal(engine, "a:1:x") as journal:
            for claim in (one, two):
                assert await journal.sending(claim)
                journal.record(Outcome(claim.id, "sent", 1, message_id=f"<{claim.id}@x>",
                                       subscriber_id=ids[0], paper_ids=("p1",)))
    asyncio.run(send())  # two editions racing may hold the same paper: not an error
    assert states(engine) == {"sent": 2}
    assert ledger.sent_papers_by_subscriber(engine, ids) == {ids[0]: {"p1"}}


def test_a_worker_whose_lease_ran_out_may_not_send_the_row(engine: Engine, ids: list[int]) -> None:
    claims.plan(engine, [(ids[0], EDITION)])
    (late,) = claims.claim(engine, "a:1:x", 5, LEASE, now=T0 - timedelta(minutes=5))
    (taken,) = claims.claim(engine, "b:1:x", 5, LEASE)

    async def both() -> tuple[bool, bool]:
        async with Journal(engine, "a:1:x") as slow, Journal(engine, "b:1:x") as fast:
            return await slow.sending(late), await fast.sending(taken)
    assert asyncio.run(both()) == (False, True)


def test_a_worker_whose_lease_ran_out_cannot_overwrite_the_outcome_another_recorded(
        engine: Engine, ids: list[int]) -> None:
    claims.plan(engine, [(ids[0], EDITION), (ids[1], EDITION)])
    late = claims.claim(engine, "a:1:x", 5, LEASE, now=T0 - timedelta(minutes=5))
    taken = claims.claim(engine, "b:1:x", 5, LEASE)
    assert [c.id for c in late] == [c.id for c in taken]
    sent, held = taken

    async def both() -> None:
        async with Journal(engine, "b:1:x") as fast:
            assert await fast.sending(sent) and await fast.sending(held)
            fast.record(Outcome(sent.id, "sent", 1, message_id="<m@x>", subscriber_id=ids[0],
                                paper_ids=("p1",)))
        async with Journal(engine, "a:1:x") as slow:  # its digests were empty, or failed
            slow.record(Outcome(sent.id, "skipped"))
            slow.record(Outcome(held.id, "failed", 1, "550 no such user"))
    asyncio.run(both())
    rows = {r.id: (r.state, r.message_id, r.claimed_by) for r in ledger_rows(engine)}
    assert rows == {sent.id: ("sent", "<m@x>", None), held.id: ("sending", None, "b:1:x")}


def ledger_rows(engine: Engine) -> list:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return list(conn.execute(select(schema.deliveries)))


def test_a_dead_workers_sending_rows_become_uncertain_and_its_others_return_at_once(
        engine: Engine, ids: list[int]) -> None:
    owner = dead_owner()
    claims.plan(engine, [(ids[0], EDITION), (ids[1], EDITION)])
    in_flight, untouched = claims.claim(engine, owner, 5, timedelta(hours=1))

    async def start() -> None:
        async with Journal(engine, owner) as journal:
            assert await journal.sending(in_flight)
    asyncio.run(start())
    assert claims.reap(engine) == claims.Reaped(uncertain=1, freed=1)
    (claim,) = claims.claim(engine, "b:1:x", 5, LEASE)
    assert claim.id == untouched.id
    assert ledger.states_for(engine, {ids[0]: EDITION})[ids[0]][0] == "uncertain"


def test_rows_left_sending_past_their_lease_become_uncertain(engine: Engine, ids: list[int]) -> None:
    claims.plan(engine, [(ids[0], EDITION)])
    (claim,) = claims.claim(engine, "elsewhere:1:x", 5, LEASE, now=T0 - timedelta(minutes=5))

    async def start() -> None:
        async with Journal(engine, "elsewhere:1:x") as journal:
            await journal.sending(claim)
    asyncio.run(start())
    assert claims.reap(engine, now=T0 - timedelta(minutes=4, seconds=30)).uncertain == 0
    assert claims.reap(engine) == claims.Reaped(uncertain=1, freed=0)


def test_a_stopping_worker_gives_back_what_it_did_not_start(engine: Engine, ids: list[int]) -> None:
    claims.plan(engine, [(i, EDITION) for i in ids])
    claims.claim(engine, "a:1:x", 4, LEASE)
    assert claims.release(engine, "a:1:x") == 4
    assert len(claims.claim(engine, "b:1:x", 10, LEASE)) == 6
    assert claims.unfinished(engine) == (6, 0)
