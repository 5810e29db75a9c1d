"""Readers' feedback and libraries in the store: the last choice wins, a batch's signals come
back in one call, and everything a reader told us leaves with them."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from commands import database, process_env, run, write_people
from sqlalchemy import Engine, func, insert, select

from newsletter.catalog.sources.ids import title_key
from newsletter.models import OwnPaper, Paper, ReaderSignals, Subscriber
from newsletter.store.catalog import load_papers_by_id, load_papers_like, save_papers
from newsletter.store.readers import (
    add_to_library,
    clear_feedback,
    feedback_list,
    library_of,
    remove_from_library,
    replace_library,
    set_feedback,
    signals_for,
)
from newsletter.store.schema import clicks, deliveries, feedback, library_papers, sent_papers
from newsletter.store.subscribers import forget, load_subscribers, sync_subscribers, unsubscribe

NOW = datetime(2026, 12, 1, 7, tzinfo=UTC)
ADA = Subscriber(email="ada@example.org", name="Ada", topics=("GNN",), origin="a.toml:1")
BOB = Subscriber(email="bob@example.org", name="Bob", topics=("OT",), origin="a.toml:6")
MINE = OwnPaper(key="arxiv:2401.00001", title="My graph paper", abstract="Graphs.", paper_id=None)
BIB = OwnPaper(key="smith2024", title="A BibTeX entry", abstract="")


def _ids(engine: Engine) -> tuple[int, int]:
    sync_subscribers(engine, [ADA, BOB])
    by_email = {s.email: s.id for s in load_subscribers(engine)}
    return by_email[ADA.email], by_email[BOB.email]


def test_the_last_choice_on_a_paper_wins_and_undo_takes_it_back(engine: Engine) -> None:
    ada, _ = _ids(engine)
    save_papers(engine, [(Paper(id="p1", title="Graph nets", abstract="x"), "graph nets")], [],
                now=NOW)
    set_feedback(engine, ada, "p1", "more", NOW)
    set_feedback(engine, ada, "p1", "less", NOW + timedelta(minutes=1))
    (entry,) = feedback_list(engine, ada)
    assert (entry.paper_id, entry.title, entry.verdict) == ("p1", "Graph nets", "less")
    assert clear_feedback(engine, ada, "p1") and not clear_feedback(engine, ada, "p1")
    assert feedback_list(engine, ada) == []


def test_a_batch_gets_its_signals_and_readers_without_any_are_left_out(engine: Engine) -> None:
    ada, bob = _ids(engine)
    set_feedback(engine, ada, "p1", "more", NOW)
    set_feedback(engine, ada, "p2", "less", NOW)
    replace_library(engine, ada, [MINE], "file", NOW)
    assert signals_for(engine, [ada, bob]) == {
        ada: ReaderSignals(liked=("p1",), hidden=("p2",), own=(MINE,))}
    assert signals_for(engine, []) == {}


def test_the_file_library_and_the_pasted_one_are_kept_apart(engine: Engine) -> None:
    ada, _ = _ids(engine)
    replace_library(engine, ada, [MINE], "file", NOW)
    assert add_to_library(engine, ada, [BIB, MINE], "web", NOW) == 1  # MINE is there already
    replace_library(engine, ada, [], "file", NOW)  # the file no longer lists it
    assert library_of(engine, ada) == [BIB]
    assert remove_from_library(engine, ada, "smith2024") and library_of(engine, ada) == []


def test_unsubscribing_deletes_feedback_and_library(engine: Engine) -> None:
    ada, bob = _ids(engine)
    for sid in (ada, bob):
        set_feedback(engine, sid, "p1", "more", NOW)
        replace_library(engine, sid, [MINE], "web", NOW)
    assert unsubscribe(engine, ADA.email)
    assert list(signals_for(engine, [ada, bob])) == [bob]


def test_forget_deletes_the_subscriber_and_every_row_about_them(engine: Engine) -> None:
    ada, bob = _ids(engine)
    for sid in (ada, bob):
        set_feedback(engine, sid, "p1", "more", NOW)
        replace_library(engine, sid, [MINE], "web", NOW)
        with engine.begin() as conn:
            delivery = conn.execute(insert(deliveries).values(
                subscriber_id=sid, edition="2026-12-01", state="sent", created_at=NOW,
                updated_at=NOW)).inserted_primary_key[0]
            conn.execute(insert(sent_papers).values(subscriber_id=sid, paper_id="p1",
                                                    delivery_id=delivery, sent_at=NOW))
            conn.execute(insert(clicks).values(subscriber_id=sid, paper_id="p1", clicked_at=NOW))
    assert forget(engine, "ADA@example.org") and not forget(engine, ADA.email)
    assert [s.email for s in load_subscribers(engine, statuses=None)] == [BOB.email]
    with engine.connect() as conn:
        for table in (deliveries, sent_papers, clicks, feedback, library_papers):
            left = conn.execute(select(table.c.subscriber_id, func.count())
                                .group_by(table.c.subscriber_id)).all()
            assert [tuple(row) for row in left] == [(bob, 1)], table.name


def test_the_forget_command_asks_deletes_and_warns_about_the_file(tmp_path: Path) -> None:
    env = process_env(tmp_path, NEWSLETTER_SUBSCRIBERS_DIR=str(
        write_people(tmp_path / "subs", ["ada@example.org", "bob@example.org"])))
    assert run(env, "subscribers", "list").returncode == 0
    refused = subprocess.run([sys.executable, "-m", "newsletter", "subscribers", "forget",
                              "ada@example.org"], env=env, input="n\n", capture_output=True,
                             text=True, timeout=120)
    assert refused.returncode == 1
    assert len(load_subscribers(database(env), statuses=None)) == 2
    done = run(env, "subscribers", "forget", "ada@example.org", "--yes")
    assert done.returncode == 0, done.stderr
    assert "Deleted ada@example.org" in done.stdout and "still listed" in done.stdout
    assert [s.email for s in load_subscribers(database(env), statuses=None)] == [BOB.email]
    unknown = run(env, "subscribers", "forget", "nobody@example.org", "--yes")
    assert unknown.returncode == 2 and "not a subscriber" in unknown.stderr


def test_papers_are_loaded_by_id_in_one_call_and_unknown_ids_left_out(engine: Engine) -> None:
    stored = [Paper(id=f"p{i}", title=f"Paper {i}", abstract="x") for i in range(3)]
    save_papers(engine, [(p, p.title.lower()) for p in stored], [], now=NOW)
    found = load_papers_by_id(engine, {"p2", "p0", "gone"}, chunk=1)
    assert [p.id for p in found] == ["p0", "p2"] and found[1].title == "Paper 2"


def test_a_library_finds_its_papers_by_arxiv_id_or_title_without_the_whole_catalog(
        engine: Engine) -> None:
    from newsletter.library import lookup_keys, match_library
    stored = [Paper(id="2401.00001", arxiv_id="2401.00001", title="Graph Nets", abstract="x"),
              Paper(id="slug-one", title="Optimal Transport, Revisited", abstract="x"),
              Paper(id="other", title="Something else", abstract="x")]
    save_papers(engine, [(p, title_key(p.title)) for p in stored], [], now=NOW)
    given = [OwnPaper(key="arxiv:2401.00001", title=""),
             OwnPaper(key="smith2024", title="optimal transport: revisited"),
             OwnPaper(key="nobody", title="Not in the catalog")]
    found = load_papers_like(engine, *lookup_keys(given))
    assert [p.id for p in found] == ["2401.00001", "slug-one"]
    assert [o.paper_id for o in match_library(given, found)] == ["2401.00001", "slug-one", None]
