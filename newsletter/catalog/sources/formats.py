"""Which parser reads a source: by content where the content says it, else by name.

Content decides for the structured formats, because URLs rarely have a telling suffix
(``/api/daily_papers?date=…``, ``/rss/cs.LG``) and files get misnamed: ``<`` opens a feed,
``[`` the HF daily papers list, ``{`` JSON Lines. A ``.txt`` name always means a saved papers
page, whose first title may well start with "[" ("[Re] Reproducing …").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from newsletter.models import Paper, Problem

Parsed = tuple[list[Paper], list[Problem]]
Reader = Callable[[bytes, str, date], Parsed]  # (content, display name, today)

_HTML = re.compile(rb"^(?:<\?xml[^>]*>\s*)?<(?:!doctype\s+html|html)[\s>]", re.IGNORECASE)


def _decode(data: bytes, source: str) -> str | Problem:
    if b"\x00" in data:
        line = data[:data.index(b"\x00")].count(b"\n") + 1
        return Problem(f"{source}:{line}", "this is a binary file, not saved page text: "
                                           "remove it from the sources")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        return Problem(f"{source}:{line}", f"not UTF-8 text (byte 0x{data[exc.start]:02x} at "
                                           f"offset {exc.start}): save the file as UTF-8")


def _text_reader(parse: Callable[[str, str, date], Parsed]) -> Reader:
    def read(data: bytes, source: str, today: date) -> Parsed:
        text = _decode(data, source)
        return ([], [text]) if isinstance(text, Problem) else parse(text, source, today)
    return read


def read_seed_page(data: bytes, source: str, today: date) -> Parsed:
    from newsletter.catalog.sources.seedpage import parse_seed_page
    return _text_reader(parse_seed_page)(data, source, today)


def read_hf_daily(data: bytes, source: str, today: date) -> Parsed:
    from newsletter.catalog.sources.hf import parse_hf_daily
    return _text_reader(parse_hf_daily)(data, source, today)


def read_jsonl(data: bytes, source: str, today: date) -> Parsed:
    from newsletter.catalog.sources.jsonl import parse_jsonl
    return _text_reader(parse_jsonl)(data, source, today)


def read_feed(data: bytes, source: str, today: date) -> Parsed:
    # feedparser reads the XML declaration's encoding itself: no decoding here.
    from newsletter.catalog.sources.arxiv import parse_arxiv_feed
    if _HTML.match(data.lstrip()):
        return [], [Problem(source, "this is an HTML page, not a feed or an API answer: "
                                    "check the URL")]
    return parse_arxiv_feed(data, source, today)


# One reader per name suffix. The structured ones may be overruled by the content (SNIFFED).
READERS: dict[str, Reader] = {
    ".txt": read_seed_page,
    ".json": read_hf_daily,
    ".jsonl": read_jsonl, ".ndjson": read_jsonl,
    ".xml": read_feed, ".atom": read_feed, ".rss": read_feed,
}
SNIFFED: dict[str, Reader] = {"<": read_feed, "[": read_hf_daily, "{": read_jsonl}


def suffix_of(name: str) -> str:
    """The lowercase suffix of a file name or of a URL's path ('' for none)."""
    path = urlsplit(name).path if "://" in name else name
    return PurePosixPath(path).suffix.lower()


def reader_for(data: bytes, name: str, content_type: str = "") -> Reader | None:
    """The reader for ``data`` named ``name`` (a path or URL) and served as ``content_type``
    (URLs only); None when none of them tells."""
    suffix = suffix_of(name)
    named = READERS.get(suffix)
    if named is not None and named not in SNIFFED.values():
        return named  # .txt, and readers registered for other suffixes
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1].decode("ascii", "replace")
    plain = read_seed_page if content_type.lower().startswith("text/plain") else None
    return SNIFFED.get(head) or named or plain


def describe_formats() -> str:
    return ", ".join(sorted(READERS))


def read_source(data: bytes, name: str, source: str, today: date,
                content_type: str = "") -> Parsed:
    """Papers and Problems in ``data``; an unrecognized format is a Problem too."""
    reader = reader_for(data, name, content_type)
    if reader is None:
        suffix = suffix_of(name)
        return [], [Problem(source, f"unknown file type {suffix or '(no suffix)'!r} and content"
                                    " that is not JSON or a feed: the catalog reads "
                                    f"{describe_formats()} files; rename or remove it")]
    try:
        return reader(data, source, today)
    except (ValueError, OverflowError, RecursionError) as exc:  # the parsers' checks missed it
        return [], [Problem(source, f"cannot be read ({type(exc).__name__}: {exc}): the file is "
                                    "damaged or not what its name says; nothing from it was "
                                    "stored")]
