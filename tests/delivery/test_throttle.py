"""Rate limit and pause, on a fake clock: exact, and nothing sleeps for real."""

from __future__ import annotations

import asyncio

import pytest

from newsletter.delivery.throttle import Breaker, TokenBucket


class FakeClock:
    """``clock()`` reads fake time; ``await sleep(s)`` records ``s`` and, if ``advance``,
    moves fake time on by it (one sleeper at a time: sequential callers)."""

    def __init__(self, *, advance: bool = True) -> None:
        self.now = 1000.0
        self.advance = advance
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.advance:
            self.now += seconds
        await asyncio.sleep(0)


def bucket(rate: float, burst: int, clock: FakeClock) -> TokenBucket:
    return TokenBucket(rate, burst, clock=clock, sleep=clock.sleep)


def breaker(threshold: int, pause: float, clock: FakeClock) -> Breaker:
    return Breaker(threshold, pause, clock=clock, sleep=clock.sleep)


# -- TokenBucket -----------------------------------------------------------------------------

@pytest.mark.parametrize(("n", "rate", "burst"), [(10, 2.0, 1), (25, 5.0, 5), (7, 0.5, 3)])
async def test_bucket_n_acquires_take_n_minus_burst_over_rate(n: int, rate: float,
                                                              burst: int) -> None:
    clock = FakeClock()
    limiter = bucket(rate, burst, clock)
    start = clock.now
    for _ in range(n):
        await limiter.acquire()

    assert clock.now - start == pytest.approx((n - burst) / rate)


async def test_bucket_lets_the_burst_through_without_sleeping() -> None:
    clock = FakeClock()
    limiter = bucket(1.0, 4, clock)
    for _ in range(4):
        await limiter.acquire()

    assert clock.sleeps == []


async def test_bucket_refills_while_idle_but_no_more_than_the_burst() -> None:
    clock = FakeClock()
    limiter = bucket(1.0, 2, clock)
    await limiter.acquire()
    await limiter.acquire()
    clock.now += 100  # a long lull earns only `burst` tokens
    for _ in range(3):
        await limiter.acquire()

    assert clock.sleeps == [pytest.approx(1.0)]


async def test_bucket_spaces_concurrent_callers_instead_of_waking_them_together() -> None:
    clock = FakeClock(advance=False)
    limiter = bucket(4.0, 1, clock)
    await asyncio.gather(*(limiter.acquire() for _ in range(5)))

    assert clock.sleeps == pytest.approx([0.25, 0.5, 0.75, 1.0])


async def test_bucket_gives_back_the_token_of_a_cancelled_caller() -> None:
    clock = FakeClock()
    blocked = asyncio.Event()

    async def first_sleep_hangs(seconds: float) -> None:
        if not blocked.is_set():
            blocked.set()
            await asyncio.Event().wait()
        await clock.sleep(seconds)

    limiter = TokenBucket(1.0, 1, clock=clock, sleep=first_sleep_hangs)
    await limiter.acquire()
    waiter = asyncio.ensure_future(limiter.acquire())  # waits for its token, then is cancelled
    await blocked.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await limiter.acquire()

    assert clock.sleeps == [pytest.approx(1.0)]  # one interval, not two


@pytest.mark.parametrize("rate", [0.0, -1.0])
async def test_bucket_with_no_rate_never_waits(rate: float) -> None:
    clock = FakeClock()
    limiter = bucket(rate, 1, clock)
    for _ in range(1000):
        await limiter.acquire()

    assert clock.sleeps == []


def test_bucket_needs_a_burst_of_at_least_one() -> None:
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(1.0, 0)


# -- Breaker ---------------------------------------------------------------------------------

async def test_breaker_trips_at_the_threshold_and_not_before() -> None:
    clock = FakeClock()
    pauser = breaker(3, 60.0, clock)
    pauser.record(ok=False)
    pauser.record(ok=False)
    await pauser.wait()
    assert (clock.sleeps, pauser.tripped_count) == ([], 0)

    pauser.record(ok=False)
    await pauser.wait()

    assert clock.sleeps == [pytest.approx(60.0)]
    assert pauser.tripped_count == 1


async def test_breaker_wait_sleeps_only_the_rest_of_the_pause() -> None:
    clock = FakeClock()
    pauser = breaker(1, 60.0, clock)
    pauser.record(ok=False)
    clock.now += 45
    await pauser.wait()

    assert clock.sleeps == [pytest.approx(15.0)]
    assert not pauser.paused


async def test_breaker_blocks_every_caller_until_the_pause_is_over() -> None:
    clock = FakeClock(advance=False)

    async def sleep_until_over(seconds: float) -> None:
        clock.sleeps.append(seconds)
        await asyncio.sleep(0)  # let every caller start waiting before time moves on
        clock.now = max(clock.now, 1000.0 + 30.0)

    pauser = Breaker(2, 30.0, clock=clock, sleep=sleep_until_over)
    pauser.record(ok=False)
    pauser.record(ok=False)
    clock.now += 10
    await asyncio.gather(*(pauser.wait() for _ in range(3)))

    assert clock.sleeps == pytest.approx([20.0, 20.0, 20.0])


async def test_breaker_success_resets_the_count() -> None:
    clock = FakeClock()
    pauser = breaker(3, 60.0, clock)
    for ok in (False, False, True, False, False):
        pauser.record(ok=ok)
    await pauser.wait()

    assert (clock.sleeps, pauser.tripped_count) == ([], 0)


async def test_breaker_starts_counting_afresh_after_a_pause() -> None:
    clock = FakeClock()
    pauser = breaker(2, 60.0, clock)
    for _ in range(2):
        pauser.record(ok=False)
    await pauser.wait()
    pauser.record(ok=False)  # one failure after the pause is not yet two in a row
    await pauser.wait()

    assert pauser.tripped_count == 1 and len(clock.sleeps) == 1
    pauser.record(ok=False)
    await pauser.wait()
    assert pauser.tripped_count == 2 and len(clock.sleeps) == 2


async def test_breaker_ignores_outcomes_of_sends_in_flight_during_a_pause() -> None:
    clock = FakeClock()
    pauser = breaker(2, 60.0, clock)
    for _ in range(2):
        pauser.record(ok=False)
    clock.now += 50
    for _ in range(5):  # sends begun before the pause report back: no new trip, no extension
        pauser.record(ok=False)
    await pauser.wait()

    assert pauser.tripped_count == 1
    assert clock.sleeps == [pytest.approx(10.0)]


def test_breaker_needs_a_threshold_of_at_least_one() -> None:
    with pytest.raises(ValueError, match="threshold"):
        Breaker(0, 1.0)
