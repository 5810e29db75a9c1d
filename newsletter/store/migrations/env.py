"""Alembic's entry point, run by every migration command in ``newsletter/store/migrate.py``.

That module opens the connection (under a lock, in one transaction) and hands it over with
the tables (``config.attributes``); there is no alembic.ini and no offline (SQL script) mode,
because the first migrations look at the database to see what an older version left there.
"""

from __future__ import annotations

from alembic import context

from newsletter.store.migrate import include_name

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("migrations run through `newsletter db upgrade` "
                       "(newsletter/store/migrate.py), which opens the database")
context.configure(
    connection=connection,
    target_metadata=context.config.attributes["metadata"],  # newsletter/store/schema.py
    include_name=include_name,
    # SQLite alters little in place: autogenerate writes batch operations (copy and swap).
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
