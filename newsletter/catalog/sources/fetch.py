"""Fetching catalog sources over HTTP: conditional requests, time limits, one clear error each.

Pure HTTP, no database: the caller passes the validators (ETag, Last-Modified) it remembered
from the last fetch it stored, and stores the new ones only once the content is in the catalog;
saving them earlier would let a 304 hide content that never got stored.

Two limits: ``timeout`` for connecting and for each read (a server gone silent), and a
``deadline`` for the whole answer, so that a server dripping a byte now and then cannot hold an
ingest forever. The requests run on a private event loop (:class:`Fetcher`), where cancelling
is exact: the deadline, or a stop requested from another thread (SIGTERM under `newsletter
run`), ends a fetch at once, whatever it is waiting for.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpx

from newsletter.errors import NewsletterError, SourceError

TIMEOUT_SECONDS = 20.0
DEADLINE_SECONDS = 120.0
STOP_POLL_SECONDS = 0.1
# A daily papers answer is ~1 MB and an arXiv listing a few MB; anything far bigger is a
# wrong URL, and reading it whole would only fill memory.
MAX_BYTES = 50 * 1024 * 1024
USER_AGENT = "newsletter/0.1 (research papers digest; catalog fetcher)"


@dataclass(frozen=True, slots=True)
class Validators:
    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        """The conditional request headers these validators allow."""
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass(frozen=True, slots=True)
class Fetched:
    url: str
    content: bytes | None  # None: 304 Not Modified, nothing new since the validators
    validators: Validators  # what to send next time
    content_type: str = ""

    @property
    def not_modified(self) -> bool:
        return self.content is None


@dataclass(frozen=True, slots=True)
class FetchLimits:
    timeout: float = TIMEOUT_SECONDS  # connect, and each read: a server silent this long
    deadline: float = DEADLINE_SECONDS  # the whole answer, however it trickles in


class Stopped(NewsletterError):
    """A stop was requested while a source was being fetched."""


class Fetcher:
    """Fetches URLs one after the other, each within ``limits`` and until ``stop`` is set.

    A context manager: one connection pool per ingest, so the sources of one host reuse their
    connections. Use it from synchronous code (a thread without a running event loop).
    """

    def __init__(self, limits: FetchLimits | None = None,
                 stop: threading.Event | None = None) -> None:
        self.limits = limits or FetchLimits()
        self.stop = stop or threading.Event()
        self._runner: asyncio.Runner | None = None
        self._client: httpx.AsyncClient | None = None

    def __enter__(self) -> Self:
        self._runner = asyncio.Runner()
        self._client = self._runner.run(self._open())
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._runner is not None and self._client is not None
        try:
            self._runner.run(self._client.aclose())
        finally:
            self._runner.close()

    async def _open(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=httpx.Timeout(self.limits.timeout),
                                 follow_redirects=True, headers={"User-Agent": USER_AGENT})

    def fetch(self, url: str, validators: Validators | None = None) -> Fetched:
        """GET ``url``, conditionally when ``validators`` are given. Raises SourceError (naming
        the URL and what to do) for every failure: network, timeout, deadline, HTTP error,
        oversized body; Stopped when a stop was requested meanwhile."""
        assert self._runner is not None, "use the Fetcher as a context manager"
        return self._runner.run(self._within_limits(url, validators or Validators()))

    async def _within_limits(self, url: str, known: Validators) -> Fetched:
        assert self._client is not None
        fetching = asyncio.ensure_future(_get(self._client, url, known, self.limits.timeout))
        stopping = asyncio.ensure_future(self._stop_requested())
        try:
            done, _ = await asyncio.wait({fetching, stopping}, timeout=self.limits.deadline,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (fetching, stopping):
                task.cancel()
            await asyncio.gather(fetching, stopping, return_exceptions=True)
        if fetching in done:
            return fetching.result()
        if stopping in done:
            raise Stopped(f"{url}: stopped while fetching; the next ingest reads it")
        raise SourceError(url, f"not finished within {self.limits.deadline:g} s: the server is "
                               "too slow (NEWSLETTER_FETCH_DEADLINE_SECONDS); the next ingest "
                               "tries again")

    async def _stop_requested(self) -> None:
        while not self.stop.is_set():
            await asyncio.sleep(STOP_POLL_SECONDS)


async def _get(client: httpx.AsyncClient, url: str, known: Validators,
               timeout: float) -> Fetched:
    try:
        async with client.stream("GET", url, headers=known.headers()) as response:
            if response.status_code == 304:
                return Fetched(url, None, known)
            if response.status_code >= 400:
                raise SourceError(url, _status_message(response))
            content = await _read_capped(response, url)
            return Fetched(url, content, _validators_of(response),
                           response.headers.get("Content-Type", ""))
    except httpx.TimeoutException as exc:
        raise SourceError(url, f"no answer within {timeout:g} s ({type(exc).__name__}): "
                               "the server is slow or down; the next ingest tries again") from exc
    except httpx.InvalidURL as exc:
        raise SourceError(url, f"not a valid URL ({exc}): fix it in the sources") from exc
    except httpx.HTTPError as exc:
        raise SourceError(url, f"cannot fetch it ({type(exc).__name__}: {exc}): check the "
                               "URL and the network; the next ingest tries again") from exc


async def _read_capped(response: httpx.Response, url: str) -> bytes:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BYTES:
            raise SourceError(url, f"the answer is over {MAX_BYTES // 2**20} MB: this is not a "
                                   "papers listing; check the URL")
        chunks.append(chunk)
    return b"".join(chunks)


def _validators_of(response: httpx.Response) -> Validators:
    return Validators(response.headers.get("ETag"), response.headers.get("Last-Modified"))


def _status_message(response: httpx.Response) -> str:
    status = f"{response.status_code} {response.reason_phrase}".strip()
    if response.status_code >= 500:
        return f"the server answered {status}: a problem on its side; the next ingest tries again"
    if response.status_code == 429:
        return f"the server answered {status}: too many requests; ingest less often"
    return f"the server answered {status}: check the URL"
