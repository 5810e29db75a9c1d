"""Readers' feedback and libraries (issue 14).

``feedback``: "More like this" / "Less like this", one row per reader and paper. ``library_papers``:
the papers a reader gave as their own (arXiv ids, BibTeX), from their subscriber file or the
preferences page.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), primary_key=True),
        sa.Column("paper_id", sa.String(200), primary_key=True),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
    )
    op.create_table(
        "library_papers",
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), primary_key=True),
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("abstract", sa.Text, nullable=False),
        sa.Column("paper_id", sa.String(200)),
        sa.Column("origin", sa.String(8), nullable=False),
        sa.Column("added_at", UTC_TIME, nullable=False),
    )

