from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from paths import FIXTURES

from newsletter.catalog.sources.arxiv import parse_arxiv_feed
from newsletter.catalog.sources.ids import arxiv_id
from newsletter.models import Link

TODAY = date(2026, 11, 23)


def parse(name_or_data: str | bytes, source: str = "feed.xml"):
    data = (name_or_data if isinstance(name_or_data, bytes)
            else (FIXTURES / name_or_data).read_bytes())
    return parse_arxiv_feed(data, source, TODAY)


@pytest.mark.parametrize("text, expected", [
    ("2611.01234", "2611.01234"), ("2611.01234v2", "2611.01234"), ("0704.0001", "0704.0001"),
    ("http://arxiv.org/abs/2611.01234v2", "2611.01234"),
    ("oai:arXiv.org:2611.01234v1", "2611.01234"), ("arXiv:2611.01234", "2611.01234"),
    ("https://huggingface.co/papers/2611.01234", "2611.01234"),
    ("hep-th/9901001v3", "hep-th/9901001"), ("http://arxiv.org/abs/math.CO/0309136v1",
                                             "math.CO/0309136"),
    ("https://blog.example/post/1234567", None), ("https://example.org/2024.12345", None),
    ("1.2611.01234", None), ("", None), (None, None),
])
def test_arxiv_ids_are_found_in_ids_urls_and_oai_identifiers_without_version(
        text: str | None, expected: str | None) -> None:
    assert arxiv_id(text) == expected


def test_an_atom_api_answer_gives_one_paper_per_entry_without_versions() -> None:
    papers, problems = parse("arxiv_api.xml", "api.xml")
    assert problems == []
    forward, ntk = papers
    assert (forward.id, forward.arxiv_id) == ("2611.01234", "2611.01234")  # the entry is v2
    assert forward.title == "Forward Learning of Graph Neural Networks"  # wrapped in the feed
    assert forward.abstract.startswith("Graph neural networks are trained with backprop")
    assert "\n" not in forward.abstract and forward.abstract.endswith("using less memory.")
    assert forward.authors == ("Namyong Park", "Xing Wang", "Antoine Simoulin", "Shuai Yang")
    assert forward.published == date(2026, 11, 20)  # v1's date, not v2's
    assert forward.url == "https://arxiv.org/abs/2611.01234"
    assert forward.links == (Link("code", "https://github.com/example/forwardgnn"),)  # comment
    assert ntk.links == (Link("code", "https://github.com/example/deq-ntk"),)  # abstract
    assert forward.sources == ("api.xml",)


def test_an_rss_listing_strips_the_announcement_and_splits_the_creators() -> None:
    papers, problems = parse("arxiv_rss.xml", "rss.xml")
    assert problems == []
    pino, ot = papers
    assert (pino.id, pino.published) == ("2611.02345", date(2026, 11, 23))
    assert pino.abstract.startswith("Physics-informed neural networks (PINNs) struggle")
    assert pino.authors == ("Ana Lima", "Bo Chen", "Cy Diaz")
    assert ot.title == "Optimal Transport Barycenters & Their Gradients, Revisited"
    assert ot.authors == ("Jean Dupont", "Marie Curie")
    assert ot.published is None  # a "replace" announces a new version of an old paper
    assert ot.code_url == "https://github.com/example/ot-bary"


def test_an_rss_item_is_listed_on_its_announcement_day_an_api_entry_is_not_listed() -> None:
    pino, ot = parse("arxiv_rss.xml", "rss.xml")[0]
    announced = datetime(2026, 11, 23, 5, tzinfo=UTC)  # Mon, 23 Nov 2026 00:00:00 -0500
    assert (pino.listed_at, ot.listed_at) == (announced, announced)
    assert {p.listed_at for p in parse("arxiv_api.xml", "api.xml")[0]} == {None}


@pytest.mark.parametrize("name, where, says", [
    ("arxiv_api_broken.xml", "feed.xml:24:7", "mismatched tag"),
    ("arxiv_rss_broken.xml", "feed.xml:24:18", "no element found"),
])
def test_a_malformed_feed_is_rejected_whole_with_line_and_column(
        name: str, where: str, says: str) -> None:
    papers, problems = parse(name)
    assert papers == []
    assert [p.location for p in problems] == [where]
    assert says in problems[0].message and "nothing from it was stored" in problems[0].message


def test_documents_that_are_not_feeds_or_are_api_errors_are_one_problem() -> None:
    assert "not an Atom or RSS feed" in parse(b"<note><to>Tove</to></note>")[1][0].message
    assert parse(b"")[1][0].location == "feed.xml:1"
    error = (b'<feed xmlns="http://www.w3.org/2005/Atom"><entry>'
             b"<id>http://arxiv.org/api/errors#incorrect_id_format_for_1234</id>"
             b"<title>Error</title><summary>incorrect id format for 1234</summary></entry></feed>")
    assert [str(p) for p in parse(error)[1]] == [
        "feed.xml: the arXiv API answered with an error: incorrect id format for 1234"]


def test_an_entry_without_a_title_is_skipped_with_its_position() -> None:
    feed = (b'<rss version="2.0"><channel><title>t</title>'
            b"<item><title>Kept</title><link>https://x.example/1</link></item>"
            b"<item><description>no title</description></item></channel></rss>")
    papers, problems = parse(feed)
    assert [(p.title, p.id, p.arxiv_id, p.url) for p in papers] == [
        ("Kept", "kept", None, "https://x.example/1")]  # any RSS feed works, keyed by title
    assert [p.location for p in problems] == ["feed.xml:entry 2"]


def test_a_source_that_looks_like_a_path_is_never_opened(tmp_path: Path) -> None:
    # feedparser opens a str it takes for a file name or URL; we hand it a stream.
    secret = tmp_path / "secret.xml"
    secret.write_bytes((FIXTURES / "arxiv_rss.xml").read_bytes())
    papers, problems = parse(str(secret).encode())
    assert papers == [] and problems


@pytest.mark.parametrize("stamp", ["0000-01-01T00:00:00Z", "9999-12-31T23:00:00-05:00"])
def test_an_entry_dated_outside_the_calendar_loses_its_date_not_the_feed(stamp: str) -> None:
    # feedparser hands over year 0 or, once in UTC, year 10000: date() refuses both.
    feed = ('<feed xmlns="http://www.w3.org/2005/Atom"><title>q</title><id>x</id>'
            f"<entry><id>http://arxiv.org/abs/2611.00001v1</id><title>Odd</title>"
            f"<published>{stamp}</published></entry>"
            "<entry><id>http://arxiv.org/abs/2611.00002v1</id><title>Fine</title>"
            "<published>2026-11-20T00:00:00Z</published></entry></feed>").encode()
    papers, problems = parse(feed)
    assert problems == []
    assert [(p.id, p.published) for p in papers] == [
        ("2611.00001", None), ("2611.00002", date(2026, 11, 20))]
