"""First schema (cd5211a): papers, subscribers, the delivery ledger, meta.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa

from newsletter.store.migrations.legacy import create_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_table(
        "papers",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("arxiv_id", sa.String(40), unique=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("title_key", sa.String(400), nullable=False),
        sa.Column("abstract", sa.Text, nullable=False),
        sa.Column("authors", sa.JSON, nullable=False),
        sa.Column("author_count", sa.Integer),
        sa.Column("published", sa.Date),
        sa.Column("url", sa.Text),
        sa.Column("links", sa.JSON, nullable=False),
        sa.Column("upvotes", sa.Integer),
        sa.Column("comments", sa.Integer),
        sa.Column("sources", sa.JSON, nullable=False),
        sa.Column("first_seen_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        indexes=("title_key", "first_seen_at"),
    )
    create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("exclude", sa.JSON, nullable=False),
        sa.Column("max_papers", sa.Integer, nullable=False),
        sa.Column("frequency", sa.String(10), nullable=False),
        sa.Column("weekday", sa.Integer, nullable=False),
        sa.Column("send_time", sa.String(5), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(300), nullable=False),
        sa.Column("self_managed", sa.Boolean, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        indexes=("status",),
    )
    create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=False),
        sa.Column("edition", sa.String(16), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("message_id", sa.String(300)),
        sa.Column("paper_count", sa.Integer, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.UniqueConstraint("subscriber_id", "edition", name="one_digest_per_edition"),
        indexes=("state",),
    )
    create_table(
        "sent_papers",
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), primary_key=True),
        sa.Column("paper_id", sa.String(200), primary_key=True),
        sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id"), nullable=False),
        sa.Column("sent_at", UTC_TIME, nullable=False),
    )
    create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )

