"""Parser for saved Hugging Face papers listing pages (the plain text kept in ``seeds/``).

A page is a header (boilerplate and a page date such as ``Mar 11``, without a year), then one
entry per paper: a title line, an abstract line, and on some pages meta lines (``• 3 authors``,
``·``, ``May 31, 2023``). Blank lines may or may not separate them, so titles and abstracts are
told apart by position, with line length as a sanity check. Bad entries become Problems; the
parser never raises for content.

Dates are facts only as far as the page states them. The page date is when the page *listed*
its papers (``listed_at``), not when they were published; without a year, its year is the
latest one up to ``today`` and flagged as inferred, so it serves an age but is never shown. An
entry's own date is its publication date only with its year (``May 31, 2023``); a yearless one
(``Feb 23``) is left out rather than given a year nobody stated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from newsletter.catalog.sources.ids import bounded_count, paper_slug
from newsletter.models import Link, Paper, Problem, ProblemLog

BOILERPLATE = (
    "Get trending papers in your email inbox once a day!",
    "Get trending papers in your email inbox!",
    "byAK and the research community",
    "Daily Papers",
    "Subscribe",
    "new",
)
# The longest arXiv titles run to about 250 characters; a longer line is not a title.
TITLE_MAX = 300
# No real abstract is this short, so a shorter line can only be a title.
ABSTRACT_MIN = 100

_MONTHS = {name: number for number, names in enumerate((
    ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",),
    ("jun", "june"), ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"),
    ("oct", "october"), ("nov", "november"), ("dec", "december"),
), start=1) for name in names}
_DATE = re.compile(r"(?P<month>[A-Za-z]{3,9})\.? (?P<day>\d{1,2})(?:,? (?P<year>\d{4}))?")
_AUTHORS = re.compile(r"(\d{1,10}) authors?", re.IGNORECASE)  # int() of 5,000 digits raises
_META_MARKS = "•·"
_CODE_URL = re.compile(
    r"(?<![\w./-])(?:https?://)?(?:www\.)?"
    r"(?:github\.com|gitlab\.com|bitbucket\.org|gitee\.com|huggingface\.co)/[^\s{}<>\"'\[\]]+",
    re.IGNORECASE)
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


@dataclass(frozen=True, slots=True)
class _Line:
    no: int  # 1-based line number in the file
    text: str  # whitespace-normalized
    meta: bool = False


def parse_seed_page(text: str, source: str, today: date) -> tuple[list[Paper], list[Problem]]:
    """Papers and Problems found in one saved listing page; ``source`` is the display path."""
    if not text.strip():
        return [], [Problem(f"{source}:1", "the file is empty: save the listing page again "
                                           "(a title line, then an abstract line, per paper)")]
    problems = ProblemLog(source)
    page_date, body = _header(_lines(text), source, today, problems)
    papers = _entries(body, source, page_date, problems)
    if not papers and not problems:
        problems.append(Problem(f"{source}:1", "no paper entries found, only the page header: "
                                               "expected a title line, then an abstract line"))
    return papers, problems.done()


def _lines(text: str) -> list[_Line]:
    """Non-blank lines with their numbers; blank lines carry no meaning on these pages."""
    result = []
    # Split on "\n" only: str.splitlines() also breaks at U+2028, NEL and form feeds, which
    # would cut an abstract in two and put line numbers off from what an editor shows.
    for no, raw in enumerate(text.translate(_INVISIBLE).split("\n"), start=1):
        clean = " ".join(raw.split())
        if clean and clean not in BOILERPLATE:
            result.append(_Line(no, clean))
    return result


def _header(lines: list[_Line], source: str, today: date,
            problems: list[Problem]) -> tuple[_Listed | None, list[_Line]]:
    """The page date and the body. Boilerplate lines are already gone; a saved page may glue
    the last one to the first title ("SubscribeLearning to Branch ...")."""
    page_date = None
    start = 0
    if lines and (match := _DATE.fullmatch(lines[0].text)):
        day = _read_date(lines[0].text, today)
        if day is not None:
            page_date = _Listed(datetime.combine(day, time(0), UTC), not match.group("year"))
        else:
            problems.append(Problem(f"{source}:{lines[0].no}", f"the page date {lines[0].text!r}"
                                    " is not a calendar date: fix it (e.g. 'Mar 11') or delete it"))
        start = 1
    body = lines[start:]
    if body:
        body[0] = _Line(body[0].no, _unglue(body[0].text))
    return page_date, _mark_meta(body)


def _unglue(text: str) -> str:
    for phrase in BOILERPLATE:
        rest = text[len(phrase):]
        # A lowercase continuation is a word that happens to start like the phrase ("newton").
        if text.startswith(phrase) and rest and not rest[0].islower():
            return rest.strip()
    return text


def _mark_meta(lines: list[_Line]) -> list[_Line]:
    """Flag meta lines: bullets, separators, dates, and whatever follows a lone separator
    unless it is a title (then the separator merely lacks its date)."""
    marked = []
    for i, line in enumerate(lines):
        text = line.text
        after_separator = i > 0 and lines[i - 1].text == "·" and not _is_entry_start(lines, i)
        meta = text[0] in _META_MARKS or bool(_DATE.fullmatch(text)) or after_separator
        marked.append(_Line(line.no, text, meta))
    return marked


def _is_entry_start(lines: list[_Line], i: int) -> bool:
    return i + 1 < len(lines) and _is_abstract(lines, i + 1)


def _is_abstract(lines: list[_Line], i: int) -> bool:
    """Whether the text line at ``i``, found where an abstract belongs, is one: long enough,
    and not a title whose own abstract follows it."""
    text = lines[i].text
    if lines[i].meta or len(text) < ABSTRACT_MIN:
        return False
    following = lines[i + 1] if i + 1 < len(lines) else None
    title_of_next = (len(text) <= TITLE_MAX and following is not None and not following.meta
                     and len(following.text) > TITLE_MAX)
    return not title_of_next


@dataclass(frozen=True, slots=True)
class _Listed:
    at: datetime
    year_inferred: bool


def _entries(lines: list[_Line], source: str, page_date: _Listed | None,
             problems: list[Problem]) -> list[Paper]:
    papers: list[Paper] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        where = f"{source}:{line.no}"
        has_abstract = i + 1 < len(lines) and _is_abstract(lines, i + 1)
        if line.meta:
            problems.append(Problem(where, f"{line.text!r} looks like a meta line (authors or date)"
                                    " but no paper comes before it: move it under its abstract"
                                    " or delete it"))
            i += 1
            continue
        if len(line.text) > TITLE_MAX:
            problems.append(_overlong(where, line.text, has_abstract))
            i = _skip_meta(lines, i + (2 if has_abstract else 1))
            continue
        if not has_abstract:
            problems.append(Problem(where, f"the title {_short(line.text)!r} has no abstract after"
                                    " it: add the abstract on the next line or delete the title"))
            i += 1
            continue
        end = _skip_meta(lines, i + 2)
        paper = _entry(line, lines[i + 1], lines[i + 2:end], source, page_date, problems)
        if paper is not None:
            papers.append(paper)
        i = end
    return papers


def _overlong(where: str, text: str, has_abstract: bool) -> Problem:
    if has_abstract:
        return Problem(where, f"a title of {len(text)} characters is too long (at most "
                              f"{TITLE_MAX}): shorten it; this entry was skipped")
    return Problem(where, f"this {len(text)}-character line reads as an abstract with no title "
                          "before it: add the title on the line above or delete the line")


def _skip_meta(lines: list[_Line], i: int) -> int:
    while i < len(lines) and lines[i].meta:
        i += 1
    return i


def _entry(title: _Line, abstract: _Line, meta: list[_Line], source: str,
           page_date: _Listed | None, problems: list[Problem]) -> Paper | None:
    author_count: int | None = None
    published: date | None = None
    for line in meta:
        for part in filter(None, (p.strip() for p in re.split(f"[{_META_MARKS}]", line.text))):
            if (match := _AUTHORS.fullmatch(part)) and bounded_count(int(match[1])) is not None:
                author_count = int(match.group(1))
            elif (match := _DATE.fullmatch(part)) and (day := _read_date(part, date.max)):
                # with its year, the paper's publication date; a yearless one would need a
                # year nobody stated: left out (date.max only checks that the day exists)
                published = day if match.group("year") else None
            else:
                problems.append(Problem(f"{source}:{line.no}", f"cannot read {part!r} under the"
                                        f" paper {_short(title.text)!r}: expected 'N authors' or"
                                        " a date like 'May 31, 2023'; fix the line (entry skipped)"))
                return None
    return Paper(
        id=paper_slug(title.text), title=title.text, abstract=abstract.text,
        author_count=author_count, published=published,
        links=tuple(Link("code", url) for url in code_links(abstract.text)), sources=(source,),
        listed_at=page_date.at if page_date else None,
        listed_year_inferred=page_date.year_inferred if page_date else False,
        origin=f"{source}:{title.no}")


def _read_date(text: str, anchor: date) -> date | None:
    """``May 31, 2023``, or ``Mar 11`` as the latest Mar 11 on or before ``anchor``."""
    match = _DATE.fullmatch(text)
    month = _MONTHS.get(match.group("month").lower()) if match else None
    if match is None or month is None:
        return None
    day = int(match.group("day"))
    if match.group("year"):
        return _date(int(match.group("year")), month, day)
    # Eight years back always reaches a leap year, for Feb 29.
    for year in range(anchor.year, anchor.year - 9, -1):
        found = _date(year, month, day)
        if found is not None and found <= anchor:
            return found
    return None


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def code_links(text: str) -> list[str]:
    """Code repository URLs mentioned in ``text``, cleaned of the prose around them."""
    urls: list[str] = []
    for match in _CODE_URL.finditer(text):
        url = _trim(match.group())
        if "://" not in url:
            url = "https://" + url
        if url.count("/") >= 3 and url not in urls:
            urls.append(url)
    return urls


def _trim(url: str) -> str:
    while True:
        before = url
        url = url.rstrip(".,;:!?'\"/")
        if url.endswith(")") and url.count("(") < url.count(")"):
            url = url[:-1]
        url = url.removesuffix(".git")
        if url == before:
            return url


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
