"""Frozen copies of the schema as older versions made it, to build their databases in tests.

Copied from ``newsletter/store.py`` of the commits named (tests must not read git): these
never change, whatever ``newsletter/store/schema.py`` becomes.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)


def schema_cd5211a() -> MetaData:
    """The first schema (commit cd5211a): five tables, no ALTERs yet."""
    metadata = MetaData()
    Table(
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
        Column("first_seen_at", DateTime(timezone=True), nullable=False, index=True),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )
    Table(
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
    Table(
        "deliveries", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("subscriber_id", Integer, ForeignKey("subscribers.id"), nullable=False),
        Column("edition", String(16), nullable=False),
        Column("state", String(12), nullable=False, index=True),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", Text),
        Column("message_id", String(300)),
        Column("paper_count", Integer, nullable=False, default=0),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        UniqueConstraint("subscriber_id", "edition", name="one_digest_per_edition"),
    )
    Table(
        "sent_papers", metadata,
        Column("subscriber_id", Integer, ForeignKey("subscribers.id"), primary_key=True),
        Column("paper_id", String(200), primary_key=True),
        Column("delivery_id", Integer, ForeignKey("deliveries.id"), nullable=False),
        Column("sent_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "meta", metadata,
        Column("key", String(64), primary_key=True),
        Column("value", Text, nullable=False),
    )
    return metadata


def schema_7704e07() -> MetaData:
    """The last schema before migrations (commit 7704e07): ten tables."""
    metadata = MetaData()
    Table(
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
    Table(
        "http_validators", metadata,
        Column("url", String(2000), primary_key=True),
        Column("etag", Text),
        Column("last_modified", Text),
        Column("fetched_at", DateTime(timezone=True), nullable=False),
    )
    Table(
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
    Table(
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
    Table(
        "sent_papers", metadata,
        Column("subscriber_id", Integer, ForeignKey("subscribers.id"), primary_key=True),
        Column("paper_id", String(200), primary_key=True),
        Column("delivery_id", Integer, ForeignKey("deliveries.id"), nullable=False),
        Column("sent_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "locks", metadata,
        Column("name", String(64), primary_key=True),
        Column("owner", String(200), nullable=False),
        Column("expires_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "meta", metadata,
        Column("key", String(64), primary_key=True),
        Column("value", Text, nullable=False),
    )
    Table(
        "signups", metadata,
        Column("email", String(320), primary_key=True),
        Column("topics", JSON, nullable=False),
        Column("requested_at", DateTime(timezone=True), nullable=False),
        Column("emailed_at", DateTime(timezone=True)),
    )
    Table(
        "clicks", metadata,
        Column("subscriber_id", Integer, ForeignKey("subscribers.id"), primary_key=True),
        Column("paper_id", String(200), primary_key=True),
        Column("clicked_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "paper_embeddings", metadata,
        Column("paper_id", String(200), primary_key=True),
        Column("model", String(100), primary_key=True),
        Column("digest", String(64), nullable=False),  # of the embedded text: an edited abstract
        Column("vector", LargeBinary, nullable=False),  # is embedded again; float32 bytes
    )
    return metadata
