"""Per-subscriber links, sign-up requests, operator sessions (issue 16).

Each subscriber gets a random link handle and key (``compose/tokens.py``); unsubscribe links of
the old scheme, which carried the address, keep working for 90 days from this upgrade (``meta``
``legacy_unsubscribe_until``). ``signups`` (one pending row per address, which a second sign-up
overwrote) becomes ``signup_requests`` (one row per request, by the hash of its link); pending
sign-ups of the old table are dropped, as their links were of the old scheme. ``admin_sessions``
holds the operator's signed-in browsers.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
LEGACY_UNSUBSCRIBE_GRACE = timedelta(days=90)  # as schema.LEGACY_UNSUBSCRIBE_GRACE, frozen here


def upgrade() -> None:
    op.create_table(
        "admin_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("password_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
    )
    op.create_index("ix_admin_sessions_expires_at", "admin_sessions", ["expires_at"])
    op.create_table(
        "signup_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), unique=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("requested_at", UTC_TIME, nullable=False),
    )
    for column in ("client", "email", "requested_at"):
        op.create_index(f"ix_signup_requests_{column}", "signup_requests", [column])
    op.drop_table("signups")
    _links_for_everyone()


def _links_for_everyone() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("link_id", sa.String(16)))
        batch.add_column(sa.Column("link_key", sa.String(44)))
        batch.add_column(sa.Column("retired_link_keys", sa.JSON))
    bind = op.get_bind()
    subscribers = sa.table("subscribers", sa.column("id", sa.Integer),
                           sa.column("link_id", sa.String), sa.column("link_key", sa.String))
    ids = bind.execute(sa.select(subscribers.c.id)).scalars().all()
    for row_id in ids:
        bind.execute(subscribers.update().where(subscribers.c.id == row_id).values(
            link_id=secrets.token_urlsafe(9), link_key=secrets.token_urlsafe(24)))
    if ids:
        meta = sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text))
        until = datetime.now(UTC) + LEGACY_UNSUBSCRIBE_GRACE
        bind.execute(meta.delete().where(meta.c.key == "legacy_unsubscribe_until"))
        bind.execute(meta.insert().values(key="legacy_unsubscribe_until",
                                          value=until.isoformat()))
    with op.batch_alter_table("subscribers") as batch:
        batch.alter_column("link_id", existing_type=sa.String(16), nullable=False)
        batch.alter_column("link_key", existing_type=sa.String(44), nullable=False)
        batch.create_index("subscribers_link_id", ["link_id"], unique=True)
