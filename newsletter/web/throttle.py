"""Password guesses at /admin: one checked at a time, each failure slower than the last, and a
lockout per client and for everybody.

The wait after a wrong password is served while holding the lock every check takes, so guesses
sent in parallel queue behind it instead of being checked side by side (an ``await sleep`` on its
own would let them all through at once). A client (an IPv4 address or an IPv6 /64) that fails
``per_client`` times in ``window`` is locked out, for longer each time; when failures from all
clients together pass ``global_backoff`` every check waits ``max_delay``, and past
``global_lockout`` nobody may try until the window has passed. Kept in the memory of the `serve`
process: it runs as one process (see README).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["ok", "wrong", "locked"]


@dataclass
class _Client:
    failures: deque[float] = field(default_factory=deque)
    lockouts: int = 0
    locked_until: float = 0.0


class LoginThrottle:
    def __init__(self, *, delay: float = 1.0, max_delay: float = 30.0, per_client: int = 5,
                 window: float = 900.0, lockout: float = 900.0, global_backoff: int = 50,
                 global_lockout: int = 200, max_waiting: int = 20,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.delay, self.max_delay, self.per_client = delay, max_delay, per_client
        self.window, self.lockout, self.max_waiting = window, lockout, max_waiting
        self.global_backoff, self.global_lockout = global_backoff, global_lockout
        self.clock, self.sleep = clock, sleep
        self._clients: dict[str, _Client] = {}
        self._failures: deque[float] = deque()  # every client's, for the global limits
        self._lock = asyncio.Lock()
        self._waiting = 0

    def retry_after(self, client: str) -> float:
        """Seconds before ``client`` may try again; 0 when it may now."""
        now = self.clock()
        self._forget(self._failures, now)
        wait = 0.0
        if len(self._failures) >= self.global_lockout:
            wait = self._failures[len(self._failures) - self.global_lockout] + self.window - now
        entry = self._clients.get(client)
        if entry is not None:
            wait = max(wait, entry.locked_until - now)
        if self._waiting >= self.max_waiting:
            wait = max(wait, self.delay)
        return max(wait, 0.0)

    async def attempt(self, client: str, check: Callable[[], bool]) -> tuple[Outcome, float]:
        """Run ``check`` (the password comparison) unless ``client`` must wait; the outcome and,
        when locked, the seconds to wait."""
        if (wait := self.retry_after(client)) > 0:
            return "locked", wait
        self._waiting += 1
        try:
            async with self._lock:
                if (wait := self.retry_after(client)) > 0:  # locked while this one queued
                    return "locked", wait
                if check():
                    self._clients.pop(client, None)
                    return "ok", 0.0
                await self.sleep(self._failed(client))  # holding the lock: the others wait
                return "wrong", 0.0
        finally:
            self._waiting -= 1

    def _failed(self, client: str) -> float:
        """Count the failure; the wait it costs."""
        now = self.clock()
        entry = self._clients.setdefault(client, _Client())
        self._forget(entry.failures, now)
        entry.failures.append(now)
        self._failures.append(now)
        wait = min(self.delay * 2 ** (len(entry.failures) - 1), self.max_delay)
        if len(entry.failures) >= self.per_client:
            entry.lockouts += 1
            entry.locked_until = now + self.lockout * 2 ** min(entry.lockouts - 1, 6)
            entry.failures.clear()
        if len(self._clients) > 10_000:
            self._prune(now)
        return self.max_delay if len(self._failures) >= self.global_backoff else wait

    def _forget(self, failures: deque[float], now: float) -> None:
        while failures and failures[0] <= now - self.window:
            failures.popleft()

    def _prune(self, now: float) -> None:
        for key, entry in list(self._clients.items()):
            self._forget(entry.failures, now)
            if not entry.failures and entry.locked_until <= now:
                del self._clients[key]
