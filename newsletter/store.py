"""The database: schema, connection, and the catalog and subscriber tables.

SQLAlchemy Core, portable SQL only: the same code runs on the default SQLite file and on
PostgreSQL. The delivery tables' queries live in ``ledger.py``.
"""

from __future__ import annotations

import secrets
import time as time_module
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Collection, Iterable, Iterator, Sequence

from sqlalchemy import (
    JSON, Boolean, Column, Date, DateTime, Engine, ForeignKey, Integer, MetaData, String, Table,
    Text, UniqueConstraint, create_engine, event, func, insert, inspect, select, text, update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DatabaseError, IntegrityError
from sqlalchemy.sql.dml import Insert

from .models import Link, Paper, Subscriber

metadata = MetaData()

papers = Table(
    "papers", metadata,
    Column("id", String(200), primary_key=True),
    Column("arxiv_id", String(40), unique=True),
    Column("title", Text, nullable=False),
    Column("title_key", String(400), nullable=False, index=True),
    Column("abstract", Text, nullable=False),
    Column("authors", JSON, nullable=False, default=list),
    Column("author_count", Integer),
    Column("published", Date),
    Column("url", Text),
    Column("links", JSON, nullable=False, default=list),
    Column("upvotes", Integer),
    Column("comments", Integer),
    Column("sources", JSON, nullable=False, default=list),
    Column("ai_summary", Text),
    Column("keywords", JSON, default=list),  # nullable: ADD COLUMN works on an old database
    Column("github_stars", Integer),
    Column("clicks", Integer),
    Column("listed_at", DateTime(timezone=True)),
    Column("thumbnail", Text),
    Column("first_seen_at", DateTime(timezone=True), nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# ETag / Last-Modified per fetched URL, so the next fetch can ask "changed since?" (HTTP 304).
http_validators = Table(
    "http_validators", metadata,
    Column("url", String(2000), primary_key=True),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
)

subscribers = Table(
    "subscribers", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=False, default=""),
    Column("topics", JSON, nullable=False),
    Column("exclude", JSON, nullable=False, default=list),
    Column("max_papers", Integer, nullable=False),
    Column("frequency", String(10), nullable=False),
    Column("weekday", Integer, nullable=False, default=0),
    Column("send_time", String(5), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("origin", String(300), nullable=False, default=""),
    # Set once the person changed their own preferences: the subscribers/ files no longer
    # overwrite them (the database alone holds what users change themselves).
    Column("self_managed", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

deliveries = Table(
    "deliveries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), nullable=False),
    Column("edition", String(16), nullable=False),
    Column("state", String(12), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("message_id", String(300)),
    Column("next_attempt_at", DateTime(timezone=True)),  # state "retrying": not before this
    Column("paper_count", Integer, nullable=False, default=0),
    # The worker holding the row (``claims.py``) and until when; past that, others may take it.
    Column("claimed_by", String(200)),
    Column("lease_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("subscriber_id", "edition", name="one_digest_per_edition"),
)

sent_papers = Table(
    "sent_papers", metadata,
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), primary_key=True),
    Column("paper_id", String(200), primary_key=True),
    Column("delivery_id", Integer, ForeignKey("deliveries.id"), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
)

# Named leases: the single dispatcher ("dispatch") holds one while it sends.
locks = Table(
    "locks", metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

meta = Table(
    "meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def connect(url: str) -> Engine:
    """Open the database and create the tables that are missing."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    create_tables(engine, metadata)
    _add_missing_columns(engine)
    return engine


def _add_missing_columns(engine: Engine) -> None:
    """A database made by an older version lacks the columns added since; those are nullable,
    so ``ALTER TABLE ... ADD COLUMN`` brings it up to date without a migration tool."""
    present = inspect(engine)
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            have = {column["name"] for column in present.get_columns(table.name)}
            for column in table.columns:
                if column.name not in have and column.nullable:
                    kind = column.type.compile(dialect=engine.dialect)
                    conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))


def create_tables(engine: Engine, tables: MetaData) -> None:
    """``create_all``, safe when several processes open a new database at the same moment:
    a process that loses the race for one table looks again, past the tables made meanwhile."""
    for attempt in range(20):
        try:
            tables.create_all(engine)
            return
        except DatabaseError:
            if attempt == 19:
                raise
            time_module.sleep(0.05)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets `status` read while `send` writes; busy_timeout waits instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL survives any process crash (kill -9 included); only a power cut or
    # OS crash can undo the last commits. FULL costs an fsync per ledger write.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def insert_ignore(engine: Engine, table: Table, key: Sequence[str]) -> Insert:
    """INSERT that skips rows clashing on ``key`` (any other clash still raises)."""
    make = postgresql_insert if engine.dialect.name == "postgresql" else sqlite_insert
    return make(table).on_conflict_do_nothing(index_elements=list(key))


def secret_key(engine: Engine) -> str:
    """The signing key kept in the database, made on first use, when none is configured."""
    with engine.begin() as conn:
        value = conn.scalar(select(meta.c.value).where(meta.c.key == "secret_key"))
        if value is None:
            value = secrets.token_urlsafe(32)
            conn.execute(insert(meta).values(key="secret_key", value=value))
        return value


# -- papers -------------------------------------------------------------------------------


def _paper_row(paper: Paper, title_key: str, now: datetime) -> dict[str, Any]:
    return {
        "id": paper.id, "arxiv_id": paper.arxiv_id, "title": paper.title,
        "title_key": title_key, "abstract": paper.abstract, "authors": list(paper.authors),
        "author_count": paper.author_count, "published": paper.published, "url": paper.url,
        "links": [[link.kind, link.url] for link in paper.links], "upvotes": paper.upvotes,
        "comments": paper.comments, "sources": list(paper.sources),
        "ai_summary": paper.ai_summary, "keywords": list(paper.keywords),
        "github_stars": paper.github_stars, "clicks": paper.clicks,
        "listed_at": paper.listed_at, "thumbnail": paper.thumbnail,
        "first_seen_at": paper.first_seen_at or now, "updated_at": now,
    }


def _paper(row: Any) -> Paper:
    return Paper(
        id=row.id, title=row.title, abstract=row.abstract, arxiv_id=row.arxiv_id,
        authors=tuple(row.authors), author_count=row.author_count, published=row.published,
        url=row.url, links=tuple(Link(kind, url) for kind, url in row.links),
        upvotes=row.upvotes, comments=row.comments, first_seen_at=as_utc(row.first_seen_at),
        sources=tuple(row.sources), ai_summary=row.ai_summary, keywords=tuple(row.keywords or ()),
        github_stars=row.github_stars, clicks=row.clicks, listed_at=as_utc(row.listed_at),
        thumbnail=row.thumbnail,
    )


def load_papers(engine: Engine, since: datetime | None = None) -> list[Paper]:
    """The catalog (or the part first seen at or after ``since``), newest first."""
    query = select(papers).order_by(papers.c.first_seen_at.desc(), papers.c.id)
    if since is not None:
        query = query.where(papers.c.first_seen_at >= since)
    with engine.connect() as conn:
        return [_paper(row) for row in conn.execute(query)]


def count_papers(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(papers)) or 0


def save_papers(engine: Engine, new: Sequence[tuple[Paper, str]],
                changed: Sequence[tuple[Paper, str]], now: datetime | None = None) -> None:
    """Insert ``new`` and overwrite ``changed`` papers, each given with its title key, in one
    transaction (an ingest is stored whole or not at all)."""
    now = now or utcnow()
    with engine.begin() as conn:
        if new:
            conn.execute(insert(papers), [_paper_row(p, key, now) for p, key in new])
        for paper, key in changed:
            row = _paper_row(paper, key, now)
            # Clicks are counted by the web app while an ingest may run: never overwrite them.
            del row["first_seen_at"], row["clicks"]
            conn.execute(update(papers).where(papers.c.id == paper.id).values(**row))


# -- HTTP validators ----------------------------------------------------------------------


def load_validators(engine: Engine, url: str) -> tuple[str | None, str | None]:
    """(ETag, Last-Modified) the server sent with the last content we stored from ``url``."""
    query = select(http_validators.c.etag, http_validators.c.last_modified).where(
        http_validators.c.url == url)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return (row.etag, row.last_modified) if row else (None, None)


def save_validators(engine: Engine, rows: Sequence[tuple[str, str | None, str | None]],
                    now: datetime | None = None) -> None:
    """Remember (url, etag, last_modified) for each URL; call only once its papers are stored,
    or a 304 would later hide content that never reached the catalog."""
    now = now or utcnow()
    with engine.begin() as conn:
        for url, etag, last_modified in rows:
            # Delete + insert: a portable upsert (SQLite and PostgreSQL spell ON CONFLICT apart).
            conn.execute(http_validators.delete().where(http_validators.c.url == url))
            conn.execute(insert(http_validators).values(
                url=url, etag=etag, last_modified=last_modified, fetched_at=now))


# -- subscribers --------------------------------------------------------------------------


def _subscriber_row(sub: Subscriber) -> dict[str, Any]:
    return {
        "email": sub.email, "name": sub.name, "topics": list(sub.topics),
        "exclude": list(sub.exclude), "max_papers": sub.max_papers, "frequency": sub.frequency,
        "weekday": sub.weekday, "send_time": sub.send_time.strftime("%H:%M"),
        "timezone": sub.timezone, "origin": sub.origin,
    }


def _subscriber(row: Any) -> Subscriber:
    return Subscriber(
        id=row.id, email=row.email, name=row.name, topics=tuple(row.topics),
        exclude=tuple(row.exclude), max_papers=row.max_papers, frequency=row.frequency,
        weekday=row.weekday, send_time=time.fromisoformat(row.send_time),
        timezone=row.timezone, status=row.status, origin=row.origin,
    )


def load_subscribers(engine: Engine, statuses: Iterable[str] | None = ("active",),
                     email: str | None = None,
                     ids: Collection[int] | None = None) -> list[Subscriber]:
    query = select(subscribers).order_by(subscribers.c.id)
    if statuses is not None:
        query = query.where(subscribers.c.status.in_(list(statuses)))
    if email is not None:
        query = query.where(subscribers.c.email == email.lower())
    if ids is not None:
        query = query.where(subscribers.c.id.in_(list(ids)))
    with engine.connect() as conn:
        return [_subscriber(row) for row in conn.execute(query)]


def count_subscribers(engine: Engine, status: str = "active") -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(subscribers)
                           .where(subscribers.c.status == status)) or 0


def iter_subscribers(engine: Engine, chunk: int = 5000) -> Iterator[list[Subscriber]]:
    """Active subscribers in id order, ``chunk`` at a time: memory stays flat at any count."""
    after = 0
    while True:
        query = (select(subscribers).where((subscribers.c.status == "active")
                                           & (subscribers.c.id > after))
                 .order_by(subscribers.c.id).limit(chunk))
        with engine.connect() as conn:
            found = [_subscriber(row) for row in conn.execute(query)]
        if not found:
            return
        yield found
        after = found[-1].id  # type: ignore[assignment]


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    kept_unsubscribed: int = 0


def sync_subscribers(engine: Engine, listed: Sequence[Subscriber]) -> SyncReport:
    """Mirror the subscribers/ files into the database (see ``_sync``); when another process
    inserted the same new addresses meanwhile, the second pass finds them and updates."""
    try:
        return _sync(engine, listed)
    except IntegrityError:
        return _sync(engine, listed)


def _sync(engine: Engine, listed: Sequence[Subscriber]) -> SyncReport:
    """Mirror the subscribers/ files into the database.

    What people did themselves wins over the files: an unsubscribed or bounced address stays
    so, and self-managed preferences are not overwritten. Addresses that came from the files
    and are no longer listed become ``removed`` (kept, so the ledger keeps its history).
    """
    report = SyncReport()
    now = utcnow()
    by_email = {sub.email: sub for sub in listed}
    with engine.begin() as conn:
        existing = {row.email: row for row in conn.execute(select(subscribers))}
        for email, sub in by_email.items():
            row = existing.get(email)
            if row is None:
                conn.execute(insert(subscribers).values(
                    **_subscriber_row(sub), status="active", self_managed=False,
                    created_at=now, updated_at=now))
                report.added += 1
                continue
            values = {} if row.self_managed else _subscriber_row(sub)
            if row.status in ("unsubscribed", "bounced"):
                report.kept_unsubscribed += 1
            elif row.status == "removed":
                values["status"] = "active"
            changed = {k: v for k, v in values.items() if getattr(row, k) != v}
            if changed:
                conn.execute(update(subscribers).where(subscribers.c.id == row.id)
                             .values(**changed, updated_at=now))
                report.updated += 1
            else:
                report.unchanged += 1
        gone = [row.id for email, row in existing.items()
                if email not in by_email and row.origin != "web" and row.status == "active"]
        if gone:
            conn.execute(update(subscribers).where(subscribers.c.id.in_(gone))
                         .values(status="removed", updated_at=now))
            report.removed = len(gone)
    return report


def set_subscriber_status(engine: Engine, email: str, status: str) -> bool:
    with engine.begin() as conn:
        result = conn.execute(update(subscribers).where(subscribers.c.email == email.lower())
                              .values(status=status, updated_at=utcnow()))
        return result.rowcount > 0



# -- self-service (`newsletter serve`) ----------------------------------------------------

# Sign-ups waiting for their confirmation link. Kept apart from `subscribers` so that an
# unconfirmed request never touches a real subscriber's row (nor its "unsubscribed").
signups = Table(
    "signups", metadata,
    Column("email", String(320), primary_key=True),
    Column("topics", JSON, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("emailed_at", DateTime(timezone=True)),
)

# One row per reader and paper: a paper's click count grows once per reader, so reloading a
# tracked link cannot inflate "trending".
clicks = Table(
    "clicks", metadata,
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), primary_key=True),
    Column("paper_id", String(200), primary_key=True),
    Column("clicked_at", DateTime(timezone=True), nullable=False),
)

SIGNUP_KEPT_FOR = timedelta(days=30)


def subscriber_status(engine: Engine, email: str) -> str | None:
    with engine.connect() as conn:
        return conn.scalar(select(subscribers.c.status)
                           .where(subscribers.c.email == email.lower()))


def requested_topics(engine: Engine, email: str) -> list[str] | None:
    """The topics of the sign-up waiting for this address; None when none waits (used up)."""
    with engine.connect() as conn:
        topics = conn.scalar(select(signups.c.topics).where(signups.c.email == email.lower()))
    return None if topics is None else list(topics)


def request_signup(engine: Engine, email: str, topics: Sequence[str], *,
                   resend_after: timedelta, now: datetime | None = None) -> tuple[str | None, bool]:
    """Remember a sign-up request (the latest topics win) until it is confirmed.

    Returns the address's current status (None: not a subscriber) and whether an email may
    go out now: at most one per ``resend_after``, so the form cannot flood a stranger's inbox.
    """
    now, email = now or utcnow(), email.lower()
    with engine.begin() as conn:
        conn.execute(signups.delete().where(signups.c.requested_at < now - SIGNUP_KEPT_FOR))
        emailed = conn.execute(select(signups.c.emailed_at)
                               .where(signups.c.email == email)).first()
        send = emailed is None or emailed[0] is None or as_utc(emailed[0]) <= now - resend_after
        values = {"topics": list(topics), "requested_at": now}
        if send:
            values["emailed_at"] = now
        if emailed is None:
            conn.execute(insert(signups).values(email=email, **values))
        else:
            conn.execute(update(signups).where(signups.c.email == email).values(**values))
        status = conn.scalar(select(subscribers.c.status).where(subscribers.c.email == email))
    return status, send


def confirm_signup(engine: Engine, email: str, now: datetime | None = None) -> Subscriber | None:
    """Make the address active with the topics it asked for; None when no request waits.

    A returning address keeps its other preferences; it becomes ``origin="web"`` and
    self-managed, so neither the removal of a file entry nor the entry itself undoes this.
    """
    now, email = now or utcnow(), email.lower()
    with engine.begin() as conn:
        request = conn.execute(select(signups).where(signups.c.email == email)).first()
        if request is None:
            return None
        values = {"topics": list(request.topics), "status": "active", "origin": "web",
                  "self_managed": True, "updated_at": now}
        found = conn.execute(update(subscribers).where(subscribers.c.email == email)
                             .values(**values))
        if found.rowcount == 0:
            fresh = _subscriber_row(Subscriber(email=email, name="", topics=()))
            conn.execute(insert(subscribers).values({**fresh, **values, "created_at": now}))
        conn.execute(signups.delete().where(signups.c.email == email))
    return load_subscribers(engine, statuses=None, email=email)[0]


def unsubscribe(engine: Engine, email: str) -> bool:
    """Stop every digest to ``email`` now and for good (until they subscribe again
    themselves); False when the address is not on the list. Idempotent."""
    with engine.begin() as conn:
        conn.execute(update(subscribers)
                     .where(subscribers.c.email == email.lower(),
                            subscribers.c.status != "unsubscribed")
                     .values(status="unsubscribed", updated_at=utcnow()))
        return conn.scalar(select(func.count()).select_from(subscribers)
                           .where(subscribers.c.email == email.lower())) == 1


def update_preferences(engine: Engine, subscriber: Subscriber) -> bool:
    """Store what the person chose on the preferences page (matched by email, status left as
    it is) and mark it self-managed, so the subscribers/ files no longer overwrite it."""
    row = _subscriber_row(subscriber)
    del row["email"], row["origin"]
    with engine.begin() as conn:
        result = conn.execute(update(subscribers)
                              .where(subscribers.c.email == subscriber.email.lower())
                              .values(**row, self_managed=True, updated_at=utcnow()))
        return result.rowcount > 0


def load_paper(engine: Engine, paper_id: str) -> Paper | None:
    with engine.connect() as conn:
        row = conn.execute(select(papers).where(papers.c.id == paper_id)).first()
    return _paper(row) if row else None


def record_click(engine: Engine, subscriber_id: int, paper_id: str,
                 now: datetime | None = None) -> bool:
    """Count a reader's click on a paper once; False when it was counted before (or the
    reader is unknown)."""
    try:
        with engine.begin() as conn:
            conn.execute(insert(clicks).values(subscriber_id=subscriber_id, paper_id=paper_id,
                                               clicked_at=now or utcnow()))
            conn.execute(update(papers).where(papers.c.id == paper_id)
                         .values(clicks=func.coalesce(papers.c.clicks, 0) + 1))
    except IntegrityError:
        return False
    return True


# -- paper embeddings (the `semantic` extra) ----------------------------------------------------
# Kept here so a daily run embeds only new or edited papers; imported late to keep this block
# self-contained. No foreign key: embeddings are a cache, and a rekeyed paper is embedded again.
from sqlalchemy import LargeBinary  # noqa: E402

paper_embeddings = Table(
    "paper_embeddings", metadata,
    Column("paper_id", String(200), primary_key=True),
    Column("model", String(100), primary_key=True),
    Column("digest", String(64), nullable=False),  # of the embedded text: an edited abstract
    Column("vector", LargeBinary, nullable=False),  # is embedded again; float32 bytes
)


def load_embeddings(engine: Engine, model: str,
                    ids: Iterable[str] | None = None) -> dict[str, tuple[str, bytes]]:
    """paper id -> (digest of the embedded text, vector bytes) for ``model``."""
    query = select(paper_embeddings.c.paper_id, paper_embeddings.c.digest,
                   paper_embeddings.c.vector).where(paper_embeddings.c.model == model)
    wanted = None if ids is None else set(ids)
    with engine.connect() as conn:
        return {row.paper_id: (row.digest, bytes(row.vector)) for row in conn.execute(query)
                if wanted is None or row.paper_id in wanted}


def save_embeddings(engine: Engine, model: str,
                    rows: Sequence[tuple[str, str, bytes]]) -> None:
    """Store (paper id, digest, vector bytes) rows for ``model``, replacing older ones."""
    if not rows:
        return
    with engine.begin() as conn:
        ids = [pid for pid, _, _ in rows]
        for start in range(0, len(ids), 500):  # bounded IN lists
            conn.execute(paper_embeddings.delete().where(
                paper_embeddings.c.model == model,
                paper_embeddings.c.paper_id.in_(ids[start:start + 500])))
        conn.execute(insert(paper_embeddings), [
            {"paper_id": pid, "model": model, "digest": digest, "vector": vector}
            for pid, digest, vector in rows])
