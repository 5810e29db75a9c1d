"""The pure fault rules: what a failed send means, and how long to wait before trying again."""

from __future__ import annotations

import random

import pytest

from newsletter.delivery.faults import backoff, classify
from newsletter.errors import SendError

NO_REPLY = None  # a dropped connection, a timeout or a refused connection: no SMTP code


@pytest.mark.parametrize(("code", "stage", "kind"), [
    # 5xx: permanent for this address, whatever the stage
    (550, "rcpt", "permanent"),
    (553, "mail", "permanent"),
    (554, "data", "permanent"),
    (552, "message", "permanent"),
    (530, "connect", "permanent"),
    # 4xx: the server asked us to come back, even after it had the whole body
    (421, "connect", "retry"),
    (421, "rcpt", "retry"),
    (450, "rcpt", "retry"),
    (451, "data", "retry"),
    (451, "message", "retry"),
    (452, "rcpt", "retry"),
    (454, "mail", "retry"),
    (471, "message", "retry"),
    # no reply before the body: the server cannot have the message
    (NO_REPLY, "connect", "retry"),
    (NO_REPLY, "mail", "retry"),
    (NO_REPLY, "rcpt", "retry"),
    (NO_REPLY, "data", "retry"),
    # no reply after the body: it may have been accepted
    (NO_REPLY, "message", "uncertain"),
    (-1, "message", "uncertain"),  # aiosmtplib's code for a reply it could not parse
    (-1, "rcpt", "retry"),
])
def test_classify_by_reply_and_stage(code: int | None, stage: str, kind: str) -> None:
    error = SendError("a@example.org", "the reply", code=code, stage=stage)  # type: ignore[arg-type]

    verdict = classify(error)

    assert verdict.kind == kind
    assert verdict.reason and "\n" not in verdict.reason


def test_classify_a_refusal_before_sending_as_permanent() -> None:
    # an address SMTP cannot carry: no reply code, but nothing later will change it
    error = SendError("ü@x", "SMTPUTF8 is not supported", permanent=True, stage="mail")

    assert classify(error).kind == "permanent"


def test_classify_reason_quotes_the_server_reply() -> None:
    verdict = classify(SendError("a@x", "550 5.1.1 no such user", code=550, stage="rcpt"))

    assert "5.1.1 no such user" in verdict.reason and "rcpt" in verdict.reason


def test_send_error_permanent_follows_the_code_unless_given() -> None:
    assert SendError("a@x", "r", code=550).permanent
    assert not SendError("a@x", "r", code=451).permanent
    assert not SendError("a@x", "r").permanent
    assert SendError("a@x", "r", permanent=True).permanent


def test_send_error_defaults_to_stage_connect_and_rejects_unknown_stages() -> None:
    assert SendError("a@x", "r").stage == "connect"
    with pytest.raises(ValueError, match="stage"):
        SendError("a@x", "r", stage="body")  # type: ignore[arg-type]


def test_send_error_text_calls_a_lost_final_reply_uncertain() -> None:
    assert str(SendError("a@x", "lost", stage="message")) == "a@x: uncertain failure: lost"
    assert str(SendError("a@x", "lost", stage="data")) == "a@x: temporary failure: lost"
    assert str(SendError("a@x", "550 no", code=550)) == "a@x: permanent failure: 550 no"


# -- backoff ---------------------------------------------------------------------------------

def test_backoff_stays_between_zero_and_the_doubling_ceiling() -> None:
    rng = random.Random(1)
    for attempt in range(1, 8):
        ceiling = 10.0 * 2 ** (attempt - 1)
        delays = [backoff(attempt, base=10.0, cap=1e9, rng=rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        # full jitter uses the whole window, not just its top
        assert min(delays) < ceiling * 0.1 and max(delays) > ceiling * 0.9


def test_backoff_grows_with_the_attempt_on_average() -> None:
    rng = random.Random(2)
    means = [sum(backoff(a, base=1.0, cap=1e9, rng=rng) for _ in range(2000)) / 2000
             for a in (1, 2, 3, 4)]

    assert means == sorted(means)
    assert means[3] / means[0] == pytest.approx(8, rel=0.15)  # the ceiling doubles each time


def test_backoff_never_exceeds_the_cap_even_for_huge_attempts() -> None:
    rng = random.Random(3)
    delays = [backoff(attempt, base=30.0, cap=600.0, rng=rng) for attempt in (6, 20, 10_000)]

    assert all(0.0 <= d <= 600.0 for d in delays)


def test_backoff_is_deterministic_for_a_seeded_rng() -> None:
    first = [backoff(a, base=5.0, cap=300.0, rng=random.Random(42)) for a in range(1, 10)]
    again = [backoff(a, base=5.0, cap=300.0, rng=random.Random(42)) for a in range(1, 10)]
    other = [backoff(a, base=5.0, cap=300.0, rng=random.Random(43)) for a in range(1, 10)]

    assert first == again and first != other


def test_backoff_draws_uniformly_below_the_ceiling() -> None:
    # the formula itself: uniform(0, min(cap, base * 2 ** (attempt - 1))), same rng stream
    expected = random.Random(7).uniform(0.0, min(100.0, 3.0 * 2 ** 4))

    assert backoff(5, base=3.0, cap=100.0, rng=random.Random(7)) == expected


@pytest.mark.parametrize("attempt", [0, -1])
def test_backoff_counts_attempts_from_one(attempt: int) -> None:
    with pytest.raises(ValueError, match="from 1"):
        backoff(attempt, base=1.0, cap=10.0, rng=random.Random(0))
