"""Pacing for a send run: a rate limit, and a pause when the relay keeps saying "not now".

Both take the clock and the sleep function as arguments so that tests drive them with a fake
clock, exactly and without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]


class TokenBucket:
    """At most ``rate`` acquisitions per second on average, and ``burst`` at once after a lull.

    The bucket starts full. An acquisition that finds it empty reserves the next token before
    it sleeps (the count goes negative), so concurrent callers are spaced ``1/rate`` apart in
    arrival order instead of all waking at the same moment and racing for one token.
    ``rate <= 0`` means no limit.
    """

    def __init__(self, rate: float, burst: int = 1, *, clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst}")
        self.rate = rate
        self.burst = burst
        self._clock, self._sleep = clock, sleep
        self._tokens = float(burst)
        self._updated = clock()

    async def acquire(self) -> None:
        if self.rate <= 0:
            return
        self._refill()
        self._tokens -= 1
        if self._tokens >= 0:
            return
        try:
            await self._sleep(-self._tokens / self.rate)
        except asyncio.CancelledError:
            self._tokens += 1  # the reservation was never used: give it to the next caller
            raise

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
        self._updated = now


class Breaker:
    """Pauses every sender after ``threshold`` transient failures in a row.

    A run of 4xx replies or drops usually means the relay is throttling us; marching on through
    the list would only turn more of it into retries. ``record`` every outcome; ``await wait()``
    before every send. After the pause everything starts over. Outcomes recorded during a pause
    come from sends begun before it and say nothing new, so they neither extend it nor trip it
    again.
    """

    def __init__(self, threshold: int, pause: float, *, clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be at least 1, not {threshold}")
        self.threshold = threshold
        self.pause = pause
        self._clock, self._sleep = clock, sleep
        self._failures = 0
        self._until: float | None = None  # end of the current pause
        self.tripped_count = 0  # how many pauses this run took, for the report

    @property
    def paused(self) -> bool:
        if self._until is not None and self._clock() >= self._until:
            self._until = None
        return self._until is not None

    def record(self, ok: bool) -> None:
        if self.paused:
            return
        if ok:
            self._failures = 0
            return
        self._failures += 1
        if self._failures >= self.threshold:
            self._failures = 0
            self._until = self._clock() + self.pause
            self.tripped_count += 1

    async def wait(self) -> None:
        """Return at once unless paused; otherwise sleep until the pause is over."""
        while self.paused:
            assert self._until is not None
            await self._sleep(self._until - self._clock())
