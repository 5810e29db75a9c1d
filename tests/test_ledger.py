from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError

from newsletter import ledger, store
from newsletter.models import Subscriber

T0 = store.utcnow()


@pytest.fixture
def ids(engine: Engine) -> list[int]:
    store.sync_subscribers(engine, [
        Subscriber(email=f"s{i}@example.org", name="", topics=("GNN",)) for i in range(3)])
    return [s.id for s in store.load_subscribers(engine)]  # type: ignore[misc]


def test_an_edition_is_claimed_once_and_sent_once(engine: Engine, ids: list[int]) -> None:
    claim = ledger.begin(engine, ids[0], "2026-11-23", 2)
    assert claim is not None and claim[1] == 1
    assert ledger.begin(engine, ids[0], "2026-11-23", 2) is None  # in flight: not claimable
    ledger.mark_sent(engine, claim[0], ids[0], "<m1@example.org>", ["p1", "p2"])
    assert ledger.begin(engine, ids[0], "2026-11-23", 2) is None
    states = ledger.states_for(engine, {ids[0]: "2026-11-23", ids[1]: "2026-11-23"})
    assert states == {ids[0]: ("sent", None)}
    assert ledger.sent_papers_by_subscriber(engine, ids) == {ids[0]: {"p1", "p2"}}


def test_a_paper_cannot_be_recorded_twice_for_one_person(engine: Engine, ids: list[int]) -> None:
    first = ledger.begin(engine, ids[0], "2026-11-23", 1)
    ledger.mark_sent(engine, first[0], ids[0], "<m1@x>", ["p1"])  # type: ignore[index]
    second = ledger.begin(engine, ids[0], "2026-11-24", 1)
    with pytest.raises(IntegrityError):
        ledger.mark_sent(engine, second[0], ids[0], "<m2@x>", ["p1"])  # type: ignore[index]


def test_a_second_row_for_the_same_edition_is_impossible(engine: Engine, ids: list[int]) -> None:
    ledger.mark_skipped(engine, ids[1], "2026-11-23")
    ledger.mark_skipped(engine, ids[1], "2026-11-23")  # tolerated, still one row
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(store.deliveries).values(
            subscriber_id=ids[1], edition="2026-11-23", state="sending", attempts=0,
            paper_count=0, created_at=T0, updated_at=T0))
    assert [(c.state, c.count) for c in ledger.counts(engine)] == [("skipped", 1)]


def test_a_retry_is_claimable_only_once_its_time_has_come(engine: Engine, ids: list[int]) -> None:
    delivery, _ = ledger.begin(engine, ids[0], "2026-11-23", 1)  # type: ignore[misc]
    ledger.mark_retrying(engine, delivery, "451 try later", T0 + timedelta(minutes=5))
    assert ledger.begin(engine, ids[0], "2026-11-23", 1, now=T0) is None
    assert ledger.begin(engine, ids[0], "2026-11-23", 1,
                        now=T0 + timedelta(minutes=6)) == (delivery, 2)
    (entry,) = ledger.problems(engine)
    assert (entry.state, entry.attempts) == ("sending", 2)


def test_failed_and_uncertain_are_final_and_listed(engine: Engine, ids: list[int]) -> None:
    failed, _ = ledger.begin(engine, ids[0], "2026-11-23", 1)  # type: ignore[misc]
    ledger.mark_failed(engine, failed, "550 no such user")
    unsure, _ = ledger.begin(engine, ids[1], "2026-11-23", 1)  # type: ignore[misc]
    ledger.mark_uncertain(engine, unsure, "connection lost after DATA", "<m@x>")
    later = T0 + timedelta(days=1)
    assert ledger.begin(engine, ids[0], "2026-11-23", 1, now=later) is None
    assert ledger.begin(engine, ids[1], "2026-11-23", 1, now=later) is None
    listed = {(e.email, e.state, e.error) for e in ledger.problems(engine)}
    assert listed == {("s0@example.org", "failed", "550 no such user"),
                      ("s1@example.org", "uncertain", "connection lost after DATA")}
    assert ledger.permanent_failures(engine, ids[0]) == 1


def test_rows_left_sending_by_a_dead_process_become_uncertain(engine: Engine, ids: list[int]) -> None:
    ledger.begin(engine, ids[0], "2026-11-23", 1)
    assert ledger.orphans_to_uncertain(engine) == 1
    assert ledger.states_for(engine, {ids[0]: "2026-11-23"})[ids[0]][0] == "uncertain"


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
