"""Which failures suppress an address, when a digest was due, and reactivation.

deliveries.hard_failure marks the permanent, address-level failures (a 5xx to RCPT or DATA,
later hard bounces): the only ones that count toward suppression. Rows that failed before it
existed are marked when their error says the server refused them for good; the ones that ran
out of temporary attempts are not. deliveries.due_at: when the digest was due, so a row too
old to send is skipped rather than sent late. subscribers.reactivated_at: failures before it
no longer count.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from newsletter.store.migrations.legacy import add_columns

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Only what is missing: a database made before migrations by a build of this version
    # (connect then created every table whole) has these columns already.
    add_columns("deliveries", sa.Column("hard_failure", sa.Boolean()),
                sa.Column("due_at", sa.DateTime(timezone=True)))
    add_columns("subscribers", sa.Column("reactivated_at", sa.DateTime(timezone=True)))
    # SendError's text: "<address>: permanent failure: 550 ..."; "gave up after N attempts:
    # ...: temporary failure: ..." for the temporary ones, which no longer count.
    deliveries = sa.table("deliveries", sa.column("state", sa.String),
                          sa.column("last_error", sa.Text), sa.column("hard_failure", sa.Boolean))
    op.execute(deliveries.update()
               .where((deliveries.c.state == "failed")
                      & deliveries.c.last_error.like("%: permanent failure: 5%"))
               .values(hard_failure=True))
