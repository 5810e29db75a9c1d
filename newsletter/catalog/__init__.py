"""Catalog: takes source files, folders and URLs (saved papers-site pages, HF daily papers,
arXiv Atom/RSS, JSON Lines); gives one merged, deduplicated ``Paper`` per work in the store,
and each paper's trending score. ``sources/`` parses, ``ingest`` merges and saves."""
