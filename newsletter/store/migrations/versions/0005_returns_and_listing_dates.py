"""What comes back, and dates as stated (issue 15).

- ``returns``: one row per message read from the mailbox of returns (bounces, complaints,
  mailto unsubscribes), under its own key, so a message read twice is counted once.
- ``papers.listed_year_inferred``: the listing date's year was a guess (a saved page's
  "Mar 14"), fit for an age, never shown.
- Data: a paper only ever seen on saved pages (``.txt`` sources) had its page's date stored as
  its publication date, a year included that no page stated. Those dates are cleared; the next
  ingest of the pages sets the listing date, and an entry's own dated line ("May 31, 2023")
  again as its publication date. Papers seen elsewhere too keep theirs.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "returns",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("edition", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("effect", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_key"),
    )
    with op.batch_alter_table("returns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_returns_edition"), ["edition"], unique=False)
    with op.batch_alter_table("papers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("listed_year_inferred", sa.Boolean(), nullable=True))
    _forget_page_dates()


def _forget_page_dates() -> None:
    papers = sa.table("papers", sa.column("id", sa.String), sa.column("sources", sa.JSON),
                      sa.column("published", sa.Date))
    conn = op.get_bind()
    rows = conn.execute(sa.select(papers.c.id, papers.c.sources)
                        .where(papers.c.published.is_not(None))).all()
    seed_only = [row.id for row in rows if _seed_pages_only(row.sources)]
    for start in range(0, len(seed_only), 500):
        conn.execute(sa.update(papers).where(papers.c.id.in_(seed_only[start:start + 500]))
                     .values(published=None))


def _seed_pages_only(sources: object) -> bool:
    if isinstance(sources, str):  # a driver that hands JSON back as text
        sources = json.loads(sources)
    return bool(sources) and all(isinstance(s, str) and s.lower().endswith(".txt")
                                 and "://" not in s for s in sources)
