from __future__ import annotations

import json
from datetime import UTC, date, datetime

from paths import FIXTURES

from newsletter.catalog.sources.hf import parse_hf_daily
from newsletter.models import Link

TODAY = date(2026, 11, 23)


def parse(text: str):
    return parse_hf_daily(text, "hf.json", TODAY)


def item(**paper) -> dict:
    return {"paper": {"id": "2611.00001", "title": "A Title", **paper}}


def test_the_fixture_day_parses_every_item_with_fields_read_where_they_are() -> None:
    papers, problems = parse((FIXTURES / "hf_daily.json").read_text())
    assert problems == []
    assert [p.id for p in papers] == ["2611.03456", "2611.01234", "2611.02345", "2611.05678",
                                      "2611.07890"]
    forward = papers[1]
    assert (forward.arxiv_id, forward.title) == ("2611.01234",
                                                 "Forward Learning of Graph Neural Networks")
    assert forward.authors == ("Namyong Park", "Xing Wang", "Antoine Simoulin", "Shuai Yang")
    assert forward.abstract.startswith("Graph neural networks are trained")
    assert not forward.abstract.endswith("\n")
    assert forward.published == date(2026, 11, 20)  # paper.publishedAt: the paper's own date
    assert forward.listed_at == datetime(2026, 11, 22, 13, tzinfo=UTC)  # item.publishedAt
    assert (forward.upvotes, forward.comments, forward.github_stars) == (87, 6, 412)
    assert forward.links == (Link("code", "https://github.com/example/forwardgnn"),
                             Link("project", "https://example.github.io/forwardgnn"))
    assert forward.ai_summary.startswith("ForwardGNN trains")
    assert forward.keywords == ("forward learning", "graph neural networks", "local objectives")
    assert forward.url == "https://huggingface.co/papers/2611.01234"
    assert forward.thumbnail.endswith("/2611.01234.png")
    assert forward.sources == ("hf.json",)


def test_missing_and_null_optional_fields_are_tolerated() -> None:
    papers, _ = parse((FIXTURES / "hf_daily.json").read_text())
    bare = papers[2]  # no ai_summary, keywords, repo, stars, thumbnail keys at all
    nulls = papers[3]  # the same fields present as null
    for paper in (bare, nulls):
        assert (paper.ai_summary, paper.keywords, paper.links, paper.github_stars,
                paper.thumbnail) == (None, (), (), None, None)
    assert (bare.upvotes, bare.comments) == (40, 2)


def test_optional_fields_of_the_wrong_type_are_ignored_not_fatal() -> None:
    text = json.dumps([item(upvotes="many", githubStars=True, ai_keywords="a, b",
                            githubRepo="javascript:alert(1)", authors=[{"name": 3}, "Ada"],
                            publishedAt="yesterday")])
    (paper,), problems = parse(text)
    assert problems == []
    assert (paper.upvotes, paper.github_stars, paper.keywords, paper.links, paper.authors,
            paper.published) == (None, None, (), (), (), None)


def test_the_title_falls_back_to_the_item_and_a_missing_one_rejects_that_item_only() -> None:
    text = json.dumps([{"paper": {"id": "2611.00001"}, "title": "From The Item"},
                       {"paper": {"id": "2611.00002v3", "title": "  "}},
                       {"no paper": True},
                       item()])
    papers, problems = parse(text)
    assert [p.title for p in papers] == ["From The Item", "A Title"]
    assert [str(p) for p in problems] == [
        "hf.json:item 2: the paper 2611.00002v3 has no title: skipped",
        ("hf.json:item 3: no 'paper' object in this item: each item of the list holds one, "
         "with the paper's id and title")]


def test_a_versioned_or_non_arxiv_id_gives_the_versionless_id_or_a_title_slug() -> None:
    papers, _ = parse(json.dumps([item(id="2611.00001v2"), item(id="not-arxiv", title="B")]))
    assert [(p.id, p.arxiv_id) for p in papers] == [("2611.00001", "2611.00001"), ("b", None)]
    assert papers[1].url is None


def test_a_cut_short_answer_is_one_problem_with_line_and_column() -> None:
    papers, problems = parse((FIXTURES / "hf_daily_broken.json").read_text())
    assert papers == []
    assert [p.location for p in problems] == ["hf.json:63:16"]
    assert "not valid JSON (unterminated string)" in problems[0].message


def test_answers_that_are_not_a_list_say_what_they_are() -> None:
    assert [str(p) for p in parse('{"error": "Invalid date"}')[1]] == [
        "hf.json: the API answered with an error: Invalid date"]
    assert "found a JSON object" in parse('{"papers": []}')[1][0].message
    assert parse("  \n")[1][0].location == "hf.json:1"
    assert parse("[]") == ([], [])  # a day without papers is not an error


def test_a_time_outside_the_calendar_once_in_utc_is_ignored_and_the_paper_kept() -> None:
    answer = [{**item(publishedAt="0001-01-01T00:00:00+05:00"),
               "publishedAt": "9999-12-31T23:00:00-05:00"},
              {"paper": {"id": "2611.00002", "title": "Other"}}]
    papers, problems = parse(json.dumps(answer))
    assert problems == []
    assert [(p.id, p.published, p.listed_at) for p in papers] == [
        ("2611.00001", None, None), ("2611.00002", None, None)]
