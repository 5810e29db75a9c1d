"""The schema's history as Alembic migrations: ``versions/NNNN_what.py``, applied in order by
``newsletter db upgrade`` (``newsletter/store/migrate.py`` configures Alembic; no alembic.ini).

To change the schema, edit the tables in ``newsletter/store/schema.py``, then write the next
migration with autogenerate:

    python -m newsletter.store.migrations "subscribers choose a locale"

It upgrades a scratch SQLite database through the existing migrations, compares it with
schema.py and writes ``versions/0005_subscribers_choose_a_locale.py`` (numbered after the
newest: the number is the revision id, and ``migrate.head`` relies on it). Read and edit what
it wrote: autogenerate sees a renamed column as a drop and an add, and cannot fill a new
NOT NULL column of existing rows (add it nullable, fill it with ``op.execute``, then alter
it, or give it a ``server_default``). By hand, copy the newest script and change the
``revision``, ``down_revision`` and the ``op`` calls. ``tests/store/test_migrations.py``
then checks that the migrations end equal to schema.py on SQLite and PostgreSQL.

Migrations go forward only (there is no ``db downgrade``): back up before upgrading. 0001-0004
describe the schema from before Alembic and do only what an older database lacks
(``legacy.py``); later ones use plain ``op`` calls. APScheduler's job table is not ours and
stays out (``migrate.FOREIGN_TABLES``).
"""
