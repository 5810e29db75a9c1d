"""Ingest under bad input and bad servers, through the CLI: one bad record costs that record,
one bad source that source, and a slow server never holds the run (or a shutdown) hostage."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from commands import database, process_env, run, start
from databases import _postgres_schema
from http_server import FixtureServer
from paths import SEEDS

from newsletter.store.catalog import count_papers, load_papers

GOOD = {"title": "Graph networks for sparse data", "abstract": "We study graphs. " * 10}


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A clean working folder whose database is SQLite, or a fresh PostgreSQL schema."""
    base = process_env(tmp_path)
    if request.param == "sqlite":
        yield base
    else:
        for url in _postgres_schema():
            yield {**base, "NEWSLETTER_DATABASE_URL": url}


def jsonl(path: Path, *records: dict[str, object] | str) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def papers_in(env: dict[str, str]) -> list[str]:
    engine = database(env)
    titles = [p.title for p in load_papers(engine)]
    engine.dispose()
    return titles


def test_a_count_too_big_for_the_database_rejects_that_line_and_every_source_is_stored(
        env: dict[str, str], tmp_path: Path) -> None:
    big = jsonl(tmp_path / "big.jsonl", {"title": "x", "upvotes": 9223372036854775808},
                {**GOOD, "comments": 2**31})
    hf = tmp_path / "daily.json"
    hf.write_text(json.dumps([{"paper": {"id": "2611.00001", "title": "Starry paper",
                                         "summary": "About stars. " * 10,
                                         "githubStars": 3_000_000_000, "upvotes": 7}}]))
    result = run(env, "ingest", str(SEEDS), str(big), str(hf))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "NEWSLETTER_DATABASE_URL" not in result.stderr
    assert "big.jsonl:1: field 'upvotes': expected a whole number from 0 to 2147483647" \
        in result.stderr
    assert "big.jsonl:2: field 'comments'" in result.stderr
    engine = database(env)
    stored = {p.title: p for p in load_papers(engine)}
    engine.dispose()
    assert len(stored) > 300  # the seeds
    starry = stored["Starry paper"]  # a lenient source: the impossible count is ignored
    assert (starry.github_stars, starry.upvotes) == (None, 7)


def test_a_record_the_database_refuses_costs_that_record_only(tmp_path: Path) -> None:
    """PostgreSQL refuses a NUL character in text; SQLite takes it. On PostgreSQL the one
    record is rejected with its file and line, and the rest of that source and the others
    are stored."""
    for url in _postgres_schema():
        env = {**process_env(tmp_path), "NEWSLETTER_DATABASE_URL": url}
        listing = jsonl(tmp_path / "list.jsonl", GOOD, {"title": "Null\u0000byte paper"},
                        {"title": "A third paper on graphs"})
        result = run(env, "ingest", str(listing), str(SEEDS))
        assert result.returncode == 0, result.stderr
        assert "list.jsonl:2: the database refused the paper" in result.stderr
        titles = papers_in(env)
        assert {GOOD["title"], "A third paper on graphs"} <= set(titles)
        assert len(titles) > 300


def test_a_huge_local_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    huge = tmp_path / "huge.jsonl"
    with huge.open("wb") as handle:
        handle.truncate(51 * 2**20)  # sparse: no 51 MB written
    good = jsonl(tmp_path / "good.jsonl", GOOD)
    result = run(process_env(tmp_path), "ingest", str(huge), str(good))
    assert result.returncode == 0, result.stderr
    assert "huge.jsonl: the file is 51 MB, over the 50 MB" in result.stderr
    assert "1 new" in result.stdout


def test_a_file_of_garbage_lists_a_hundred_problems_and_counts_the_rest(tmp_path: Path) -> None:
    garbage = jsonl(tmp_path / "garbage.jsonl", *(["not json at all"] * 5000), GOOD)
    result = run(process_env(tmp_path), "ingest", str(garbage))
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("garbage.jsonl:") == 101
    assert "and 4900 more problems not listed" in result.stderr
    assert "1 new" in result.stdout


def test_ingest_fails_when_not_one_source_could_be_read(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = run(process_env(tmp_path), "ingest", str(tmp_path / "missing.txt"), str(empty))
    assert result.returncode == 1
    assert "Not one source could be read" in result.stderr


def test_send_on_an_empty_catalog_fails_instead_of_sending_nothing(tmp_path: Path) -> None:
    result = run(process_env(tmp_path, NEWSLETTER_SOURCES=json.dumps([str(tmp_path / "none")])),
                 "send")
    assert result.returncode == 2
    assert "the catalog is still empty" in result.stderr and "Sent" not in result.stdout


def test_a_server_dripping_bytes_is_cut_off_at_the_deadline_and_the_next_source_is_read(
        tmp_path: Path, http_server: FixtureServer) -> None:
    slow = http_server.drip("/slow.jsonl", seconds=0.3)  # a byte every 0.3 s, for ever
    good = jsonl(tmp_path / "good.jsonl", GOOD)
    env = process_env(tmp_path, NEWSLETTER_FETCH_TIMEOUT_SECONDS="1",
                    NEWSLETTER_FETCH_DEADLINE_SECONDS="2")
    result = run(env, "ingest", slow, str(good), timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"{slow}: not finished within 2 s" in result.stderr
    assert "1 new" in result.stdout


def test_sigterm_stops_run_while_its_ingest_job_reads_a_slow_source(
        tmp_path: Path, http_server: FixtureServer) -> None:
    slow = http_server.drip("/slow.jsonl", seconds=0.3)
    env = process_env(tmp_path, NEWSLETTER_SOURCES=json.dumps([slow]),
                    NEWSLETTER_FETCH_DEADLINE_SECONDS="3600")
    assert run(env, "ingest", str(SEEDS)).returncode == 0  # so `run` does not ingest first
    scheduler = start(env, "run")
    try:
        asked = _wait_for(lambda: http_server.requests_to("/slow.jsonl"))
        assert asked, "the ingest job never asked for the source"
        scheduler.send_signal(signal.SIGTERM)
        _, errors = scheduler.communicate(timeout=30)
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
    assert scheduler.returncode == 0, errors
    assert "Scheduler stopped." in errors


def test_a_long_ingest_keeps_its_lease_so_a_second_one_waits_and_nothing_is_lost(
        tmp_path: Path, http_server: FixtureServer) -> None:
    shared = {"title": "A paper both sources list", "abstract": "Shared. " * 20,
              "upvotes": 5}
    body = "".join(json.dumps(r) + "\n" for r in (shared, {**GOOD, "upvotes": 3}))
    slow = http_server.drip("/list.jsonl", body, seconds=4)  # takes 4 s, lease is 1 s
    local = jsonl(tmp_path / "local.jsonl", {**shared, "upvotes": 9})
    env = process_env(tmp_path, NEWSLETTER_WORKER_LEASE_SECONDS="1")
    first = start(env, "ingest", slow)
    try:
        assert _wait_for(lambda: http_server.requests_to("/list.jsonl"))
        second = run(env, "ingest", str(local), timeout=60)
        out, errors = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, errors
    assert second.returncode == 0, second.stderr
    assert "refused" not in errors + second.stderr
    engine = database(env)
    stored = {p.title: p for p in load_papers(engine)}
    assert count_papers(engine) == 2
    engine.dispose()
    assert stored[shared["title"]].upvotes == 9  # both sightings merged into one paper


def _wait_for(condition: Callable[[], object], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
