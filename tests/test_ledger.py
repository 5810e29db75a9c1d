from __future__ import annotations

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError

from newsletter import ledger, store
from newsletter.models import Subscriber



@pytest.fixture
def ids(engine: Engine) -> list[int]:
    store.sync_subscribers(engine, [
        Subscriber(email=f"s{i}@example.org", name="", topics=("GNN",)) for i in range(3)])
    return [s.id for s in store.load_subscribers(engine)]  # type: ignore[misc]


def test_an_edition_is_claimed_once_and_sent_once(engine: Engine, ids: list[int]) -> None:
    first = ledger.begin(engine, ids[0], "2026-11-23", 2)
    assert first is not None
    assert ledger.begin(engine, ids[0], "2026-11-23", 2) is None  # in flight: not claimable
    ledger.mark_sent(engine, first, ids[0], "<m1@example.org>", ["p1", "p2"])
    assert ledger.begin(engine, ids[0], "2026-11-23", 2) is None
    assert ledger.states_for(engine, {ids[0]: "2026-11-23", ids[1]: "2026-11-23"}) == {
        ids[0]: "sent"}
    assert ledger.sent_papers_by_subscriber(engine, ids) == {ids[0]: {"p1", "p2"}}


def test_a_paper_cannot_be_recorded_twice_for_one_person(engine: Engine, ids: list[int]) -> None:
    first = ledger.begin(engine, ids[0], "2026-11-23", 1)
    ledger.mark_sent(engine, first, ids[0], "<m1@x>", ["p1"])  # type: ignore[arg-type]
    second = ledger.begin(engine, ids[0], "2026-11-24", 1)
    with pytest.raises(IntegrityError):
        ledger.mark_sent(engine, second, ids[0], "<m2@x>", ["p1"])  # type: ignore[arg-type]


def test_a_second_row_for_the_same_edition_is_impossible(engine: Engine, ids: list[int]) -> None:
    ledger.mark_skipped(engine, ids[1], "2026-11-23")
    ledger.mark_skipped(engine, ids[1], "2026-11-23")  # tolerated, still one row
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(store.deliveries).values(
            subscriber_id=ids[1], edition="2026-11-23", state="pending", attempts=0,
            paper_count=0, created_at=store.utcnow(), updated_at=store.utcnow()))
    assert [(c.state, c.count) for c in ledger.counts(engine)] == [("skipped", 1)]


def test_a_temporary_failure_is_retried_by_the_next_run_a_permanent_one_is_not(
        engine: Engine, ids: list[int]) -> None:
    temp = ledger.begin(engine, ids[0], "2026-11-23", 1)
    ledger.mark_failed(engine, temp, "451 try later", permanent=False)  # type: ignore[arg-type]
    perm = ledger.begin(engine, ids[1], "2026-11-23", 1)
    ledger.mark_failed(engine, perm, "550 no such user", permanent=True)  # type: ignore[arg-type]
    assert ledger.begin(engine, ids[0], "2026-11-23", 1) == temp
    assert ledger.begin(engine, ids[1], "2026-11-23", 1) is None
    listed = {(e.email, e.state, e.error) for e in ledger.problems(engine)}
    assert ("s1@example.org", "failed", "550 no such user") in listed
    assert ("s0@example.org", "sending", "451 try later") in listed
