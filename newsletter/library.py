"""A reader's own papers: arXiv ids or URLs, or a BibTeX / Zotero export, read into
:class:`~newsletter.models.OwnPaper` and matched to the catalog.

Pure: text in, papers and :class:`~newsletter.models.Problem` out (the preferences page's
upload, a subscriber file's ``papers = [...]`` and ``library = "file.bib"`` all come here). A
bad entry never stops the rest: it is reported once, with its line, and skipped.

A paper is matched to the catalog by its arXiv id (from the id itself, or a BibTeX entry's
``eprint``, ``arxiv``, ``url``, ``doi``, ``journal`` or ``note``), else by its normalized title.
A paper outside the catalog still counts through its title and abstract (BibTeX ``abstract``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace

from newsletter.catalog.sources.ids import arxiv_id, one_line, title_key
from newsletter.models import OwnPaper, Paper, Problem, ProblemLog

MAX_PAPERS = 1000  # a whole Zotero library says no more about a reader's taste than this
MAX_FIELD_CHARS = 5000  # an abstract longer than this is cut (a pasted full text)
EXAMPLE = "one arXiv id or URL per line, like 2401.01234 or https://arxiv.org/abs/2401.01234"

_BIBTEX = re.compile(r"^\s*@\s*[A-Za-z]+\s*[{(]", re.MULTILINE)
_SEPARATORS = re.compile(r"[,;\s]+")
_COMMENT = re.compile(r"(^|\s)#.*")
# The DOI arXiv gives every paper since 2022: 10.48550/arXiv.2401.01234 (a dot, not a slash,
# before the id, so the generic finder does not see it).
_ARXIV_DOI = re.compile(r"10\.48550/arxiv\.(\S+)", re.IGNORECASE)
# Where BibTeX exports (arXiv's own, Zotero, Mendeley, Google Scholar) put the arXiv id.
_ID_FIELDS = ("eprint", "arxiv", "arxivid", "url", "doi", "journal", "note", "howpublished")
_SAYS_ARXIV = ("eprinttype", "archiveprefix")
# bibtexparser logs a warning and an info line for every block it cannot read, quoting the
# text: a reader's papers (which no log may hold), and a flood from one broken upload. Each
# such block is reported as a Problem instead; its errors (its own bugs, then raised) still log.
logging.getLogger("bibtexparser").setLevel(logging.ERROR)


def looks_like_bibtex(text: str) -> bool:
    return _BIBTEX.search(text) is not None


def parse_library(text: str, origin: str) -> tuple[list[OwnPaper], list[Problem]]:
    """The papers in ``text``: BibTeX when it has ``@type{`` entries, else arXiv ids or URLs
    (one per line or separated by commas). ``origin`` names the text in problems ("lib.bib",
    "upload"); each problem says ``origin:line``. Each paper once, at most MAX_PAPERS."""
    problems = ProblemLog(origin)
    text = text.removeprefix("\ufeff")  # a BOM would make the first entry or id unreadable
    if looks_like_bibtex(text):
        found = _parse_bibtex(text, origin, problems)
    else:
        found = parse_ids(_numbered_lines(text), origin, problems)
    return _unique(found, origin, problems), problems.done()


def parse_ids(lines: Iterable[tuple[int, str]], origin: str,
              problems: ProblemLog | list[Problem]) -> list[OwnPaper]:
    """arXiv ids or URLs from numbered lines (several per line, separated by commas or spaces);
    ``#`` starts a comment. One problem per line with anything that is not an id."""
    found: list[OwnPaper] = []
    for number, line in lines:
        line = _COMMENT.sub("", line)  # a "#" inside a URL is no comment
        bad = []
        for token in filter(None, _SEPARATORS.split(line.strip())):
            pid = id_of(token)
            if pid is None:
                bad.append(token)
            else:
                found.append(OwnPaper(key=f"arxiv:{pid}", title=""))
        if bad:
            shown = ", ".join(repr(token[:60]) for token in bad[:3])
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            problems.append(Problem(f"{origin}:{number}",
                                    f"not an arXiv id or URL: {shown}{more}; write {EXAMPLE}"))
    return found


def id_of(token: str) -> str | None:
    """The arXiv id (no version) in one token: a bare id, ``arXiv:…``, an abs or pdf URL, or
    arXiv's DOI; None when it is none of these."""
    token = token.strip("<>()[]\"'{}").rstrip("/")
    token = token[:-4] if token.lower().endswith(".pdf") else token  # arxiv.org/pdf/ID.pdf
    doi = _ARXIV_DOI.search(token)
    if doi:
        return arxiv_id(doi.group(1))
    return arxiv_id(token)


def _numbered_lines(text: str) -> list[tuple[int, str]]:
    return list(enumerate(text.splitlines(), start=1))


def _parse_bibtex(text: str, origin: str, problems: ProblemLog) -> list[OwnPaper]:
    import bibtexparser

    library = bibtexparser.parse_string(text)
    for block in library.failed_blocks:
        problems.append(Problem(f"{origin}:{block.start_line + 1}", _failure(block)))
    found: list[OwnPaper] = []
    for entry in library.entries:
        where = f"{origin}:{entry.start_line + 1}"
        fields = {field.key.lower(): field.value for field in entry.fields
                  if isinstance(field.value, str)}
        paper = _entry_paper(entry.key, fields)
        if paper is None:
            problems.append(Problem(where, f"entry {entry.key!r} has neither a title nor an "
                                           "arXiv id, so nothing to know the paper by; add its "
                                           "title (and abstract) or its eprint"))
        else:
            found.append(paper)
    return found


def _failure(block: object) -> str:
    kind = type(block).__name__
    raw = getattr(block, "raw", "") or ""
    start = one_line(raw)[:50]
    if kind == "DuplicateFieldKeyBlock":
        keys = ", ".join(sorted(getattr(block, "duplicate_keys", ()) or ())) or "a field"
        return f"entry {start!r}... gives {keys} twice; keep one and upload again (skipped)"
    return (f"not a complete BibTeX entry: {start!r}... (a brace or quote left open?); "
            "skipped, the entries after it still count")


def _entry_paper(key: str, fields: dict[str, str]) -> OwnPaper | None:
    title = clean_latex(fields.get("title", ""))
    abstract = clean_latex(fields.get("abstract", ""))[:MAX_FIELD_CHARS]
    pid = _entry_arxiv_id(fields)
    if pid is None and not title:
        return None
    doi = fields.get("doi", "").strip()
    if pid is not None:
        ident = f"arxiv:{pid}"
    elif doi:
        ident = f"doi:{doi.lower()}"
    else:
        ident = key.strip() or f"title:{title_key(title)}"
    return OwnPaper(key=ident[:200], title=title[:MAX_FIELD_CHARS], abstract=abstract)


def _entry_arxiv_id(fields: dict[str, str]) -> str | None:
    says_arxiv = any("arxiv" in fields.get(name, "").lower() for name in _SAYS_ARXIV)
    for name in _ID_FIELDS:
        value = fields.get(name, "")
        if not value:
            continue
        # A bare eprint ("2401.01234") is arXiv's unless the entry names another archive.
        if name == "eprint" and not says_arxiv and any(fields.get(n) for n in _SAYS_ARXIV):
            continue
        found = id_of(value) or (arxiv_id(f"arXiv:{value}")
                                  if name in ("eprint", "arxiv", "arxivid") else None)
        if found:
            return found
    return None


def clean_latex(value: str) -> str:
    """LaTeX as a person reads it: accents made letters (``{\\"o}`` is ö), braces and
    formatting commands gone, math kept as written, whitespace collapsed."""
    from pylatexenc.latex2text import LatexNodes2Text

    try:
        text = LatexNodes2Text(math_mode="verbatim").latex_to_text(value)
    except Exception:  # noqa: BLE001 - malformed LaTeX: fall back to dropping the markup
        text = re.sub(r"\\[A-Za-z]+\*?|[{}\\]", "", value)
    return one_line(text.replace("{", "").replace("}", ""))


def _unique(papers: Sequence[OwnPaper], origin: str, problems: ProblemLog) -> list[OwnPaper]:
    seen: dict[str, OwnPaper] = {}
    for paper in papers:
        seen.setdefault(paper.key, paper)
    kept = list(seen.values())
    if len(kept) > MAX_PAPERS:
        problems.append(Problem(origin, f"{len(kept)} papers; only the first {MAX_PAPERS} are "
                                        "kept (your most characteristic ones are enough)"))
    return kept[:MAX_PAPERS]


class CatalogLookup:
    """The catalog's papers by arXiv id and by normalized title, built once to match many."""

    def __init__(self, papers: Iterable[Paper]) -> None:
        self.by_arxiv: dict[str, Paper] = {}
        self.by_title: dict[str, Paper] = {}
        for paper in papers:
            for ident in filter(None, (paper.arxiv_id, arxiv_id(paper.id))):
                self.by_arxiv.setdefault(ident, paper)
            self.by_title.setdefault(title_key(paper.title), paper)

    def find(self, own: OwnPaper) -> Paper | None:
        if own.key.startswith("arxiv:"):
            paper = self.by_arxiv.get(own.key.removeprefix("arxiv:"))
            if paper is not None:
                return paper
        key = title_key(own.title)
        return self.by_title.get(key) if key else None


def lookup_keys(papers: Sequence[OwnPaper]) -> tuple[set[str], set[str]]:
    """The arXiv ids and title keys that ``match_library`` looks for: what to fetch from the
    store (``store.catalog.load_papers_like``) instead of the whole catalog."""
    ids = {own.key.removeprefix("arxiv:") for own in papers if own.key.startswith("arxiv:")}
    return ids, {key for own in papers if (key := title_key(own.title))}


def match_library(papers: Sequence[OwnPaper], catalog: CatalogLookup | Iterable[Paper]
                  ) -> list[OwnPaper]:
    """``papers`` with ``paper_id`` set where the catalog has them (by arXiv id, then by
    title), and the catalog's title given to a bare id. Unmatched papers are kept as they are:
    their title and abstract still speak for them, and a bare id may be ingested later."""
    lookup = catalog if isinstance(catalog, CatalogLookup) else CatalogLookup(catalog)
    matched = []
    for own in papers:
        paper = lookup.find(own)
        if paper is not None:
            own = replace(own, paper_id=paper.id, title=own.title or paper.title)
        elif own.paper_id is not None:
            own = replace(own, paper_id=None)
        matched.append(own)
    return matched
