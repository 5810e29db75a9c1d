from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from paths import FIXTURES

from newsletter.catalog.sources.formats import (
    read_feed,
    read_hf_daily,
    read_jsonl,
    read_seed_page,
    read_source,
    reader_for,
)


@pytest.mark.parametrize("fixture, name, reader", [
    # URLs without a telling suffix: the content decides.
    ("hf_daily.json", "https://huggingface.co/api/daily_papers?date=2026-11-22", read_hf_daily),
    ("arxiv_api.xml", "http://export.arxiv.org/api/query?search_query=cat:cs.LG", read_feed),
    ("arxiv_rss.xml", "https://rss.arxiv.org/rss/cs.LG", read_feed),
    ("papers.jsonl", "https://example.org/export", read_jsonl),
    # Misnamed files: the content decides too.
    ("papers.jsonl", "papers.json", read_jsonl),
    ("arxiv_rss.xml", "listing.json", read_feed),
    # Names alone, when the content says nothing.
    ("seed_page.txt", "page.txt", read_seed_page),
    ("seed_page.txt", "https://example.org/page.txt", read_seed_page),
])
def test_the_format_is_detected_by_content_then_by_name(fixture: str, name: str, reader) -> None:
    assert reader_for((FIXTURES / fixture).read_bytes(), name) is reader


def test_a_txt_name_is_a_seed_page_even_if_a_title_starts_with_a_bracket() -> None:
    assert reader_for(b"[Re] Reproducing Deep Nets\nAn abstract...", "x.txt") is read_seed_page


def test_a_bom_and_leading_whitespace_do_not_hide_the_format() -> None:
    assert reader_for(b"\xef\xbb\xbf\n  [ ]", "https://x.example/api") is read_hf_daily


def test_unknown_content_without_a_known_name_is_one_clear_problem() -> None:
    papers, problems = read_source(b"%PDF-1.7", "paper.pdf", "in/paper.pdf", date(2026, 11, 23))
    assert papers == []
    assert [p.location for p in problems] == ["in/paper.pdf"]
    assert "unknown file type '.pdf'" in problems[0].message


def test_an_html_page_at_a_feed_url_says_so() -> None:
    page = b"<!DOCTYPE html>\n<html><body>Login</body></html>"
    papers, problems = read_source(page, "https://x.example/rss", "https://x.example/rss",
                                   date(2026, 11, 23))
    assert papers == [] and "an HTML page, not a feed" in problems[0].message


def test_plain_text_served_without_a_telling_name_is_read_as_a_seed_page() -> None:
    page = (FIXTURES / "seed_page.txt").read_bytes()
    assert reader_for(page, "https://example.org/papers", "text/plain; charset=utf-8") \
        is read_seed_page
    assert reader_for(page, "https://example.org/papers", "text/html") is None
