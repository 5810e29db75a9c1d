"""``python -m newsletter.store.migrations "what it does"``: write the next migration (see
the package docstring)."""

from __future__ import annotations

import sys

from newsletter.store.migrate import new_revision
from newsletter.store.schema import metadata

if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
    sys.exit('usage: python -m newsletter.store.migrations "what the migration does"')
path = new_revision(sys.argv[1], metadata)
print(f"Wrote {path}: read it, edit it if need be, and run the tests.")
