from __future__ import annotations

from dataclasses import replace
from datetime import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from newsletter.errors import ConfigError
from newsletter.models import OwnPaper
from newsletter.subscribers import parse_subscribers, read_listed, read_subscriber_files

GOOD = """
[[subscriber]]
email = "Ada@Example.org"
name = "Ada Lovelace"
topics = ["GNN", "  graph   contrastive learning "]
max_papers = 8
frequency = "weekly"
weekday = "friday"
send_time = "08:30"
timezone = "Europe/Paris"
"""


def test_a_valid_entry_becomes_a_subscriber_with_normalized_fields() -> None:
    subs, problems = parse_subscribers(GOOD, "team.toml")
    assert problems == []
    (sub,) = subs
    assert sub.email == "ada@example.org"
    assert sub.topics == ("GNN", "graph contrastive learning")
    assert (sub.frequency, sub.weekday, sub.send_time) == ("weekly", 4, time(8, 30))
    assert sub.origin == "team.toml:2"


@pytest.mark.parametrize("body, expected", [
    ('email = "not-an-address"\ntopics = ["GNN"]', "invalid address 'not-an-address'"),
    ('email = "a@example.org"\ntopics = []', "topics"),
    ('email = "a@example.org"\ntopics = ["GNN"]\ncolour = "red"', "colour: unknown field"),
    ('email = "a@example.org"\nname = "Eve\\nBcc: all@example.org"\ntopics = ["GNN"]',
     "name must be a single line"),
    ('email = "a@example.org"\ntopics = ["GNN"]\ntimezone = "Mars/Olympus"', "unknown timezone"),
    ('email = "a@example.org"\ntopics = ["GNN"', "not valid TOML"),
    ('email = "a@example.org"\ntopics = ["GNN"]\nmax_papers = 0', "max_papers"),
])
def test_an_invalid_entry_is_reported_with_its_line_and_the_others_still_load(
        body: str, expected: str) -> None:
    text = f"# list\n\n[[subscriber]]\n{body}\n{GOOD}"
    subs, problems = parse_subscribers(text, "team.toml")
    assert [s.email for s in subs] == ["ada@example.org"]
    (problem,) = problems
    assert problem.location == "team.toml:3"
    assert expected in problem.message


def test_a_toml_error_names_the_line_in_the_file_not_in_the_entry() -> None:
    text = GOOD + '\n[[subscriber]]\nemail = "b@example.org"\nmax_papers = = 3\n'
    _, (problem,) = parse_subscribers(text, "team.toml")
    assert problem.location == "team.toml:12"
    assert "line 14" in problem.message


def test_settings_outside_any_subscriber_table_are_reported() -> None:
    subs, (problem,) = parse_subscribers('email = "x@example.org"\n' + GOOD, "team.toml")
    assert problem.location == "team.toml:1" and "outside a [[subscriber]]" in problem.message
    assert len(subs) == 1


@pytest.mark.parametrize("header", ["[[subscribr]]", "[[Subscriber]]", '[[ "subscriber" ]]'])
def test_a_misspelt_subscriber_line_is_reported_not_merged_into_the_entry_above(
        header: str) -> None:
    # TOML reads it as another table of the entry above: the person under it vanished silently.
    text = GOOD + f'\n{header}\nemail = "bob@example.org"\ntopics = ["OT"]\n'
    subs, (problem,) = parse_subscribers(text, "team.toml")
    assert [s.email for s in subs] == ["ada@example.org"]
    assert problem.location == "team.toml:12"
    assert header in problem.message and "[[subscriber]]" in problem.message


def test_a_duplicate_address_across_files_keeps_the_first(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD)
    (tmp_path / "b.toml").write_text(GOOD.replace("Ada Lovelace", "Someone Else"))
    subs, (problem,) = read_subscriber_files(tmp_path)
    assert [s.name for s in subs] == ["Ada Lovelace"]
    assert problem.location == f"{tmp_path / 'b.toml'}:2"
    assert "duplicate address ada@example.org" in problem.message
    assert f"{tmp_path / 'a.toml'}:2" in problem.message


def test_a_missing_folder_is_a_configuration_error_not_an_empty_list(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="NEWSLETTER_SUBSCRIBERS_DIR: no such folder"):
        read_subscriber_files(tmp_path / "nope")


def test_the_shipped_example_list_is_valid_and_spans_abbreviations() -> None:
    subs, problems = read_subscriber_files(Path(__file__).parent.parent / "subscribers")
    assert problems == []
    assert len(subs) >= 6
    topics = {t for s in subs for t in s.topics}
    assert {"GNN", "PINNs", "NAS", "NTK", "INR", "OT"} <= topics


# -- a person's own papers: `papers = [...]` and `library = "file.bib"` -------------------------

OWN = """[[subscriber]]
email = "ada@example.org"
topics = ["GNN"]
papers = [
  "2401.01234v2",
  "my best paper",
  "https://arxiv.org/abs/hep-th/9901001",
]
library = "ada.bib"

[[subscriber]]
email = "bob@example.org"
topics = ["GNN"]
library = "nowhere.bib"
"""

ADA_BIB = """@article{graphs, title = {Graphs {\\"u}ber alles}, eprint = {2401.01234},
  abstract = {Message passing.}}
@misc{broken, author = {Nobody}}
@misc{zotero, title = {Outside the catalog}, abstract = {Its own words.}}
"""


def test_own_papers_and_a_library_file_are_read_and_each_bad_one_named_by_file_and_line(
        tmp_path: Path) -> None:
    (tmp_path / "team.toml").write_text(OWN)
    (tmp_path / "ada.bib").write_text(ADA_BIB)
    listed, problems = read_listed(tmp_path)
    ada, bob = listed
    assert [p.key for p in ada.own] == ["arxiv:2401.01234", "arxiv:hep-th/9901001", "zotero"]
    assert ada.own[0].title == "Graphs über alles"  # the library's entry wins over a bare id
    assert ada.own[0].abstract == "Message passing."
    assert bob.own == ()
    found = {(p.location, p.message.split(":")[0]) for p in problems}
    assert (f"{tmp_path}/team.toml:6", "papers") in found
    assert f"{tmp_path}/ada.bib:3" in {p.location for p in problems}
    missing = next(p for p in problems if "nowhere.bib" in p.message)
    assert missing.location == f"{tmp_path}/team.toml:11"  # bob's entry
    assert len(problems) == 3
    # the people are still listed, as before
    assert [s.email for s in read_subscriber_files(tmp_path)[0]] == [
        "ada@example.org", "bob@example.org"]


def test_the_sync_stores_a_file_library_and_an_entry_without_one_empties_it(
        tmp_path: Path, engine) -> None:
    from newsletter.store.readers import library_of, replace_library
    from newsletter.store.subscribers import load_subscribers, sync_subscribers
    from newsletter.subscribers import store_libraries

    (tmp_path / "team.toml").write_text(OWN)
    (tmp_path / "ada.bib").write_text(ADA_BIB)
    listed, _ = read_listed(tmp_path)
    sync_subscribers(engine, [entry.subscriber for entry in listed])
    ids = {s.email: s.id for s in load_subscribers(engine)}
    replace_library(engine, ids["ada@example.org"], [OwnPaper(key="web1", title="Web")], "web")
    store_libraries(engine, listed)
    assert [p.key for p in library_of(engine, ids["ada@example.org"])] == [
        "web1", "arxiv:2401.01234", "arxiv:hep-th/9901001", "zotero"]
    (tmp_path / "team.toml").write_text(OWN.replace('library = "ada.bib"', "")
                                        .replace('  "2401.01234v2",\n', ""))
    listed, _ = read_listed(tmp_path)
    store_libraries(engine, [replace(entry, own=()) for entry in listed])
    assert [p.key for p in library_of(engine, ids["ada@example.org"])] == ["web1"]


def test_a_file_saved_with_a_byte_order_mark_loses_no_entry(tmp_path: Path) -> None:
    # Notepad's "UTF-8 with BOM": the first line is U+FEFF then "[[subscriber]]".
    (tmp_path / "team.toml").write_bytes(b"\xef\xbb\xbf" + GOOD.lstrip().encode())
    assert [s.email for s in read_subscriber_files(tmp_path)[0]] == ["ada@example.org"]
    assert read_subscriber_files(tmp_path)[1] == []


# -- what a broken entry or an unreadable file does to the people already stored ---------------

CAROL = '[[subscriber]]\nemail = "carol@example.org"\ntopics = ["OT"]\n'


def _statuses(engine: Engine) -> dict[str, str]:
    from newsletter.store.subscribers import load_subscribers

    return {s.email: s.status for s in load_subscribers(engine, statuses=None)}


def _sync(engine: Engine, folder: Path) -> None:
    from newsletter.cli.common import sync_files
    from newsletter.settings import Settings

    sync_files(engine, Settings(_env_file=None, subscribers_dir=folder))  # type: ignore[call-arg]


def test_an_entry_that_cannot_be_read_keeps_that_person_as_stored_until_it_is_fixed(
        tmp_path: Path, engine) -> None:
    from newsletter.store.readers import library_of
    from newsletter.store.subscribers import load_subscribers

    team = tmp_path / "team.toml"
    team.write_text(OWN.replace('library = "nowhere.bib"', ""))
    (tmp_path / "other.toml").write_text(CAROL)
    _sync(engine, tmp_path)
    ada_id = next(s.id for s in load_subscribers(engine) if s.email == "ada@example.org")
    assert library_of(engine, ada_id)
    # A typo in one field of Ada's entry: reported and skipped, but she is no less subscribed
    # (and keeps her papers); Bob, deleted from the file, is removed; Carol is untouched.
    team.write_text(OWN.split("[[subscriber]]\nemail = \"bob")[0]
                    .replace("topics =", "max_papers = 500\ntopics ="))
    _sync(engine, tmp_path)
    assert _statuses(engine) == {"ada@example.org": "active", "bob@example.org": "removed",
                                 "carol@example.org": "active"}
    assert library_of(engine, ada_id)
    # Fixed, then deleted: now she goes.
    team.write_text("")
    _sync(engine, tmp_path)
    assert _statuses(engine)["ada@example.org"] == "removed"


def test_a_file_that_cannot_be_read_keeps_its_people_as_stored(tmp_path: Path, engine) -> None:
    team = tmp_path / "team.toml"
    team.write_text(OWN.replace('library = "nowhere.bib"', ""))
    (tmp_path / "other.toml").write_text(CAROL)
    _sync(engine, tmp_path)
    # Saved as UTF-16 ("Unicode" in Notepad): not one entry of it can be read.
    team.write_bytes(team.read_text().encode("utf-16"))
    _sync(engine, tmp_path)
    assert set(_statuses(engine).values()) == {"active"}
