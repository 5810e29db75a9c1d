"""Parser for the Hugging Face daily papers API (``/api/daily_papers?date=YYYY-MM-DD``).

The answer is a JSON list; each item is one listing on the daily page::

    {"paper": {"id": "2403.01234", "title": ..., "summary": ..., "authors": [{"name": ...}],
               "publishedAt": ..., "upvotes": 42, "ai_summary": ..., "ai_keywords": [...],
               "githubRepo": ..., "githubStars": 120, "projectPage": ...},
     "publishedAt": ...,  # when it was listed
     "numComments": 3, "thumbnail": ..., "submittedBy": {...}, "title": ...}

Fields are read where they are; optional ones may be missing or null, and an optional field of
the wrong type is ignored rather than rejecting the paper (the API adds and changes fields).
A paper without a title is rejected, with the item's position. The parser never raises.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from newsletter.catalog.sources.ids import (
    arxiv_id,
    bounded_count,
    one_line,
    paper_id,
    utc_moment,
)
from newsletter.models import Link, Paper, Problem, ProblemLog

PAPER_PAGE = "https://huggingface.co/papers/{}"


def parse_hf_daily(text: str, source: str, today: date) -> tuple[list[Paper], list[Problem]]:
    """Papers and Problems in one daily papers answer; ``source`` is the file or URL."""
    if not text.strip():
        return [], [Problem(f"{source}:1", "the answer is empty: expected a JSON list of daily "
                                           "papers")]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        reason = exc.msg.removesuffix(" at").removesuffix(" starting").lower()
        return [], [Problem(f"{source}:{exc.lineno}:{exc.colno}",
                            f"not valid JSON ({reason}): the file is damaged or cut short; "
                            "fetch or save it again")]
    except ValueError as exc:  # valid JSON, but a number of thousands of digits
        return [], [Problem(source, f"not usable JSON ({exc}): the file is damaged; fetch or "
                                    "save it again")]
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return [], [Problem(source, f"the API answered with an error: {data['error']}")]
    if not isinstance(data, list):
        return [], [Problem(source, f"expected a JSON list of daily papers, found a JSON "
                                    f"{_kind(data)}: is this the /api/daily_papers answer?")]
    papers: list[Paper] = []
    problems = ProblemLog(source)
    for n, item in enumerate(data, start=1):
        paper = _item(item, f"{source}:item {n}", source, problems)
        if paper is not None:
            papers.append(paper)
    return papers, problems.done()


def _item(item: Any, where: str, source: str, problems: list[Problem]) -> Paper | None:
    if not isinstance(item, dict) or not isinstance(item.get("paper"), dict):
        problems.append(Problem(where, "no 'paper' object in this item: each item of the list "
                                       "holds one, with the paper's id and title"))
        return None
    paper: dict[str, Any] = item["paper"]
    title = one_line(_text(paper, "title") or _text(item, "title") or "")
    if not title:
        problems.append(Problem(where, f"the paper {_text(paper, 'id') or '(no id)'} has no "
                                       "title: skipped"))
        return None
    arxiv = arxiv_id(_text(paper, "id"))
    return Paper(
        id=paper_id(arxiv, title), title=title, abstract=one_line(_text(paper, "summary") or ""),
        arxiv_id=arxiv, authors=_authors(paper.get("authors")),
        published=_day(_text(paper, "publishedAt")),
        url=PAPER_PAGE.format(arxiv) if arxiv else None,
        links=_links(paper), upvotes=_count(paper, "upvotes"),
        comments=_count(item, "numComments"), sources=(source,),
        ai_summary=one_line(_text(paper, "ai_summary") or "") or None,
        keywords=_words(paper.get("ai_keywords")), github_stars=_count(paper, "githubStars"),
        listed_at=_moment(_text(item, "publishedAt")), thumbnail=_url(_text(item, "thumbnail")),
        origin=where,
    )


def _authors(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    names = (one_line(a["name"]) for a in value if isinstance(a, dict)
             and isinstance(a.get("name"), str))
    return tuple(name for name in names if name)


def _links(paper: dict[str, Any]) -> tuple[Link, ...]:
    found = [(kind, _url(_text(paper, key)))
             for kind, key in (("code", "githubRepo"), ("project", "projectPage"))]
    return tuple(Link(kind, url) for kind, url in found if url)


def _words(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(dict.fromkeys(one_line(v) for v in value if isinstance(v, str) and v.strip()))


def _text(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) and value.strip() else None


def _count(obj: dict[str, Any], key: str) -> int | None:
    # bool is an int in Python; a true/false count is a schema change, not a count. A count
    # past 2**31 is nonsense (and no database column would take it): ignored like a bad type.
    return bounded_count(obj.get(key))


def _url(value: str | None) -> str | None:
    value = (value or "").strip()
    return value if value.startswith(("https://", "http://")) else None


def _moment(value: str | None) -> datetime | None:
    return utc_moment(value) if value else None


def _day(value: str | None) -> date | None:
    moment = _moment(value)
    return moment.date() if moment else None


def _kind(value: Any) -> str:
    return {dict: "object", str: "string", int: "number", float: "number",
            bool: "boolean"}.get(type(value), "null")
