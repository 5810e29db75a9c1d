"""A paper as the digest templates show it, and the per-Renderer cache of what depends on the
paper alone: the same paper is in thousands of digests of a run, its number, reason and
(tracked) link are each subscriber's own. The cache also keeps the template fragments rendered
from the paper alone (``Shared.fragments``, see ``render.same_for_every_reader``).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date
from typing import Callable
from urllib.parse import quote, quote_plus, urlsplit

from newsletter.catalog.trending import stated_dates
from newsletter.models import DigestItem, Paper

EXCERPT_CHARS = 300
SUMMARY_CHARS = 240
KEYWORDS_SHOWN = 6
# English names by hand: strftime's follow the process locale.
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
_URL_BREAKERS = re.compile(r"[\s\x00-\x1f\x7f]")
ARXIV_ABS = "https://arxiv.org/abs/{}"
ARXIV_PDF = "https://arxiv.org/pdf/{}"
_ARXIV_ID = re.compile(r"^(\d{4}\.\d{4,5}|[a-z-]+(\.[A-Z]{2})?/\d{7})(v\d+)?$")


@dataclass(frozen=True, slots=True)
class PaperView:
    """A paper as both templates show it: text cleaned, links checked, excerpt cut."""

    number: int
    title: str
    url: str
    excerpt: str
    meta: tuple[str, ...]  # "Published 21 Nov 2026" or "Listed 14 Mar", "A, B et al.", ...
    code_url: str | None
    reason: str
    stars: str | None = None  # "1,234 stars" of the code repository
    project_url: str | None = None
    summary: str | None = None  # the AI summary, when the source has one
    keywords: str | None = None  # "diffusion, video generation", when there is no summary
    pdf_url: str | None = None  # arXiv papers: the PDF beside the abstract page
    # what every reader's view of this paper shares, in one Renderer
    shared: Shared | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True, eq=False)
class Shared:
    """One paper's parts that are the same in every digest: ``view`` has the reader's own fields
    (number, url, reason) empty, ``url`` is its link when clicks are not tracked, and
    ``fragments`` holds template output rendered from ``view`` alone, by template name."""

    paper: Paper  # keeps the paper alive, so no other object can take its id() while cached
    url: str
    view: PaperView
    fragments: dict[str, str] = field(default_factory=dict)


def paper_view(number: int, item: DigestItem,
               link: Callable[[Paper], str] | None = None) -> PaperView:
    return _assemble(number, item, link, _shared(item.paper))


def _shared(paper: Paper) -> Shared:
    upvotes = _count_label(paper.upvotes, "upvote")
    code_url = safe_url(paper.code_url)
    project_url = safe_url(paper.project_url)
    summary = excerpt(paper.ai_summary, SUMMARY_CHARS) if paper.ai_summary else None
    keywords = ", ".join(one_line(k) for k in paper.keywords[:KEYWORDS_SHOWN]) or None
    view = PaperView(
        number=0, title=one_line(paper.title), url="", excerpt=excerpt(paper.abstract),
        meta=tuple(part for part in (date_label(paper), authors_label(paper), upvotes) if part),
        code_url=code_url, reason="",
        stars=_count_label(paper.github_stars, "star") if code_url else None,
        project_url=project_url if project_url != code_url else None,
        summary=summary or None, keywords=None if summary else keywords,
        pdf_url=ARXIV_PDF.format(quote(paper.arxiv_id)) if _is_arxiv(paper) else None)
    return Shared(paper, paper_url(paper), view)


def _assemble(number: int, item: DigestItem, link: Callable[[Paper], str] | None,
              shared: Shared) -> PaperView:
    """The paper's shared parts plus this reader's number, reason and link (click tracking)."""
    v = shared.view
    return PaperView(number, v.title, link(item.paper) if link else shared.url, v.excerpt,
                     v.meta, v.code_url, one_line(item.reason), v.stars, v.project_url,
                     v.summary, v.keywords, v.pdf_url, shared)


class PaperParts:
    """A bounded LRU of ``Shared`` by paper object.

    Keyed by ``id(paper)``, which is cheap next to hashing every field of a Paper; each entry
    keeps its paper alive, so no other object can take that id while the entry exists. Paper is
    frozen, so an object's parts never go stale; a changed paper is a new object (a miss). The
    web app renders previews from several threads at once, hence the lock."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[int, Shared] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def view(self, number: int, item: DigestItem,
             link: Callable[[Paper], str] | None) -> PaperView:
        paper, entries = item.paper, self._entries
        with self._lock:
            shared = entries.get(id(paper))
            if shared is not None:
                entries.move_to_end(id(paper))
        if shared is None:
            shared = _shared(paper)
            with self._lock:
                entries[id(paper)] = shared
                if len(entries) > self.size:
                    entries.popitem(last=False)
        return _assemble(number, item, link, shared)


def _count_label(count: int | None, word: str) -> str | None:
    return f"{count:,} {word}{'s' if count != 1 else ''}" if count else None


def one_line(text: str) -> str:
    """Collapse all whitespace, line breaks included: catalog text arrives with any layout."""
    return " ".join(text.split())


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """At most ``limit`` characters, cut at a word boundary, with an ellipsis when shortened."""
    flat = one_line(text[: 2 * limit])  # abstracts run to thousands of characters
    if len(flat) <= limit and len(text) > 2 * limit:
        flat = one_line(text)  # the head was mostly whitespace
    if len(flat) <= limit:
        return flat
    cut = flat.rfind(" ", 0, limit)
    if cut < limit // 2:  # one enormous "word" (a URL, a formula): cut it anyway
        cut = limit - 1
    return flat[:cut].rstrip(" ,;:.-–—(") + "…"


def safe_url(url: str | None) -> str | None:
    """Only http(s) links: a javascript: or data: URL from a catalog source must not be linked."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return None if _URL_BREAKERS.search(url) else url


def paper_url(paper: Paper) -> str:
    """The arXiv abstract page when the paper has an arXiv id, else its own page, else an arXiv
    title search (a seed page names no URL)."""
    if _is_arxiv(paper):
        return ARXIV_ABS.format(quote(paper.arxiv_id or ""))
    url = safe_url(paper.url)
    if url:
        return url
    return f"https://arxiv.org/search/?searchtype=title&query={quote_plus(one_line(paper.title))}"


def _is_arxiv(paper: Paper) -> bool:
    return bool(paper.arxiv_id and _ARXIV_ID.match(paper.arxiv_id))


def date_label(paper: Paper) -> str | None:
    """Only a date a source stated: "Published 31 May 2023", else "Listed 14 Mar 2026", or
    "Listed 14 Mar" when the list gave no year (the stored one is a guess). A date after our
    first sighting of the paper is wrong (``trending.stated_dates``) and is not stated."""
    listed, published = stated_dates(paper)
    if published is not None:
        return f"Published {short_date(published.date())}"
    if listed is None:
        return None
    day = listed.date()
    return f"Listed {day_month(day) if paper.listed_year_inferred else short_date(day)}"


def authors_label(paper: Paper) -> str | None:
    """The first three names (+ "et al."), else the count, else nothing."""
    names = [name for name in paper.authors if name.strip()]
    total = max(len(names), paper.author_count or 0)
    if names:
        return ", ".join(one_line(name) for name in names[:3]) + (" et al." if total > 3 else "")
    return f"{total} author{'s' if total > 1 else ''}" if total else None


def short_date(day: date) -> str:
    return f"{day_month(day)} {day.year}"


def day_month(day: date) -> str:
    return f"{day.day} {MONTHS[day.month - 1][:3]}"
