"""Fetching catalog sources over HTTP: conditional requests, timeouts, one clear error each.

Pure HTTP, no database: the caller passes the validators (ETag, Last-Modified) it remembered
from the last fetch it stored, and stores the new ones only once the content is in the catalog;
saving them earlier would let a 304 hide content that never got stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from newsletter.errors import SourceError

TIMEOUT_SECONDS = 20.0
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


def make_client(timeout: float = TIMEOUT_SECONDS) -> httpx.Client:
    """One client per ingest: connections are reused across the sources of one host."""
    return httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=True,
                        headers={"User-Agent": USER_AGENT})


def fetch(client: httpx.Client, url: str, validators: Validators | None = None) -> Fetched:
    """GET ``url``, conditionally when ``validators`` are given. Raises SourceError (naming the
    URL and what to do) for every failure: network, timeout, HTTP error, oversized body."""
    known = validators or Validators()
    try:
        with client.stream("GET", url, headers=known.headers()) as response:
            if response.status_code == 304:
                return Fetched(url, None, known)
            if response.status_code >= 400:
                raise SourceError(url, _status_message(response))
            content = _read_capped(response, url)
            return Fetched(url, content, _validators_of(response),
                           response.headers.get("Content-Type", ""))
    except httpx.TimeoutException as exc:
        raise SourceError(url, f"no answer within {_seconds(client)} ({type(exc).__name__}): "
                               "the server is slow or down; the next ingest tries again") from exc
    except httpx.InvalidURL as exc:
        raise SourceError(url, f"not a valid URL ({exc}): fix it in the sources") from exc
    except httpx.HTTPError as exc:
        raise SourceError(url, f"cannot fetch it ({type(exc).__name__}: {exc}): check the "
                               "URL and the network; the next ingest tries again") from exc


def _read_capped(response: httpx.Response, url: str) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_bytes():
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


def _seconds(client: httpx.Client) -> str:
    read = client.timeout.read
    return f"{read:g} s" if read is not None else "the time limit"
