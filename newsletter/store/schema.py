"""The schema: every table, and the two values kept in the ``meta`` table (the signing key,
the grace of the old unsubscribe links). How a database is opened: ``engine.py``.

SQLAlchemy Core, portable SQL only: the same code runs on the default SQLite file and on
PostgreSQL. Schema changes are Alembic migrations (``newsletter/store/migrations``).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    select,
)

metadata = MetaData()
# How long unsubscribe links from before the upgrade to per-subscriber links keep working.
LEGACY_UNSUBSCRIBE_GRACE = timedelta(days=90)

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
    Column("listed_year_inferred", Boolean),  # listed_at's year was guessed: never shown
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
    # When an operator last took the address out of "bounced" (`subscribers reactivate`): hard
    # failures before it no longer count toward suppression.
    Column("reactivated_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The links in this person's emails (compose/tokens.py): a public random handle, and the
    # key their signatures are made with. "Sign out every link" replaces the key; the keys it
    # replaced are kept a while in retired_link_keys ([key, retired at], newest first) so that
    # unsubscribe links in mail already delivered keep working.
    Column("link_id", String(16), nullable=False, default=lambda: new_link_id()),
    Column("link_key", String(44), nullable=False, default=lambda: new_link_key()),
    Column("retired_link_keys", JSON),
)
Index("subscribers_link_id", subscribers.c.link_id, unique=True)

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
    # True for a permanent, address-level failure (a 5xx to RCPT or DATA, a hard bounce): the
    # only kind that counts toward suppression (``delivery/faults.py``).
    Column("hard_failure", Boolean),
    # When the digest was due (the subscriber's slot, or the time of a manual `send`): a row
    # that cannot go out within NEWSLETTER_STALE_AFTER_HOURS of it is skipped, never sent late.
    Column("due_at", DateTime(timezone=True)),
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


# One row per email the sign-up form caused: a confirmation link (its token's hash; the row is
# the pending sign-up, deleted when confirmed) or an "already subscribed" note (no token). Kept
# apart from `subscribers` so that an unconfirmed request never touches a real subscriber's row.
# Each request is its own row, so a second sign-up for the same address cannot change the
# first; the rows are also what the sign-up limits count (per address, per client, in all).
signup_requests = Table(
    "signup_requests", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), unique=True),
    Column("email", String(320), nullable=False, index=True),
    Column("topics", JSON, nullable=False),
    Column("client", String(64), nullable=False, index=True),  # a hash of the client's network
    Column("requested_at", DateTime(timezone=True), nullable=False, index=True),
)

# The operator's signed-in browsers (/admin): the cookie is a random token, kept here as its
# hash; signing out deletes the row, so a copied cookie is worthless from then on.
admin_sessions = Table(
    "admin_sessions", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("password_hash", String(64), nullable=False),  # a new password ends every session
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

# One row per reader and paper: a paper's click count grows once per reader, so reloading a
# tracked link cannot inflate "trending".
clicks = Table(
    "clicks", metadata,
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), primary_key=True),
    Column("paper_id", String(200), primary_key=True),
    Column("clicked_at", DateTime(timezone=True), nullable=False),
)


# What came back after a digest went out (``newsletter.returns``): one row per message read from
# the mailbox of returns, under its own key, so a message read twice is counted once.
returns = Table(
    "returns", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_key", String(300), nullable=False, unique=True),  # its Message-ID, or hash
    # hard-bounce, soft-bounce, refused, delayed, delivered, complaint, not-spam, unsubscribe
    Column("kind", String(16), nullable=False),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id")),  # None: matched nobody
    Column("edition", String(16), index=True),
    Column("status", String(16)),  # RFC 3463 status of a bounce: 5.1.1
    Column("detail", Text, nullable=False, default=""),
    Column("effect", String(16), nullable=False),  # suppressed, unsubscribed, counted, none
    Column("received_at", DateTime(timezone=True), nullable=False),
)


# What a reader told us beyond their topics (issue 14): "More like this" / "Less like this" on a
# paper, one row per reader and paper (the last choice wins), and the papers they gave as their
# own. Both belong to the subscriber: shown only to them, deleted when they unsubscribe or are
# forgotten, never logged.
feedback = Table(
    "feedback", metadata,
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), primary_key=True),
    Column("paper_id", String(200), primary_key=True),
    Column("verdict", String(8), nullable=False),  # "more" or "less"
    Column("created_at", DateTime(timezone=True), nullable=False),
)

library_papers = Table(
    "library_papers", metadata,
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), primary_key=True),
    Column("key", String(300), primary_key=True),  # "arxiv:2401.01234", or a BibTeX key
    Column("title", Text, nullable=False),
    Column("abstract", Text, nullable=False, default=""),
    Column("paper_id", String(200)),  # the catalog paper it was matched to, if any
    Column("origin", String(8), nullable=False),  # "file" (subscribers/ files) or "web"
    Column("added_at", DateTime(timezone=True), nullable=False),
)


# Paper embeddings (the `semantic` extra), kept so a daily run embeds only new or edited papers.
# No foreign key: embeddings are a cache, and a rekeyed paper is embedded again.
paper_embeddings = Table(
    "paper_embeddings", metadata,
    Column("paper_id", String(200), primary_key=True),
    Column("model", String(100), primary_key=True),
    Column("digest", String(64), nullable=False),  # of the embedded text: an edited abstract
    Column("vector", LargeBinary, nullable=False),  # is embedded again; float32 bytes
)

# Topic rankings of a run, shared by its worker processes so each topic is ranked once
# (relevance/shared.py). A cache: keyed by a digest of the catalog, vocabulary, weights and
# ranking code, so a ranking is only ever read back for the exact inputs it was made from.
topic_rankings = Table(
    "topic_rankings", metadata,
    Column("catalog", String(64), primary_key=True),
    Column("query", String(64), primary_key=True),  # digest of the understood query
    Column("hits", Text, nullable=False),  # JSON: [[paper index, score, reason], ...]
    Column("made_at", DateTime(timezone=True), nullable=False),
)



def new_link_id() -> str:
    return secrets.token_urlsafe(9)  # 12 characters, 72 random bits: a handle, not a secret


def new_link_key() -> str:
    return secrets.token_urlsafe(24)


def legacy_unsubscribe_until(engine: Engine) -> datetime | None:
    """Until when unsubscribe links signed before the upgrade still work (None: never did)."""
    with engine.connect() as conn:
        value = conn.scalar(select(meta.c.value).where(meta.c.key == "legacy_unsubscribe_until"))
    return datetime.fromisoformat(value) if value else None


def secret_key(engine: Engine) -> str:
    """The signing key kept in the database, made on first use, when none is configured."""
    with engine.begin() as conn:
        value = conn.scalar(select(meta.c.value).where(meta.c.key == "secret_key"))
        if value is None:
            value = secrets.token_urlsafe(32)
            conn.execute(insert(meta).values(key="secret_key", value=value))
        return value

