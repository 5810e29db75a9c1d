"""Parser for arXiv feeds: Atom API answers (``export.arxiv.org/api/query``) and RSS listings
(``rss.arxiv.org/rss/cs.LG``), both read with feedparser.

The two differ where it matters: the API gives one ``<author>`` per person, the abstract in
``<summary>`` and code links in ``<arxiv:comment>``; RSS gives every author in one
``<dc:creator>`` ("A, B, C") and prefixes the abstract with "arXiv:2403.01234v2 Announce Type:
new Abstract:". Ids carry versions in both (…/abs/2403.01234v2, oai:arXiv.org:2403.01234v2):
they are stored without, so v1 and v2 are one paper. Other feeds parse too, keyed by title.

Dates: the API's ``<published>`` is the paper's (v1's) date. An RSS item's ``<pubDate>`` is the
day the listing announced it (``listed_at``); for a new paper (or its cross-listing) that is
also its publication, for a "replace" it is not.
"""

from __future__ import annotations

import html
import io
import re
from datetime import UTC, date, datetime
from typing import Any

import feedparser

from newsletter.catalog.sources.ids import arxiv_id, one_line, paper_id
from newsletter.catalog.sources.seedpage import code_links
from newsletter.models import Link, Paper, Problem, ProblemLog

ABS_URL = "https://arxiv.org/abs/{}"
_RSS_PREFIX = re.compile(r"^arXiv:\S+\s+Announce Type:\s*\S+\s*(?:Abstract:\s*)?", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")


def parse_arxiv_feed(data: bytes, source: str, today: date) -> tuple[list[Paper], list[Problem]]:
    """Papers and Problems in one Atom or RSS document; ``source`` is the file or URL."""
    # A stream, not bytes or str: feedparser takes a string that looks like a URL or a file
    # name for one and opens it.
    feed = feedparser.parse(io.BytesIO(data))
    problem = _document_problem(feed, data, source)
    if problem is not None:
        return [], [problem]
    rss = feed.version.startswith("rss")
    papers: list[Paper] = []
    problems = ProblemLog(source)
    for n, entry in enumerate(feed.entries, start=1):
        paper = _entry(entry, rss, source, f"{source}:entry {n}")
        if paper is None:
            problems.append(Problem(f"{source}:entry {n}", "this entry has no title: skipped"))
        else:
            papers.append(paper)
    return papers, problems.done()


def _document_problem(feed: Any, data: bytes, source: str) -> Problem | None:
    """Why the whole document is unusable, or None. A feed that is not well-formed is rejected
    whole: what feedparser salvages from it may be cut mid-abstract."""
    if not data.strip():
        return Problem(f"{source}:1", "the feed is empty: fetch or save it again")
    error = feed.get("bozo_exception") if feed.get("bozo") else None
    if error is not None and not isinstance(error, feedparser.ThingsNobodyCaresAboutButMe):
        line = _call(error, "getLineNumber")
        column = _call(error, "getColumnNumber")
        where = f"{source}:{line}:{column + 1}" if line and column is not None else source
        message = one_line(str(_call(error, "getMessage") or error))
        return Problem(where, f"not a well-formed feed ({message}): the file is damaged or cut "
                              "short; fetch or save it again (nothing from it was stored)")
    if not feed.get("version"):
        return Problem(source, "not an Atom or RSS feed: check the URL or the file")
    if feed.entries and "/api/errors" in feed.entries[0].get("id", ""):
        # The arXiv API reports a bad query as a feed whose only entry is the error.
        return Problem(source, "the arXiv API answered with an error: "
                               f"{one_line(feed.entries[0].get('summary', ''))}")
    return None


def _entry(entry: Any, rss: bool, source: str, where: str) -> Paper | None:
    title = one_line(entry.get("title", ""))
    if not title:
        return None
    arxiv = next(filter(None, (arxiv_id(entry.get(key)) for key in ("id", "link"))), None)
    abstract = _abstract(entry)
    comment = entry.get("arxiv_comment", "")
    urls = code_links(f"{abstract} {comment}")
    # A "replace" announcement lists a new version of an old paper: its date is not the paper's.
    replaced = entry.get("arxiv_announce_type", "").startswith("replace")
    return Paper(
        id=paper_id(arxiv, title), title=title, abstract=abstract, arxiv_id=arxiv,
        authors=_authors(entry, rss), published=None if replaced else _day(entry),
        url=ABS_URL.format(arxiv) if arxiv else _http(entry.get("link")),
        links=tuple(Link("code", url) for url in urls), sources=(source,),
        listed_at=_moment(entry) if rss else None, origin=where,
    )


def _abstract(entry: Any) -> str:
    detail = entry.get("summary_detail") or {}
    text = entry.get("summary", "")
    if "html" in detail.get("type", ""):
        text = html.unescape(_TAG.sub(" ", text))
    return _RSS_PREFIX.sub("", one_line(text))


def _authors(entry: Any, rss: bool) -> tuple[str, ...]:
    names = [one_line(a.get("name", "")) for a in entry.get("authors", []) if a.get("name")]
    if rss and len(names) == 1:
        # <dc:creator>A, B and C</dc:creator>: one element for the whole list.
        names = re.split(r",\s*(?:and\s+)?|\s+and\s+", names[0])
    return tuple(name.strip() for name in names if name.strip())


def _day(entry: Any) -> date | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    moment = _calendar(parsed)
    return moment.date() if moment else None


def _moment(entry: Any) -> datetime | None:
    return _calendar(entry.get("published_parsed"))  # feedparser gives it in UTC


def _calendar(parsed: Any) -> datetime | None:
    # feedparser passes on year 0, and year 10000 once it has moved 9999-12-31 to UTC: such a
    # date is dropped, not allowed to reject the whole feed.
    try:
        return datetime(*parsed[:6], tzinfo=UTC) if parsed else None
    except (ValueError, OverflowError):
        return None


def _http(url: str | None) -> str | None:
    return url if url and url.startswith(("https://", "http://")) else None


def _call(obj: Any, name: str) -> Any:
    # Only SAX parse errors know their position; feedparser's own exceptions do not.
    method = getattr(obj, name, None)
    return method() if callable(method) else None
