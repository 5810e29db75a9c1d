"""Operations for the migrations that describe the schema from before Alembic (0001-0004).

Until then ``connect`` ran ``create_all`` and ``ALTER TABLE ... ADD COLUMN`` for any nullable
column a database lacked, so a database made by an older version holds some of those tables
and columns, depending on which versions opened it. These operations do only what is missing;
migrations written after 0004 use plain ``op`` calls (the database is then known exactly).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op


def create_table(name: str, *items: Any, indexes: tuple[str, ...] = ()) -> None:
    """``op.create_table`` unless the table exists; ``indexes`` are the columns that have one
    (named as ``create_all`` named them: ``ix_<table>_<column>``)."""
    if sa.inspect(op.get_bind()).has_table(name):
        return
    op.create_table(name, *items)
    for column in indexes:
        op.create_index(f"ix_{name}_{column}", name, [column])


def add_columns(table: str, *columns: sa.Column[Any]) -> None:
    """``op.add_column`` for each column the table lacks (all nullable, as the ALTERs were)."""
    have = {column["name"] for column in sa.inspect(op.get_bind()).get_columns(table)}
    for column in columns:
        if column.name not in have:
            op.add_column(table, column)
