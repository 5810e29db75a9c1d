"""Catalog sources and scheduled dispatch (d3250f0, e83a208).

The papers site's extra fields, HTTP validators for conditional fetches, the dispatch lock,
retry times.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa

from newsletter.store.migrations.legacy import add_columns, create_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    add_columns(
        "papers",
        sa.Column("ai_summary", sa.Text),
        sa.Column("keywords", sa.JSON),
        sa.Column("github_stars", sa.Integer),
        sa.Column("clicks", sa.Integer),
        sa.Column("listed_at", UTC_TIME),
        sa.Column("thumbnail", sa.Text),
    )
    add_columns("deliveries", sa.Column("next_attempt_at", UTC_TIME))
    create_table(
        "http_validators",
        sa.Column("url", sa.String(2000), primary_key=True),
        sa.Column("etag", sa.Text),
        sa.Column("last_modified", sa.Text),
        sa.Column("fetched_at", UTC_TIME, nullable=False),
    )
    create_table(
        "locks",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
    )
