from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime

from paths import FIXTURES

from newsletter.catalog.sources.jsonl import paper_record, parse_jsonl
from newsletter.models import Link, Paper

TODAY = date(2026, 11, 23)


def parse(text: str):
    return parse_jsonl(text, "p.jsonl", TODAY)


def test_the_fixture_reads_every_line_and_ids_follow_arxiv_id_else_title() -> None:
    papers, problems = parse((FIXTURES / "papers.jsonl").read_text())
    assert problems == []
    sae, forward, trm = papers
    assert (sae.id, sae.arxiv_id, sae.clicks) == (
        "sparse-autoencoders-for-protein-language-models", None, 4)
    assert sae.links == (Link("code", "https://github.com/example/sae-plm"),)
    assert (sae.published, sae.url) == (date(2026, 11, 18), "https://openreview.net/forum?id=abc123")
    assert (forward.id, forward.arxiv_id, forward.abstract) == ("2611.01234", "2611.01234", "")
    assert trm.listed_at == datetime(2026, 11, 22, 8, tzinfo=UTC)
    assert trm.keywords == ("recursion", "reasoning")
    assert all(p.sources == ("p.jsonl",) for p in papers)


def test_a_record_round_trips_through_the_schema() -> None:
    paper = Paper(
        id="2611.00001", arxiv_id="2611.00001", title="T", abstract="A", authors=("Ada",),
        author_count=3, published=date(2026, 11, 1), url="https://arxiv.org/abs/2611.00001",
        links=(Link("code", "https://github.com/a/b"),), upvotes=5, comments=1, clicks=2,
        github_stars=7, ai_summary="S", keywords=("k",),
        listed_at=datetime(2026, 11, 2, 3, tzinfo=UTC), thumbnail="https://t.example/x.png")
    (back,), problems = parse(json.dumps(paper_record(paper)))
    assert problems == []
    assert back == replace(paper, sources=("p.jsonl",))


def test_each_bad_line_is_one_problem_with_its_line_and_the_others_are_read() -> None:
    papers, problems = parse((FIXTURES / "papers_broken.jsonl").read_text())
    assert [p.title for p in papers] == ["A Fine Paper"]
    where = {p.location: p.message for p in problems}
    assert list(where) == [f"p.jsonl:{n}" for n in (2, 3, 4, 5, 6)]
    assert where["p.jsonl:2"].startswith("not valid JSON (unterminated string, column 36)")
    assert where["p.jsonl:3"].startswith("unknown field 'upvote' (known: title,")
    assert where["p.jsonl:4"].startswith("expected a JSON object")
    assert where["p.jsonl:5"].startswith("no title")
    assert where["p.jsonl:6"].startswith("field 'published': expected a date like 2024-03-02")
    assert all(m.endswith("this line was skipped") for m in where.values())


def test_wrong_types_are_rejected_naming_the_field() -> None:
    lines = [{"title": "T", "upvotes": -1}, {"title": "T", "upvotes": True},
             {"title": "T", "authors": "Ada"}, {"title": "T", "url": "javascript:x"},
             {"title": "T", "arxiv_id": "nope"}, {"title": "T", "links": [{"kind": "code"}]}]
    papers, problems = parse("\n".join(json.dumps(line) for line in lines))
    assert papers == []
    assert [p.message.split(":")[0] for p in problems] == [
        "field 'upvotes'", "field 'upvotes'", "field 'authors'", "field 'url'",
        "field 'arxiv_id'", "field 'links'"]


def test_blank_lines_are_skipped_and_an_empty_file_is_a_problem() -> None:
    assert len(parse('\n{"title": "T"}\n\n')[0]) == 1
    assert [p.location for p in parse("\n\n")[1]] == ["p.jsonl:1"]


def test_a_time_outside_the_calendar_once_in_utc_rejects_that_line_only() -> None:
    # 0001-01-01 at +05:00 is in year 0 in UTC, 9999-12-31 23:00 at -05:00 in year 10000:
    # datetime raises OverflowError, not ValueError, for both.
    lines = [{"title": "A", "listed_at": "0001-01-01T00:00:00+05:00"},
             {"title": "B", "listed_at": "9999-12-31T23:00:00-05:00"}, {"title": "C"}]
    papers, problems = parse("\n".join(json.dumps(line) for line in lines))
    assert [p.title for p in papers] == ["C"]
    assert [(p.location, p.message.split(":")[0]) for p in problems] == [
        ("p.jsonl:1", "field 'listed_at'"), ("p.jsonl:2", "field 'listed_at'")]
