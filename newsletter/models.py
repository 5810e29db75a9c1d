"""Plain data passed between the pipeline stages.

Frozen dataclasses rather than pydantic models: a run builds hundreds of thousands of these and
they need no validation once they exist (validation happens at the edges: sources/, subscribers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Callable, Iterable, Literal

Frequency = Literal["daily", "weekly"]
SubscriberStatus = Literal["pending", "active", "unsubscribed", "bounced", "removed"]
DeliveryState = Literal["pending", "sending", "sent", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One rejected input: where it is (``file:line`` or an address) and what is wrong."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class ProblemLog(list[Problem]):
    """The Problems of one source, at most ``limit`` of them kept: a file of garbage must not
    fill memory (and the screen) with a line per bad record. ``done()`` adds one line saying
    how many more there were."""

    def __init__(self, source: str, limit: int = 100) -> None:
        super().__init__()
        self.source, self.limit, self.dropped = source, limit, 0

    def append(self, problem: Problem) -> None:
        if len(self) < self.limit:
            super().append(problem)
        else:
            self.dropped += 1

    def extend(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            self.append(problem)

    def done(self) -> list[Problem]:
        found = list(self)
        if self.dropped:
            found.append(Problem(self.source, f"and {self.dropped} more problems not listed: "
                                              "is this file in the format its name says?"))
        return found


@dataclass(frozen=True, slots=True)
class Link:
    kind: str  # "code", "project", ...
    url: str


@dataclass(frozen=True, slots=True)
class Paper:
    id: str  # arXiv id without version when known, else a slug of the normalized title
    title: str
    abstract: str
    arxiv_id: str | None = None
    authors: tuple[str, ...] = ()
    author_count: int | None = None
    published: date | None = None  # only a date a source states, year included
    url: str | None = None
    links: tuple[Link, ...] = ()
    upvotes: int | None = None
    comments: int | None = None
    first_seen_at: datetime | None = None
    sources: tuple[str, ...] = ()
    # Richer data some sources have (the HF daily papers API); absent elsewhere.
    ai_summary: str | None = None  # a one-sentence summary written by a model
    keywords: tuple[str, ...] = ()
    github_stars: int | None = None
    clicks: int | None = None  # clicks on our own digest links, when click tracking is on
    # When a source listed it (a daily list, a feed's announcement): its news starts there, so
    # freshness and the trending age count from it. Not its publication date.
    listed_at: datetime | None = None
    # The list gave a day without a year ("Mar 14"): the year in listed_at is our guess (the
    # latest such day up to the ingest), fit for an age but never to be shown.
    listed_year_inferred: bool = False
    thumbnail: str | None = None
    # Where the parser found it ("file:line", "url:item 3"), for errors; not part of the paper.
    origin: str | None = field(default=None, compare=False)

    @property
    def code_url(self) -> str | None:
        return next((link.url for link in self.links if link.kind == "code"), None)

    @property
    def project_url(self) -> str | None:
        return next((link.url for link in self.links if link.kind == "project"), None)


@dataclass(frozen=True, slots=True)
class Subscriber:
    email: str
    name: str
    topics: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    max_papers: int = 10
    frequency: Frequency = "daily"
    weekday: int = 0  # weekly digests: 0 = Monday
    send_time: time = time(7, 0)
    timezone: str = "UTC"
    status: SubscriberStatus = "active"
    id: int | None = None  # database id, once stored
    origin: str = ""  # "subscribers/team.toml:12", or "web"
    # What the links in this person's emails are made from (compose/tokens.py); set once
    # stored. The key is a secret: kept out of repr, so it cannot reach a log by accident.
    link_id: str = ""
    link_key: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class OwnPaper:
    """A paper the reader gave as their own work or reading (an arXiv id, a BibTeX or Zotero
    entry). ``paper_id`` is the catalog paper it was matched to, if any; a paper outside the
    catalog still counts through its title and abstract."""

    key: str  # "arxiv:2401.01234", "doi:10.1/x" or the BibTeX citation key
    title: str
    abstract: str = ""
    paper_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReaderSignals:
    """What one reader has told us beyond their topics: "More like this" (``liked``), "Less
    like this" (``hidden``: never shown again, and similar papers go down), and their own
    papers. Empty signals leave the digest exactly as the topics alone make it."""

    liked: tuple[str, ...] = ()  # catalog paper ids
    hidden: tuple[str, ...] = ()  # catalog paper ids
    own: tuple[OwnPaper, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.liked or self.hidden or self.own)


@dataclass(frozen=True, slots=True)
class DigestItem:
    paper: Paper
    score: float
    topic: str  # the subscriber's topic this paper is filed under
    reason: str  # a sentence a person can check: "matches: GNN → graph neural network (title)"


@dataclass(frozen=True, slots=True)
class Section:
    topic: str
    items: tuple[DigestItem, ...]
    trending: bool = False  # the "Trending" section: relevant papers the community is excited about


@dataclass(frozen=True, slots=True)
class Digest:
    subscriber: Subscriber
    edition: str  # "2026-11-23" (daily) or "2026-W48" (weekly)
    sections: tuple[Section, ...]
    created_at: datetime

    @property
    def items(self) -> list[DigestItem]:
        return [item for section in self.sections for item in section.items]

    @property
    def paper_ids(self) -> list[str]:
        return [item.paper.id for item in self.items]


@dataclass(frozen=True, slots=True)
class SubscriberLinks:
    """Signed per-subscriber URLs, computed once per subscriber and used by render and message."""

    unsubscribe_url: str
    preferences_url: str
    unsubscribe_mailto: str
    # (paper id, "more" | "less") -> that paper's "More/Less like this" link for this reader;
    # None: the digest shows no such links (tests, templates rendered without a reader)
    feedback: Callable[[str, str], str] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class RenderedDigest:
    subject: str
    preheader: str
    html: str
    text: str


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A finished message: what the transport needs and nothing else."""

    message_id: str
    sender: str  # envelope MAIL FROM
    recipient: str  # envelope RCPT TO
    data: bytes  # the RFC 5322 message, CRLF line endings
    edition: str = ""
    extra: dict[str, str] = field(default_factory=dict)
