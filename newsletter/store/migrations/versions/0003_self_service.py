"""Self-service and semantic ranking (cda4e32).

Sign-ups waiting for confirmation, one click per reader and paper, the paper embeddings cache.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa

from newsletter.store.migrations.legacy import create_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_table(
        "signups",
        sa.Column("email", sa.String(320), primary_key=True),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("requested_at", UTC_TIME, nullable=False),
        sa.Column("emailed_at", UTC_TIME),
    )
    create_table(
        "clicks",
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), primary_key=True),
        sa.Column("paper_id", sa.String(200), primary_key=True),
        sa.Column("clicked_at", UTC_TIME, nullable=False),
    )
    create_table(
        "paper_embeddings",
        sa.Column("paper_id", sa.String(200), primary_key=True),
        sa.Column("model", sa.String(100), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
    )
