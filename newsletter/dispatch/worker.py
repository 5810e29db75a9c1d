"""A worker: claims batches of pending deliveries and sends them over a pool of connections.

``newsletter send`` and each ``newsletter run`` tick *drain* (they stop once nothing is left
to do); ``newsletter worker`` serves the queue until it is stopped. Any number of them, on one
host or many, share one database (``claims.py``). A worker holds at most two batches at a time,
so memory does not grow with the number of subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import subprocess
import sys
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from newsletter.delivery.transport import Transport, make_transport
from newsletter.dispatch import claims, ledger
from newsletter.dispatch.claims import Claim
from newsletter.dispatch.deliver import Job, Pipeline, Policy, Sender, SendReport
from newsletter.dispatch.journal import Journal, Outcome
from newsletter.settings import Settings
from newsletter.store.engine import patiently, utcnow
from newsletter.store.subscribers import load_subscribers

log = logging.getLogger("newsletter")
POLL_SECONDS = 0.5
PIPELINE_MAX_AGE = timedelta(minutes=10)  # a long-lived worker sees new papers and templates


class Worker:
    def __init__(self, engine: Engine, settings: Settings, *, owner: str,
                 now: datetime | None = None, drain: bool = True,
                 stop: asyncio.Event | None = None, progress: Callable[[], None] | None = None,
                 rng: random.Random | None = None, transport: Transport | None = None) -> None:
        self.engine, self.settings, self.owner = engine, settings, owner
        self.fixed_now, self.drain, self.progress, self.rng = now, drain, progress, rng
        self.stop = stop or asyncio.Event()
        self.transport = transport  # given: already open (``dispatch`` checked the relay)
        self.policy = Policy.from_settings(settings)
        self.lease = timedelta(seconds=settings.worker_lease_seconds)
        self.stale_after = timedelta(hours=settings.stale_after_hours)
        self.in_hand = 0  # claimed jobs queued or being handled
        self.failure: Exception | None = None
        self._pipeline: Pipeline | None = None
        self._built_at = datetime.min

    async def run(self) -> SendReport:
        transport = self.transport or make_transport(self.settings)
        report = SendReport(transport.describe())
        await self._reap()
        first = await self._claim()
        if not first and self.drain and sum(await patiently(claims.unfinished, self.engine)) == 0:
            return report  # nothing to do: not even a connection to the relay
        try:
            async with transport, Journal(self.engine, self.owner) as journal:
                await transport.check()  # wrong host or password: stop before sending anything
                sender = Sender(self.engine, self._current_pipeline(), transport, self.policy,
                                journal, report, stop=self.stop, rng=self.rng)
                await self._serve(sender, journal, first)
        finally:
            released = claims.release(self.engine, self.owner)
        if self.stop.is_set():
            report.stopped = released
            report.retrying.extend((email, error) for email, error, _ in sender.retries.values())
        report.pauses = sender.breaker.tripped_count
        if sender.fatal:
            raise sender.fatal
        if self.failure:
            raise self.failure
        return report

    async def _serve(self, sender: Sender, journal: Journal, batch: list[Claim]) -> None:
        queue: asyncio.Queue[Job | None] = asyncio.Queue(maxsize=self.settings.claim_batch)
        connections = [asyncio.create_task(self._connection(queue, sender))
                       for _ in range(self.policy.concurrency)]
        renewer = asyncio.create_task(self._renew())
        try:
            while not self.stop.is_set():
                if batch:
                    sender.pipeline = self._current_pipeline()
                    await self._enqueue(queue, batch, journal, sender)
                elif self.drain and await self._drained(sender, journal):
                    break
                else:
                    await self._pause(sender)
                started = utcnow()
                batch = [] if self.stop.is_set() else await self._claim()
                for delivery_id in [i for i, (_, _, due) in sender.retries.items()
                                    if due <= started]:
                    del sender.retries[delivery_id]  # due, so claimable: someone has it now
        finally:
            while not queue.empty():  # not started: released to the queue by run()
                queue.get_nowait()
                self.in_hand -= 1
            for _ in connections:
                await queue.put(None)
            await asyncio.gather(*connections)
            renewer.cancel()

    async def _connection(self, queue: asyncio.Queue[Job | None], sender: Sender) -> None:
        while (job := await queue.get()) is not None:
            try:
                if not self.stop.is_set():  # else the job stays claimed until release
                    await sender.handle(job)
            except Exception as exc:  # the ledger is unreachable, or a bug: stop cleanly
                log.error("stopping: %s while sending to %s", exc, job.subscriber.email)
                self.failure = self.failure or exc
                self.stop.set()
            finally:
                self.in_hand -= 1
                if self.progress:
                    self.progress()

    async def _enqueue(self, queue: asyncio.Queue[Job | None], batch: list[Claim],
                       journal: Journal, sender: Sender) -> None:
        ids = {c.subscriber_id for c in batch}
        people = {s.id: s for s in await patiently(lambda: load_subscribers(self.engine, ids=ids))}
        now = self._now()
        since = now - timedelta(days=self.settings.window_days)
        sent = await patiently(ledger.sent_papers_by_subscriber, self.engine, list(people), since)
        # One query for the batch's feedback and libraries; never logged (they are private).
        readers = await patiently(sender.pipeline.readers, self.engine, list(people))
        # each topic ranked once across the run's processes, before the digests need it
        await patiently(sender.pipeline.rank_topics, self.engine, people.values())
        for claim in batch:
            person = people.get(claim.subscriber_id)
            if person is None:  # unsubscribed or bounced since the run was planned
                journal.record(Outcome(claim.id, "skipped", error="no longer subscribed"))
                continue
            if claim.stale(now, self.stale_after):  # yesterday's news helps nobody
                journal.record(Outcome(claim.id, "skipped", error=stale_reason(
                    claim, self.settings.stale_after_hours)))
                sender.report.stale += 1
                continue
            self.in_hand += 1
            await queue.put(Job(claim, person, sent.get(claim.subscriber_id, set()),
                                readers.get(claim.subscriber_id)))

    async def _drained(self, sender: Sender, journal: Journal) -> bool:
        """Nothing in hand, no retry of ours still to come, nothing pending anywhere."""
        if self.in_hand or sender.retries:
            return False
        await journal.flush()
        return sum(await patiently(claims.unfinished, self.engine)) == 0

    async def _pause(self, sender: Sender) -> None:
        await self._reap()
        delay = POLL_SECONDS
        if sender.retries:
            earliest = min(due for _, _, due in sender.retries.values())
            delay = min(delay, max(0.005, (earliest - utcnow()).total_seconds()))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.stop.wait(), timeout=delay)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                await asyncio.to_thread(claims.renew, self.engine, self.owner, self.lease)
            except (OperationalError, InterfaceError) as exc:  # the next renewal may work
                log.warning("could not renew the claims' lease: %s", exc)

    async def _claim(self) -> list[Claim]:
        return await patiently(claims.claim, self.engine, self.owner, self.settings.claim_batch,
                               self.lease)

    async def _reap(self) -> None:
        reaped = await patiently(claims.reap, self.engine)
        if reaped.uncertain:
            log.warning("%d deliveries were cut off by a stopped worker: marked uncertain "
                        "(see `newsletter status`)", reaped.uncertain)

    def _now(self) -> datetime:
        return self.fixed_now or utcnow()

    def _current_pipeline(self) -> Pipeline:
        now = self._now()
        if self._pipeline is None or (self.fixed_now is None
                                      and now - self._built_at > PIPELINE_MAX_AGE):
            self._pipeline = Pipeline.build(self.engine, self.settings, now)
            self._built_at = now
        return self._pipeline


def stale_reason(claim: Claim, hours: float) -> str:
    due = f"{claim.due_at:%Y-%m-%d %H:%M} UTC" if claim.due_at else "long ago"
    return (f"{ledger.STALE_PREFIX} due {due}, more than {hours:g} h before it could be sent "
            "(NEWSLETTER_STALE_AFTER_HOURS)")


def spawn(settings: Settings, count: int, now: datetime | None) -> list[subprocess.Popen[str]]:
    """Helper processes for this run (one per spare core): the same settings and clock,
    draining the same queue; each prints its own failures, stops when this process is gone,
    and tells its tally on stdout (``helper_tally``)."""
    env = {**os.environ, **settings.as_environment()}
    # --checked: `send` ran the preflight on these very settings already
    command = [sys.executable, "-m", "newsletter", "worker", "--drain", "--quiet", "--checked",
               "--helper-of", str(os.getpid())]
    if now is not None:
        command += ["--now", now.isoformat()]
    return [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
            for _ in range(count)]


def tally(report: SendReport) -> dict[str, int]:
    """What a helper did, by outcome: its parent adds it to the run's summary."""
    return {"sent": report.sent, "skipped": report.empty, "failed": len(report.failed),
            "uncertain": len(report.uncertain), "stale": report.stale}


def helper_tally(proc: subprocess.Popen[str]) -> dict[str, int]:
    """Wait for a helper and read its tally (empty when it died before telling)."""
    output, _ = proc.communicate()
    for line in reversed((output or "").splitlines()):
        with contextlib.suppress(ValueError):
            found = json.loads(line)
            if isinstance(found, dict):
                return {k: v for k, v in found.items() if isinstance(v, int)}
    return {}
