"""JSON Lines in the project's own paper schema: one JSON object per line, for any source
without a parser of its own (an export, a scraper, a hand-made list).

Fields (only ``title`` is required; ``id`` is accepted and ignored, the catalog assigns ids)::

    {"title": "...", "abstract": "...", "arxiv_id": "2403.01234v2", "authors": ["Ada", ...],
     "author_count": 5, "published": "2024-03-02", "url": "https://...",
     "links": [{"kind": "code", "url": "https://github.com/..."}], "upvotes": 42,
     "comments": 3, "clicks": 7, "github_stars": 120, "ai_summary": "...",
     "keywords": ["..."], "listed_at": "2024-03-04T13:52:07+00:00",
     "listed_year_inferred": false, "thumbnail": "https://..."}

``published`` is the paper's own date; ``listed_at`` when a list announced it (its news starts
there); ``listed_year_inferred`` says the list gave no year, so the one in ``listed_at`` is a
guess that digests never show.

This is our own format, so it is strict: a misspelt field or a wrong type rejects the line
with its number (a silently ignored "upvote" would be worse). Other lines go on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from newsletter.catalog.sources.ids import (
    MAX_COUNT,
    arxiv_id,
    bounded_count,
    one_line,
    paper_id,
    utc_moment,
)
from newsletter.models import Link, Paper, Problem, ProblemLog

Check = Callable[[Any], Any]  # returns the field's value, or raises ValueError saying why


def parse_jsonl(text: str, source: str, today: date) -> tuple[list[Paper], list[Problem]]:
    """Papers and Problems in one JSON Lines file; Problems carry ``{source}:{line}``."""
    papers: list[Paper] = []
    problems = ProblemLog(source)
    for no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            papers.append(_paper(_record(line), source, f"{source}:{no}"))
        except ValueError as exc:
            problems.append(Problem(f"{source}:{no}", f"{exc}; this line was skipped"))
    if not papers and not problems:
        problems.append(Problem(f"{source}:1", "the file is empty: expected one JSON object "
                                               "per line, each with at least a title"))
    return papers, problems.done()


def paper_record(paper: Paper) -> dict[str, Any]:
    """``paper`` in this schema (for exports); ``parse_jsonl`` reads it back."""
    record = {
        "id": paper.id, "title": paper.title, "abstract": paper.abstract,
        "arxiv_id": paper.arxiv_id, "authors": list(paper.authors),
        "author_count": paper.author_count,
        "published": paper.published.isoformat() if paper.published else None,
        "url": paper.url, "links": [{"kind": l.kind, "url": l.url} for l in paper.links],
        "upvotes": paper.upvotes, "comments": paper.comments, "clicks": paper.clicks,
        "github_stars": paper.github_stars, "ai_summary": paper.ai_summary,
        "keywords": list(paper.keywords),
        "listed_at": paper.listed_at.isoformat() if paper.listed_at else None,
        "listed_year_inferred": paper.listed_year_inferred or None,
        "thumbnail": paper.thumbnail,
    }
    return {key: value for key, value in record.items() if value not in (None, [])}


def _record(line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        reason = exc.msg.removesuffix(" at").removesuffix(" starting").lower()
        raise ValueError(f"not valid JSON ({reason}, column {exc.colno})") from None
    if not isinstance(record, dict):
        raise ValueError("expected a JSON object ({...}) on this line")
    unknown = sorted(set(record) - set(FIELDS) - {"id"})
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (known: {', '.join(FIELDS)})")
    return record


def _paper(record: dict[str, Any], source: str, where: str) -> Paper:
    values = {}
    for name, check in FIELDS.items():
        if record.get(name) is not None:
            try:
                values[name] = check(record[name])
            except ValueError as exc:
                raise ValueError(f"field {name!r}: {exc}") from None
    if not values.get("title"):
        raise ValueError("no title: every line needs a non-empty \"title\"")
    arxiv = values.pop("arxiv_id", None)
    values.setdefault("abstract", "")
    return Paper(id=paper_id(arxiv, values["title"]), arxiv_id=arxiv, sources=(source,),
                 origin=where, **values)


# -- field checks ------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, found {value!r}")
    return one_line(value)


def _count(value: Any) -> int:
    count = bounded_count(value)
    if count is None:
        raise ValueError(f"expected a whole number from 0 to {MAX_COUNT}, found {value!r}")
    return count


def _texts(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of strings, found {value!r}")
    return tuple(filter(None, map(_text, value)))


def _url(value: Any) -> str:
    url = _text(value)
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"expected an http(s) URL, found {url!r}")
    return url


def _links(value: Any) -> tuple[Link, ...]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError('expected a list of {"kind": ..., "url": ...} objects')
    return tuple(Link(_text(v.get("kind")), _url(v.get("url"))) for v in value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, found {value!r}")
    return value


def _arxiv(value: Any) -> str:
    found = arxiv_id(_text(value))
    if found is None:
        raise ValueError(f"{value!r} is not an arXiv id (like 2403.01234 or 2403.01234v2)")
    return found


def _day(value: Any) -> date:
    try:
        return date.fromisoformat(_text(value))
    except ValueError:
        raise ValueError(f"expected a date like 2024-03-02, found {value!r}") from None


def _moment(value: Any) -> datetime:
    moment = utc_moment(_text(value)) if isinstance(value, str) else None
    if moment is None:
        raise ValueError(f"expected a time like 2024-03-04T13:52:07Z, found {value!r}")
    return moment


FIELDS: dict[str, Check] = {
    "title": _text, "abstract": _text, "arxiv_id": _arxiv, "authors": _texts,
    "author_count": _count, "published": _day, "url": _url, "links": _links,
    "upvotes": _count, "comments": _count, "clicks": _count, "github_stars": _count,
    "ai_summary": _text, "keywords": _texts, "listed_at": _moment,
    "listed_year_inferred": _flag, "thumbnail": _url,
}
