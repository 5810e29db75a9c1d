"""A paper's identity: its arXiv id without version when known, else its normalized title.

Kept apart from ``catalog`` so that every parser can use it without importing the catalog
(which imports the parsers).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime

# Letters that NFKD leaves whole, so the ascii fold would drop them ("Łojasiewicz").
_FOLD = str.maketrans({"Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "Đ": "D", "đ": "d", "ß": "ss",
                       "Æ": "AE", "æ": "ae", "Œ": "OE", "œ": "oe", "Þ": "Th", "þ": "th", "ı": "i"})
SLUG_MAX = 100
# Counts (upvotes, comments, stars, authors) are stored as 32-bit integers, as PostgreSQL's
# INTEGER is: a larger value is refused where it is read, never where it is stored.
MAX_COUNT = 2**31 - 1

# New-style ids (2007 on: 0704.0001, 2403.01234) and old-style ones (hep-th/9901001,
# math.CO/0309136) with an optional version. Old-style archives are listed by name so that
# "post/1234567" in some blog's URL is not taken for one.
_ARCHIVES = ("astro-ph|cond-mat|gr-qc|hep-ex|hep-lat|hep-ph|hep-th|math-ph|nlin|nucl-ex|nucl-th|"
             "physics|quant-ph|math|cs|q-bio|q-fin|stat|chao-dyn|solv-int|patt-sol|adap-org|"
             "comp-gas|cmp-lg|acc-phys|alg-geom|ao-sci|atom-ph|bayes-an|chem-ph|dg-ga|funct-an|"
             "mtrl-th|plasm-ph|q-alg|supr-con")
_ARXIV = re.compile(rf"(?<![\w.])(?P<id>\d{{4}}\.\d{{4,5}}|(?:{_ARCHIVES})(?:\.[A-Z]{{2}})?/\d{{7}})"
                    r"(?:v\d+)?(?![\w.])")
# Inside a longer string (a URL, an OAI identifier) an id counts only where arXiv is named:
# "2024.12345" in any other URL is a coincidence.
_CONTEXT = re.compile(r"arxiv|huggingface\.co/papers/", re.IGNORECASE)


def arxiv_id(text: str | None) -> str | None:
    """The arXiv id in ``text`` (a bare id, ``arXiv:…``, an abs/pdf URL, an OAI identifier such
    as ``oai:arXiv.org:2403.01234v2``) without its version: v1 and v2 are one paper."""
    text = (text or "").strip()
    bare = _ARXIV.fullmatch(text)
    if bare:
        return bare.group("id")
    match = _ARXIV.search(text) if _CONTEXT.search(text) else None
    return match.group("id") if match else None


def title_key(title: str) -> str:
    """The title as dedupe sees it: accents folded, lowercase, punctuation gone, single spaces.

    Punctuation becomes a space, so "Two-layer" and "Two layer" meet; apostrophes vanish, so
    "doesn't" stays one word. Letters with no ASCII form (Greek, CJK) are kept: dropping them
    could make two different titles collide.
    """
    text = unicodedata.normalize("NFKD", title.translate(_FOLD))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"['\u2018\u2019\u02bc`]", "", text)
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def paper_slug(title: str) -> str:
    """A stable id for a paper with no arXiv id: its normalized title as ASCII words."""
    key = title_key(title)
    slug = "-".join(re.findall(r"[a-z0-9]+", key))
    if not slug:
        return f"paper-{short_hash(key or title)}"
    if len(slug) <= SLUG_MAX:
        return slug
    # Cut at a word boundary; the hash keeps two long titles sharing a prefix apart.
    head = slug[:SLUG_MAX - 9]
    head = head.rsplit("-", 1)[0] if slug[SLUG_MAX - 9] != "-" and "-" in head else head
    return f"{head}-{short_hash(slug)}"


def paper_id(arxiv: str | None, title: str) -> str:
    """The id a parser gives a paper: the arXiv id when known, else the title slug."""
    return arxiv or paper_slug(title)


def short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def bounded_count(value: object) -> int | None:
    """``value`` when it is a whole number from 0 to MAX_COUNT, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT:
        return value
    return None


def one_line(text: str) -> str:
    """Collapse all whitespace: feeds wrap titles and abstracts at arbitrary columns."""
    return " ".join(text.split())


def utc_moment(text: str) -> datetime | None:
    """An ISO 8601 time in UTC (a time without an offset is taken as UTC), or None when ``text``
    is not one or its offset moves it out of the calendar (year 1 or 9999: OverflowError)."""
    try:
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
