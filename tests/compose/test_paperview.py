"""What a paper shows: only dates a source stated, and arXiv links where the paper has an id."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

from paths import ROOT, SEEDS

from newsletter.catalog import ingest
from newsletter.compose.paperview import date_label, paper_url, paper_view
from newsletter.dispatch.deliver import Pipeline
from newsletter.models import DigestItem, Paper
from newsletter.settings import Settings
from newsletter.store.engine import connect
from newsletter.store.subscribers import load_subscribers, sync_subscribers
from newsletter.subscribers import read_subscriber_files

NOW = datetime(2026, 11, 23, 7, tzinfo=UTC)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# "Mar 11" (a page date) or "May 31, 2023" (an entry's date), alone on a line of a seed page
_STATED = re.compile(r"(?m)^\s*(?:·\s*)?([A-Z][a-z]{2}) (\d{1,2})(?:, (\d{4}))?\s*$")


def stated_dates() -> set[str]:
    """Every date the seed pages state, as a digest would print it: "11 Mar", "31 May 2023"."""
    found = set()
    for path in SEEDS.glob("*.txt"):
        for month, day, year in _STATED.findall(path.read_text("utf-8")):
            found.add(f"{int(day)} {month}" + (f" {year}" if year else ""))
    return found


def test_the_reading_groups_digests_show_only_dates_the_seed_pages_state(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    engine = connect(url)
    ingest.ingest(engine, [SEEDS], NOW)
    found, problems = read_subscriber_files(ROOT / "subscribers")
    assert not problems
    sync_subscribers(engine, found)
    pipeline = Pipeline.build(engine, Settings(database_url=url, secret_key="s",
                                               window_days=30), NOW)
    shown: list[tuple[str, str]] = []
    for reader in load_subscribers(engine):
        composed = pipeline.compose(reader, set(), "2026-11-23")
        assert composed is not None, reader.email
        for part in (composed.rendered.text, composed.rendered.html):
            shown += re.findall(r"(Published|Listed) (\d{1,2} [A-Z][a-z]{2}(?: \d{4})?)", part)
    assert shown, "the digests show no dates at all"
    stated = stated_dates()
    assert {when for _, when in shown} <= stated
    # A page date has no year, so no "Listed" shows one; "Published" comes from an entry's own
    # date, which always has one.
    assert all(not re.search(r"\d{4}$", when) for kind, when in shown if kind == "Listed")
    assert all(re.search(r"\d{4}$", when) for kind, when in shown if kind == "Published")
    assert "2026" not in " ".join(when for _, when in shown)  # no page states a 2026 date


def paper(**fields) -> Paper:
    return Paper(**{"id": "p", "title": "A title", "abstract": "Text.", **fields})


def test_a_publication_date_wins_over_a_listing() -> None:
    listed = datetime(2026, 3, 14, tzinfo=UTC)
    assert date_label(paper(published=date(2023, 5, 31), listed_at=listed)) == \
        "Published 31 May 2023"
    assert date_label(paper(listed_at=listed)) == "Listed 14 Mar 2026"
    assert date_label(paper(listed_at=listed, listed_year_inferred=True)) == "Listed 14 Mar"
    assert date_label(paper()) is None


def test_a_date_after_our_first_sighting_is_not_stated_as_a_fact() -> None:
    seen = datetime(2026, 3, 14, tzinfo=UTC)
    assert date_label(paper(published=date(9999, 1, 1), first_seen_at=seen,
                            listed_at=seen)) == "Listed 14 Mar 2026"
    assert date_label(paper(listed_at=datetime(9999, 1, 1, tzinfo=UTC), first_seen_at=seen)) \
        is None
    assert date_label(paper(published=date(2026, 3, 15), first_seen_at=seen)) == \
        "Published 15 Mar 2026"  # a day ahead: a time zone, believed


def test_an_arxiv_paper_links_to_its_abstract_page_and_pdf() -> None:
    hf = paper(arxiv_id="2403.01234", url="https://huggingface.co/papers/2403.01234")
    view = paper_view(1, DigestItem(hf, 1.0, "t", "r"))
    assert (view.url, view.pdf_url) == ("https://arxiv.org/abs/2403.01234",
                                        "https://arxiv.org/pdf/2403.01234")
    old_style = paper(arxiv_id="math.GT/0309136")
    assert paper_url(old_style) == "https://arxiv.org/abs/math.GT/0309136"


def test_a_paper_without_an_arxiv_id_keeps_its_own_link_and_has_no_pdf() -> None:
    own = paper(url="https://openreview.net/forum?id=x")
    assert paper_view(1, DigestItem(own, 1.0, "t", "r")).pdf_url is None
    assert paper_url(own) == "https://openreview.net/forum?id=x"
    assert paper_url(paper(title="Seed Only")).startswith(
        "https://arxiv.org/search/?searchtype=title&query=Seed+Only")
