"""Topic rankings shared by the worker processes of a run (``relevance/shared.py``).

``topic_rankings``: a cache, one row per catalog digest and understood query; rows of earlier
catalogs are dropped by the next day's run.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "topic_rankings",
        sa.Column("catalog", sa.String(64), primary_key=True),
        sa.Column("query", sa.String(64), primary_key=True),
        sa.Column("hits", sa.Text, nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("topic_rankings")
