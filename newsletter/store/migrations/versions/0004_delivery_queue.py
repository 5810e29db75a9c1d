"""Deliveries become a shared work queue (08b0374).

The worker holding a row, and until when.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa

from newsletter.store.migrations.legacy import add_columns

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_columns(
        "deliveries",
        sa.Column("claimed_by", sa.String(200)),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
    )
