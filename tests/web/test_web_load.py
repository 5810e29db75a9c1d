"""Costly work one request can ask of `newsletter serve`, and what stays quick meanwhile: the
library upload (BibTeX read by pylatexenc: seconds for a legitimate 2 MB export, more for a
crafted one) and the digest preview (a ranking of the whole catalog, one at a time). A
preferences link is all either takes, and anybody can get one by signing up. Over real HTTP to
the app under uvicorn: the event loop and the worker threads are what is under test."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import httpx
import pytest
from web_site import ADA, EMMY, Site, csrf_in, served, site  # noqa: F401

from newsletter.web import reading

# A Zotero-like export: every entry with a long abstract, as real ones have.
ENTRY = ("@article{{key{n},\n  title = {{On graph neural networks, part {n}}},\n"
         "  abstract = {{" + "We study message passing on large graphs. " * 30 + "}}\n}}\n")


def export(entries: int) -> bytes:
    return "".join(ENTRY.format(n=n) for n in range(entries)).encode()


def upload(base: str, prefs: str, csrf: str, cookies: Any, bib: bytes) -> httpx.Response:
    return httpx.post(f"{base}{prefs}/library", data={"csrf": csrf, "action": "add"},
                      files={"bibfile": ("mine.bib", bib, "text/x-bibtex")}, cookies=cookies,
                      timeout=120)


def test_a_library_being_read_does_not_stop_every_other_page(
        site: Site, served: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The upload is parsed on a worker thread: the sign-up page and one-click unsubscribe
    answer while it is read (on the event loop, a 2 MB export froze the site for a minute)."""
    started, took = threading.Event(), []
    real = reading.parse_library

    def watched(text: str, origin: str) -> Any:
        started.set()
        begun = time.perf_counter()
        try:
            return real(text, origin)
        finally:
            took.append(time.perf_counter() - begun)

    monkeypatch.setattr(reading, "parse_library", watched)
    prefs = site.link("preferences", ADA)
    with httpx.Client(base_url=served) as browser:
        csrf = csrf_in(browser.get(prefs).text)
        worker = threading.Thread(target=upload, args=(
            served, prefs, csrf, browser.cookies, export(400)))
        worker.start()
        assert started.wait(30)
        begun = time.perf_counter()
        front = httpx.get(f"{served}/", timeout=60)
        gone = httpx.post(served + site.link("unsubscribe", EMMY),
                          data={"List-Unsubscribe": "One-Click"}, timeout=60)
        waited = time.perf_counter() - begun
        worker.join(120)
    assert front.status_code == 200 and gone.status_code == 200
    assert took and took[0] > 1.0, took  # the parse really was slow...
    assert waited < min(1.0, took[0] / 2), (waited, took)  # ...and nobody else waited for it


def test_simultaneous_library_uploads_past_two_are_turned_away_at_once(
        site: Site, served: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each upload may cost seconds of CPU: two are read at a time, the others are told to
    come back (503, Retry-After) instead of taking every worker thread the site has."""
    release, inside = threading.Event(), []
    real = reading.parse_library

    def held(text: str, origin: str) -> Any:
        inside.append(origin)
        release.wait(20)  # as a slow export would: still being read
        return real(text, origin)

    monkeypatch.setattr(reading, "parse_library", held)
    prefs = site.link("preferences", ADA)
    with httpx.Client(base_url=served) as browser:
        csrf = csrf_in(browser.get(prefs).text)
        answers: list[httpx.Response] = []
        workers = [threading.Thread(target=lambda: answers.append(upload(
            served, prefs, csrf, browser.cookies, export(3)))) for _ in range(2)]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 10
        while len(inside) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        third = upload(served, prefs, csrf, browser.cookies, export(3))
        release.set()
        for worker in workers:
            worker.join(30)
    assert third.status_code == 503 and third.headers.get("retry-after")
    assert "Nothing was added" in third.text and "Traceback" not in third.text
    assert sorted(a.status_code for a in answers) == [303, 303]


def test_a_broken_export_puts_nothing_of_it_in_the_log(
        site: Site, caplog: pytest.LogCaptureFixture) -> None:
    """bibtexparser logs two lines for every block it cannot read, quoting the upload: 100 KB
    of broken entries made ~60,000 log lines, and a reader's papers are never logged."""
    prefs = site.link("preferences", ADA)
    csrf = csrf_in(site.client.get(prefs).text)
    broken = b"@article{secret-key-of-ada title = Unpublished work}\n" * 2000
    with caplog.at_level(logging.DEBUG):
        response = site.client.post(prefs + "/library", data={"csrf": csrf, "action": "add"},
                                    files={"bibfile": ("mine.bib", broken, "text/x-bibtex")})
    assert response.status_code == 422 and "not a complete BibTeX entry" in response.text
    logged = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert not [r for r in logged if r.name.startswith("bibtexparser")]
    assert not [r for r in logged if "secret-key" in r.getMessage()]


def test_a_flood_of_previews_leaves_worker_threads_for_unsubscribing(
        site: Site, served: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Previews are ranked one at a time; each used to hold a worker thread while it waited,
    so 60 page loads on a big catalog (here 0.25 s a ranking) made the RFC 8058 POST wait
    behind all of them. Past a few at once, the page comes without its preview."""
    web = site.client.app.state.web  # type: ignore[attr-defined]
    real = web._fresh_pipeline

    def big_catalog() -> Any:
        time.sleep(0.25)  # under the ranking lock, as a large catalog's ranking is
        return real()

    monkeypatch.setattr(web, "_fresh_pipeline", big_catalog)
    prefs = site.link("preferences", ADA)

    async def flood() -> tuple[list[httpx.Response], httpx.Response, float]:
        async with httpx.AsyncClient(base_url=served, timeout=120) as client:
            pages = [asyncio.create_task(client.get(prefs)) for _ in range(60)]
            await asyncio.sleep(0.5)
            begun = time.perf_counter()
            gone = await client.post(site.link("unsubscribe", EMMY),
                                     data={"List-Unsubscribe": "One-Click"})
            waited = time.perf_counter() - begun
            return list(await asyncio.gather(*pages)), gone, waited

    pages, gone, waited = asyncio.run(flood())
    assert gone.status_code == 200 and site.row(EMMY)["status"] == "unsubscribed"
    assert waited < 1.5, waited
    assert all(page.status_code == 200 for page in pages)
    busy = [page for page in pages if "preview is busy" in page.text]
    assert busy and len(busy) < len(pages)  # some previews were made, the rest not queued
    assert all(f'action="{prefs}"' in page.text for page in busy)  # the form still works
