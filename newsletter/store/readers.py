"""What readers told us beyond their topics (issue 14): "More like this" / "Less like this" per
paper, and the papers they gave as their own. Read back as :class:`ReaderSignals`, one query
per batch of subscribers, for the reader model in ``relevance/feedback.py``.

These rows belong to their subscriber: only their own pages show them, ``forget_reader``
deletes them (on unsubscribe and with the subscriber), and no function here logs them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, Engine, delete, func, select

from newsletter.models import OwnPaper, ReaderSignals
from newsletter.store.engine import insert_ignore, utcnow
from newsletter.store.schema import feedback, library_papers, papers, subscribers

Verdict = Literal["more", "less"]
Origin = Literal["file", "web"]
VERDICTS: tuple[Verdict, ...] = ("more", "less")
IDS_PER_QUERY = 500  # bound the IN list: PostgreSQL and SQLite both take this comfortably


@dataclass(frozen=True, slots=True)
class FeedbackEntry:
    paper_id: str
    title: str  # "" when the paper has left the catalog
    verdict: Verdict
    created_at: datetime


def set_feedback(engine: Engine, subscriber_id: int, paper_id: str, verdict: Verdict,
                 now: datetime | None = None) -> None:
    """Record a reader's choice on a paper; a later choice replaces an earlier one."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, not {verdict!r}")
    with engine.begin() as conn:
        conn.execute(delete(feedback).where(feedback.c.subscriber_id == subscriber_id,
                                            feedback.c.paper_id == paper_id))
        conn.execute(feedback.insert().values(subscriber_id=subscriber_id, paper_id=paper_id,
                                              verdict=verdict, created_at=now or utcnow()))


def clear_feedback(engine: Engine, subscriber_id: int, paper_id: str) -> bool:
    """Take a choice back (Undo, or "remove" on the preferences page); False if there was none."""
    with engine.begin() as conn:
        gone = conn.execute(delete(feedback).where(feedback.c.subscriber_id == subscriber_id,
                                                   feedback.c.paper_id == paper_id))
        return gone.rowcount > 0


def feedback_list(engine: Engine, subscriber_id: int) -> list[FeedbackEntry]:
    """The reader's choices, newest first, with each paper's title for their own page."""
    query = (select(feedback.c.paper_id, papers.c.title, feedback.c.verdict,
                    feedback.c.created_at)
             .select_from(feedback.outerjoin(papers, papers.c.id == feedback.c.paper_id))
             .where(feedback.c.subscriber_id == subscriber_id)
             .order_by(feedback.c.created_at.desc(), feedback.c.paper_id))
    with engine.connect() as conn:
        return [FeedbackEntry(row.paper_id, row.title or "", row.verdict, row.created_at)
                for row in conn.execute(query)]


def replace_library(engine: Engine, subscriber_id: int, own: Sequence[OwnPaper],
                    origin: Origin, now: datetime | None = None) -> None:
    """Make ``own`` the reader's papers from ``origin``; those from the other origin stay (a
    subscriber file's ``papers`` and what the person pasted on their page are kept apart)."""
    rows = [{"subscriber_id": subscriber_id, "key": paper.key, "title": paper.title,
             "abstract": paper.abstract, "paper_id": paper.paper_id, "origin": origin,
             "added_at": now or utcnow()} for paper in own]
    with engine.begin() as conn:
        conn.execute(delete(library_papers).where(library_papers.c.subscriber_id == subscriber_id,
                                                  library_papers.c.origin == origin))
        if rows:  # a key already given through the other origin stays as it was
            conn.execute(insert_ignore(engine, library_papers, ("subscriber_id", "key")), rows)


def replace_file_libraries(engine: Engine, own_by_email: Mapping[str, Sequence[OwnPaper]],
                           now: datetime | None = None, *, keep: Collection[str] = ()) -> None:
    """Make these the "file" libraries of everyone (the subscriber files' ``papers`` and
    ``library``), in one transaction: a person the files no longer give papers for has none,
    except the ``keep`` addresses (their entry could not be read), whose papers stay."""
    now = now or utcnow()
    wanted = {email.lower(): own for email, own in own_by_email.items() if own}
    with engine.begin() as conn:
        kept: set[int] = set()
        held = sorted(keep)
        for start in range(0, len(held), IDS_PER_QUERY):
            kept.update(conn.scalars(select(subscribers.c.id).where(
                subscribers.c.email.in_(held[start:start + IDS_PER_QUERY]))))
        if not kept:
            conn.execute(delete(library_papers).where(library_papers.c.origin == "file"))
        else:
            owners = sorted(set(conn.scalars(select(library_papers.c.subscriber_id).distinct()
                                             .where(library_papers.c.origin == "file"))) - kept)
            for start in range(0, len(owners), IDS_PER_QUERY):
                conn.execute(delete(library_papers).where(
                    library_papers.c.origin == "file",
                    library_papers.c.subscriber_id.in_(owners[start:start + IDS_PER_QUERY])))
        emails, rows = sorted(wanted), []
        for start in range(0, len(emails), IDS_PER_QUERY):
            for sid, email in conn.execute(select(subscribers.c.id, subscribers.c.email).where(
                    subscribers.c.email.in_(emails[start:start + IDS_PER_QUERY]))):
                rows.extend({"subscriber_id": sid, "key": paper.key, "title": paper.title,
                             "abstract": paper.abstract, "paper_id": paper.paper_id,
                             "origin": "file", "added_at": now} for paper in wanted[email])
        if rows:  # a key the person also gave on the web stays as they gave it there
            conn.execute(insert_ignore(engine, library_papers, ("subscriber_id", "key")), rows)


def add_to_library(engine: Engine, subscriber_id: int, own: Sequence[OwnPaper],
                   origin: Origin, now: datetime | None = None) -> int:
    """Add papers to the reader's library (keys already there are kept); how many were new."""
    rows = [{"subscriber_id": subscriber_id, "key": paper.key, "title": paper.title,
             "abstract": paper.abstract, "paper_id": paper.paper_id, "origin": origin,
             "added_at": now or utcnow()} for paper in own]
    if not rows:
        return 0
    with engine.begin() as conn:
        before = _library_size(conn, subscriber_id)
        conn.execute(insert_ignore(engine, library_papers, ("subscriber_id", "key")), rows)
        return _library_size(conn, subscriber_id) - before


def remove_from_library(engine: Engine, subscriber_id: int, key: str) -> bool:
    with engine.begin() as conn:
        gone = conn.execute(delete(library_papers).where(
            library_papers.c.subscriber_id == subscriber_id, library_papers.c.key == key))
        return gone.rowcount > 0


def library_of(engine: Engine, subscriber_id: int) -> list[OwnPaper]:
    """The reader's papers, in the order they were added."""
    with engine.connect() as conn:
        return [_own(row) for row in conn.execute(
            select(library_papers).where(library_papers.c.subscriber_id == subscriber_id)
            .order_by(library_papers.c.added_at, library_papers.c.key))]


def signals_for(engine: Engine, subscriber_ids: Collection[int]) -> dict[int, ReaderSignals]:
    """Each reader's signals, for a batch of readers in a few queries; readers who told us
    nothing are left out (their digests are made from their topics alone)."""
    ids = sorted(set(subscriber_ids))
    liked: dict[int, list[str]] = {}
    hidden: dict[int, list[str]] = {}
    own: dict[int, list[OwnPaper]] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), IDS_PER_QUERY):
            chunk = ids[start:start + IDS_PER_QUERY]
            for row in conn.execute(
                    select(feedback.c.subscriber_id, feedback.c.paper_id, feedback.c.verdict)
                    .where(feedback.c.subscriber_id.in_(chunk))
                    .order_by(feedback.c.subscriber_id, feedback.c.created_at,
                              feedback.c.paper_id)):
                (liked if row.verdict == "more" else hidden).setdefault(
                    row.subscriber_id, []).append(row.paper_id)
            for row in conn.execute(
                    select(library_papers).where(library_papers.c.subscriber_id.in_(chunk))
                    .order_by(library_papers.c.subscriber_id, library_papers.c.added_at,
                              library_papers.c.key)):
                own.setdefault(row.subscriber_id, []).append(_own(row))
    return {sid: ReaderSignals(liked=tuple(liked.get(sid, ())), hidden=tuple(hidden.get(sid, ())),
                               own=tuple(own.get(sid, ())))
            for sid in sorted(liked.keys() | hidden.keys() | own.keys())}


def forget_reader(conn: Connection, subscriber_id: int) -> None:
    """Delete the reader's feedback and library, inside the caller's transaction."""
    conn.execute(delete(feedback).where(feedback.c.subscriber_id == subscriber_id))
    conn.execute(delete(library_papers).where(library_papers.c.subscriber_id == subscriber_id))


def _library_size(conn: Connection, subscriber_id: int) -> int:
    return conn.scalar(select(func.count()).select_from(library_papers).where(
        library_papers.c.subscriber_id == subscriber_id)) or 0


def _own(row: object) -> OwnPaper:
    return OwnPaper(key=row.key, title=row.title, abstract=row.abstract,  # type: ignore[attr-defined]
                    paper_id=row.paper_id)  # type: ignore[attr-defined]
