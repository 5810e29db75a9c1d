"""What a reader told us beyond their topics, on their preferences page: the papers they marked
"More like this" or "Less like this" in their digests, and their own papers (arXiv ids or
BibTeX pasted, or a .bib file uploaded; read by ``newsletter.library``). Each can be taken back
with one button. Only the owner of the preferences link sees or changes any of it, and none of
it reaches a log (titles and keys are the reader's own business).
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from newsletter.compose.paperview import one_line
from newsletter.library import lookup_keys, match_library, parse_library
from newsletter.models import OwnPaper, Problem
from newsletter.store.catalog import load_papers_like
from newsletter.store.readers import (
    add_to_library,
    clear_feedback,
    feedback_list,
    library_of,
    remove_from_library,
)
from newsletter.store.subscribers import load_subscribers
from newsletter.web.links import owner
from newsletter.web.pages import Refused, checked_form, field, invalid_link, web
from newsletter.web.state import Web

LIBRARY_FIELD = "papers"  # the textarea; the file input is "bibfile"
PROBLEMS_SHOWN = 5
# The page's own notices after a change (Post/Redirect/Get: a reload does not post again).
NOTICES = {"unmarked": "Taken back: that paper counts for nothing now.",
           "removed": "Removed from your papers."}


def context(state: Web, subscriber_id: int) -> dict[str, Any]:
    """The preferences page's "What you told us" section."""
    marked = feedback_list(state.engine, subscriber_id)
    return {"liked": [e for e in marked if e.verdict == "more"],
            "hidden": [e for e in marked if e.verdict == "less"],
            "library": library_of(state.engine, subscriber_id)}


def notice(query: Any) -> str | None:
    """The notice a redirect back to the page asked for: ``?done=unmarked``, ``?added=3``."""
    if query.get("done") in NOTICES:
        return NOTICES[query["done"]]
    added = query.get("added", "")
    if added.isdigit() and len(added) < 6:
        count = int(added)
        return (f"Added {count} of your papers." if count != 1 else "Added 1 of your papers."
                ) if count else "Those papers were already in your list."
    return None


def _back(request: Request, query: str) -> RedirectResponse:
    page = request.url.path.rsplit("/", 1)[0]  # /preferences/<token>
    return RedirectResponse(f"{page}?{query}#reading", status_code=303)


async def unmark(request: Request) -> Response:
    """POST /preferences/<token>/marked: take back one "More/Less like this"."""
    found = await owner(request, "preferences")
    if found is None:
        return invalid_link(request, "Preferences")
    form = await checked_form(request)
    state = web(request)
    paper = field(form, "paper")[:400]
    if paper:  # only this reader's row can match: the id comes with their subscriber id
        await state.run(clear_feedback, state.engine, found.subscriber_id, paper)
    return _back(request, "done=unmarked")


async def library(request: Request) -> Response:
    """POST /preferences/<token>/library: add papers (``action=add``: pasted text and/or an
    uploaded .bib file) or remove one (``action=remove``, ``key``)."""
    found = await owner(request, "preferences")
    if found is None:
        return invalid_link(request, "Preferences")
    form = await checked_form(request, max_files=1)
    state = web(request)
    if field(form, "action") == "remove":
        key = field(form, "key")[:400]
        if key:
            await state.run(remove_from_library, state.engine, found.subscriber_id, key)
        return _back(request, "done=removed")
    text = field(form, LIBRARY_FIELD)
    upload = await _uploaded(form)
    if not text.strip() and not upload.strip():
        return await _again(request, found.subscriber_id, text, {
            LIBRARY_FIELD: "Paste arXiv ids or BibTeX entries, or choose a .bib file."})
    with state.library_reads.entered() as room:
        if not room:
            raise Refused(503, "Too many papers are being read right now",
                          "Nothing was added. Please send your papers again in a minute.",
                          headers={"retry-after": "60"})
        # seconds of CPU for a big export: on a worker thread, never on the event loop
        papers, problems = await state.run(_parse, text, upload)
    added = await state.run(_add, state, found.subscriber_id, papers) if papers else 0
    if problems:
        # the good entries are in; the page says which others could not be read
        said = notice({"added": str(added)}) if papers else None
        return await _again(request, found.subscriber_id, text,
                            {LIBRARY_FIELD: explain(problems)}, said)
    return _back(request, f"added={added}")


def _parse(text: str, upload: str) -> tuple[list[OwnPaper], list[Problem]]:
    papers: list[OwnPaper] = []
    problems: list[Problem] = []
    for origin, body in (("pasted text", text), ("file", upload)):
        if body.strip():
            found_papers, found_problems = parse_library(body, origin)
            papers += found_papers
            problems += found_problems
    return papers, problems


def explain(problems: list[Problem]) -> str:
    """The problems in the page's words: "Line 3 of the pasted text: not an arXiv id ..."."""
    lines = []
    for problem in problems[:PROBLEMS_SHOWN]:
        where, _, line = problem.location.rpartition(":")
        lines.append(f"Line {line} of the {where}: {problem.message}" if line.isdigit()
                     else f"{problem.location.capitalize()}: {problem.message}")
    if len(problems) > PROBLEMS_SHOWN:
        lines.append(f"...and {len(problems) - PROBLEMS_SHOWN} more.")
    return " ".join(lines)


async def _uploaded(form: FormData) -> str:
    upload = form.get("bibfile")
    if not isinstance(upload, UploadFile):
        return ""
    data = await upload.read()  # the body limit has bounded it already
    return data.decode("utf-8-sig", errors="replace")


def _add(state: Web, subscriber_id: int, papers: list[OwnPaper]) -> int:
    # Matched against the whole catalog (not only the recent window: an own paper is often
    # old), fetching only the papers with the ids and titles given.
    matched = match_library(papers, load_papers_like(state.engine, *lookup_keys(papers)))
    return add_to_library(state.engine, subscriber_id, matched, "web", state.now())


async def _again(request: Request, subscriber_id: int, text: str, errors: dict[str, str],
                 notice: str | None = None) -> Response:
    """The preferences page again, the library field's problems tied to it, the text kept."""
    from newsletter.web.manage import show_preferences  # manage imports this module

    state = web(request)
    subs = await state.run(lambda: load_subscribers(state.engine, statuses=None,
                                                    ids=[subscriber_id]))
    if not subs:
        return invalid_link(request, "Preferences")
    return await show_preferences(request, subs[0], errors=errors, notice=notice,
                                  library_text=text[:20000], status=422 if not notice else 200,
                                  action=request.url.path.rsplit("/", 1)[0])


def title_of(paper: OwnPaper) -> str:
    """How the page names one of the reader's papers: its title, else its key."""
    return one_line(paper.title) or paper.key
