"""Fixtures of the store tests: `old_engine` makes a database as an older version left it."""

from migration_checks import old_engine  # noqa: F401
