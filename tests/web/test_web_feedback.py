""""More like this" / "Less like this" from a digest, and what a reader told us on their
preferences page: marked papers and their own library (newsletter/web/feedback.py, reading.py).
The browser journey is in test_web_browser.py."""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from starlette.testclient import TestClient
from web_site import (  # noqa: F401
    ADA,
    EMMY,
    SECRET,
    Site,
    clean_environment,
    csrf_in,
    prepare,
    site,
    site_settings,
    tampered,
    uvicorn_on,
)

from newsletter.compose import tokens
from newsletter.dispatch.deliver import Pipeline
from newsletter.models import Paper
from newsletter.store import schema
from newsletter.store.catalog import load_papers, save_papers
from newsletter.store.engine import utcnow
from newsletter.store.readers import feedback_list, library_of, set_feedback
from newsletter.store.subscribers import load_subscribers, sign_out_links
from newsletter.web import create_app


def papers_of(site: Site) -> list[Paper]:
    return load_papers(site.engine)


def marked(site: Site, address: str) -> dict[str, str]:
    """paper id -> "more" | "less", as stored for ``address``."""
    sid = site.row(address)["id"]
    return {e.paper_id: e.verdict for e in feedback_list(site.engine, sid)}


def own_papers(site: Site, address: str) -> list[str]:
    return [p.key for p in library_of(site.engine, site.row(address)["id"])]


def everything(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: what "the store is unchanged" means."""
    with engine.connect() as conn:
        return {table.name: sorted(tuple(map(repr, row)) for row in conn.execute(select(table)))
                for table in schema.metadata.sorted_tables}


def press(site: Site, path: str, **fields: str) -> httpx.Response:
    """Open ``path`` and press its one button (with ``fields``), as a person does."""
    page = site.client.get(path)
    assert page.status_code == 200, page.text
    return site.client.post(path, data={"csrf": csrf_in(page.text), **fields})


# -- the links in a digest -----------------------------------------------------------------------

@dataclass
class Live:
    url: str
    engine: Engine
    settings: Any


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    """The site under uvicorn on a loopback port, its base URL that port: a digest's links
    lead to it."""
    clean_environment(monkeypatch, tmp_path)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = site_settings(tmp_path, base_url=url)
    engine = prepare(settings)
    with uvicorn_on(create_app(settings, engine), sock):
        yield Live(url, engine, settings)
    engine.dispose()


def digest_for(engine: Engine, settings: Any, address: str) -> Any:
    sub = load_subscribers(engine, statuses=None, email=address)[0]
    composed = Pipeline.build(engine, settings, utcnow()).compose(sub, set(), "2026-01-01")
    assert composed is not None
    return composed


def test_every_paper_in_a_digest_has_more_and_less_links_signed_for_its_reader(
        site: Site) -> None:
    composed = digest_for(site.engine, site.settings, ADA)
    ada = site.row(ADA)
    html, text = composed.rendered.html, composed.rendered.text
    for item in composed.digest.items:
        for verdict in ("more", "less"):
            token = tokens.make(SECRET, verdict, ada["link_id"], ada["link_key"], item.paper.id)
            url = f"http://testserver/{verdict}/{token}"
            assert f'href="{url}"' in html and url in text
    assert html.count(">More like this</a>") == len(composed.digest.items)
    assert text.count("Less like this: http") == len(composed.digest.items)


def test_a_link_scanner_that_fetches_every_link_of_a_digest_changes_nothing(live: Live) -> None:
    composed = digest_for(live.engine, live.settings, ADA)
    html = composed.rendered.html
    text = composed.rendered.text
    ours = {unescape(u) for u in re.findall(r'href="([^"]+)"', html)} | set(
        re.findall(r"https?://\S+", text))
    ours = {u for u in ours if u.startswith(live.url)}
    assert sum("/less/" in u for u in ours) == len(composed.digest.items) > 0
    assert any("/more/" in u for u in ours) and any("/unsubscribe/" in u for u in ours)
    before = everything(live.engine)
    with httpx.Client(follow_redirects=True, timeout=30) as scanner:
        for url in sorted(ours):
            for method in ("HEAD", "GET"):
                response = scanner.request(method, url)
                assert response.status_code == 200, (method, url)
    assert everything(live.engine) == before


# -- the page behind a link ----------------------------------------------------------------------

def test_opening_less_like_this_asks_then_its_button_records_it_and_undo_takes_it_back(
        site: Site) -> None:
    paper = papers_of(site)[0]
    path = site.link("less", ADA, paper.id)
    page = site.client.get(path)
    assert page.status_code == 200
    assert "Less like this?" in page.text and unescape(page.text).count(paper.title) == 1
    assert page.text.count("<button") == 1
    assert marked(site, ADA) == {}  # opening it recorded nothing
    done = site.client.post(path, data={"csrf": csrf_in(page.text)})
    assert done.status_code == 200 and "Noted: less like this" in done.text
    assert marked(site, ADA) == {paper.id: "less"}
    assert 'name="action" value="undo"' in done.text
    assert "/preferences/" in done.text  # where everything marked can be taken back
    undone = site.client.post(path, data={"csrf": csrf_in(done.text), "action": "undo"})
    assert undone.status_code == 200 and "Undone" in undone.text
    assert marked(site, ADA) == {}


def test_more_like_this_is_recorded_as_more_and_replaces_an_earlier_less(site: Site) -> None:
    paper = papers_of(site)[1]
    press(site, site.link("less", ADA, paper.id))
    assert marked(site, ADA) == {paper.id: "less"}
    response = press(site, site.link("more", ADA, paper.id))
    assert "Noted: more like this" in response.text
    assert marked(site, ADA) == {paper.id: "more"}
    again = site.client.get(site.link("more", ADA, paper.id))
    assert "Noted: more like this" in again.text  # already chosen: the page says so, offers Undo
    assert marked(site, EMMY) == {}


@pytest.mark.parametrize("kind", ["tampered", "other purpose", "other reader's key", "signed out",
                                  "garbage", "no paper"])
def test_a_bad_feedback_link_gets_the_polite_error_page_and_changes_nothing(
        site: Site, kind: str) -> None:
    paper = papers_of(site)[0].id
    row = site.row(ADA)
    good = tokens.make(SECRET, "less", row["link_id"], row["link_key"], paper)
    token = {"tampered": tampered(good),
             "other purpose": tokens.make(SECRET, "more", row["link_id"], row["link_key"], paper),
             "other reader's key": tokens.make(SECRET, "less", row["link_id"], "nope", paper),
             "signed out": good, "garbage": "x" * 50,
             "no paper": site.link("preferences", ADA).rsplit("/", 1)[1]}[kind]
    if kind == "signed out":
        sign_out_links(site.engine, row["id"], keep_for=tokens.UNSUBSCRIBE_GRACE)
    before = everything(site.engine)
    for method in ("GET", "POST"):
        response = site.client.request(method, f"/less/{token}",
                                        data={"csrf": site.csrf()} if method == "POST" else None)
        assert response.status_code == 400
        assert "This link does not work" in response.text and "<form" not in response.text
    assert everything(site.engine) == before


def test_the_button_without_this_browsers_csrf_field_records_nothing(site: Site) -> None:
    path = site.link("less", ADA, papers_of(site)[0].id)
    site.client.get(path)
    refused = site.client.post(path, data={"csrf": "0" * 64})
    assert refused.status_code == 403
    bare = TestClient(site.client.app).post(path)  # a scanner's POST: no cookie, no field
    assert bare.status_code == 403
    assert marked(site, ADA) == {}


def test_an_unsubscribed_reader_gets_nothing_recorded(site: Site) -> None:
    site.client.post(site.link("unsubscribe", ADA), data={"List-Unsubscribe": "One-Click"})
    path = site.link("more", ADA, papers_of(site)[0].id)
    page = site.client.get(path)
    assert "not subscribed" in page.text and "<form" not in page.text
    assert site.client.post(path, data={"csrf": site.csrf()}).status_code == 409
    assert marked(site, ADA) == {}


def test_feedback_pages_log_their_route_never_the_token_or_the_title(
        site: Site, caplog: pytest.LogCaptureFixture) -> None:
    paper = papers_of(site)[0]
    path = site.link("less", ADA, paper.id)
    with caplog.at_level(logging.INFO):
        press(site, path)
        site.client.get(site.link("preferences", ADA))
    logged = "\n".join(r.getMessage() for r in caplog.records
                       if not r.name.startswith("httpx"))  # the test's own client logs URLs
    assert "GET /less/{token} 200" in logged and "POST /less/{token} 200" in logged
    assert path.rsplit("/", 1)[1] not in logged and paper.title not in logged
    assert paper.id not in logged


# -- the preferences page ------------------------------------------------------------------------

def test_the_preferences_page_lists_liked_and_hidden_papers_each_removable(site: Site) -> None:
    liked, hidden = papers_of(site)[:2]
    press(site, site.link("more", ADA, liked.id))
    press(site, site.link("less", ADA, hidden.id))
    page = site.client.get(site.link("preferences", ADA))
    section = unescape(page.text[page.text.index('id="reading"'):])
    assert liked.title in section and hidden.title in section
    assert section.index(liked.title) < section.index("Less like this <span") < section.index(
        hidden.title)
    other = site.client.get(site.link("preferences", EMMY)).text
    assert liked.title not in unescape(other) and hidden.title not in unescape(other)
    # Emmy cannot take Ada's back, even naming the paper: only her own rows are hers
    site.client.post(site.link("preferences", EMMY) + "/marked",
                     data={"csrf": csrf_in(other), "paper": liked.id})
    assert marked(site, ADA) == {liked.id: "more", hidden.id: "less"}
    removed = site.client.post(site.link("preferences", ADA) + "/marked",
                               data={"csrf": csrf_in(page.text), "paper": hidden.id})
    assert removed.status_code == 303 and removed.headers["location"].endswith(
        "?done=unmarked#reading")
    assert marked(site, ADA) == {liked.id: "more"}
    after = site.client.get(removed.headers["location"])
    assert "Taken back" in after.text


def test_pasted_arxiv_ids_join_the_readers_papers_matched_to_the_catalog(site: Site) -> None:
    in_catalog = Paper(id="2403.01234", arxiv_id="2403.01234", title="Forward Learning of GNNs",
                       abstract="Without backpropagation.", first_seen_at=utcnow())
    save_papers(site.engine, [(in_catalog, "forward-learning-of-gnns")], [], utcnow())
    page = site.client.get(site.link("preferences", ADA))
    response = site.client.post(
        site.link("preferences", ADA) + "/library",
        data={"csrf": csrf_in(page.text), "action": "add",
              "papers": f"{in_catalog.arxiv_id}\nhttps://arxiv.org/abs/2101.00001v2\n"})
    assert response.status_code == 303 and response.headers["location"].endswith(
        "?added=2#reading")
    own = library_of(site.engine, site.row(ADA)["id"])
    assert {p.key for p in own} == {f"arxiv:{in_catalog.arxiv_id}", "arxiv:2101.00001"}
    assert next(p for p in own if p.paper_id).paper_id == in_catalog.id
    shown = unescape(site.client.get(response.headers["location"]).text)
    assert "Added 2 of your papers." in shown and in_catalog.title in shown
    assert "arxiv:2101.00001" in shown  # not in the catalog: named by its key
    assert own_papers(site, EMMY) == []


BIBTEX = """@article{lovelace2026,
  title = {Notes on the {Analytical} Engine <b>bold</b>},
  author = {Lovelace, Ada},
  abstract = {We describe a machine that weaves algebraic patterns.},
  year = {2026}
}
"""


def test_an_uploaded_bib_file_adds_its_papers_and_each_can_be_removed(site: Site) -> None:
    prefs = site.link("preferences", ADA)
    page = site.client.get(prefs)
    response = site.client.post(prefs + "/library",
                                data={"csrf": csrf_in(page.text), "action": "add"},
                                files={"bibfile": ("mine.bib", BIBTEX.encode(), "text/x-bibtex")})
    assert response.status_code == 303, response.text
    (own,) = library_of(site.engine, site.row(ADA)["id"])
    assert "Analytical Engine" in own.title and "weaves" in own.abstract
    shown = site.client.get(prefs).text
    assert "<b>bold</b>" not in shown and "&lt;b&gt;bold&lt;/b&gt;" in shown  # escaped
    removed = site.client.post(prefs + "/library", data={
        "csrf": csrf_in(shown), "action": "remove", "key": own.key})
    assert removed.status_code == 303
    assert own_papers(site, ADA) == []


def test_library_problems_are_shown_at_the_field_and_the_good_lines_are_kept(
        site: Site) -> None:
    prefs = site.link("preferences", ADA)
    page = site.client.get(prefs)
    response = site.client.post(prefs + "/library", data={
        "csrf": csrf_in(page.text), "action": "add",
        "papers": "2101.00001\nnot-a-paper <script>\n"})
    assert response.status_code == 200
    assert 'id="papers-error"' in response.text and 'aria-invalid="true"' in response.text
    assert "Line 2 of the pasted text" in response.text
    assert "<script>" not in response.text and "not-a-paper &lt;script&gt;" in response.text
    assert own_papers(site, ADA) == ["arxiv:2101.00001"]
    nothing = site.client.post(prefs + "/library", data={
        "csrf": csrf_in(page.text), "action": "add", "papers": "   "})
    assert nothing.status_code == 422 and 'id="papers-error"' in nothing.text


def test_the_library_takes_a_bigger_upload_than_other_forms_but_not_without_limit(
        site: Site) -> None:
    prefs = site.link("preferences", ADA)
    csrf = site.csrf()
    entry = BIBTEX.replace("lovelace2026", "k{n}").replace("Notes", "Notes {n}")
    bib = "".join(entry.replace("{n}", str(n)) for n in range(400)).encode()
    assert 64 * 1024 < len(bib) < 2 * 1024 * 1024
    ok = site.client.post(prefs + "/library", data={"csrf": csrf, "action": "add"},
                          files={"bibfile": ("big.bib", bib, "text/x-bibtex")})
    assert ok.status_code == 303 and len(own_papers(site, ADA)) == 400
    huge = site.client.post(prefs + "/library", data={"csrf": csrf, "action": "add"},
                            files={"bibfile": ("huge.bib", bib * 30, "text/x-bibtex")})
    assert huge.status_code == 413 and "too large" in huge.text
    other = site.client.post(prefs, data={"csrf": csrf, "topics": "x" * 100_000})
    assert other.status_code == 413  # every other form keeps its 64 KB


def test_a_library_form_without_a_csrf_field_or_with_a_bad_link_changes_nothing(
        site: Site) -> None:
    prefs = site.link("preferences", ADA)
    site.client.get(prefs)
    refused = site.client.post(prefs + "/library", data={"action": "add", "papers": "2101.00001"})
    assert refused.status_code == 403
    bad = site.client.post(f"/preferences/{tampered(prefs.rsplit('/', 1)[1])}/library",
                           data={"csrf": site.csrf(), "action": "add", "papers": "2101.00001"})
    assert bad.status_code == 400 and "This link does not work" in bad.text
    assert own_papers(site, ADA) == []


# -- privacy -------------------------------------------------------------------------------------

def test_unsubscribing_from_the_web_deletes_the_readers_feedback_and_library(site: Site) -> None:
    press(site, site.link("less", ADA, papers_of(site)[0].id))
    press(site, site.link("less", EMMY, papers_of(site)[0].id))
    page = site.client.get(site.link("preferences", ADA))
    site.client.post(site.link("preferences", ADA) + "/library",
                     data={"csrf": csrf_in(page.text), "action": "add", "papers": "2101.00001"})
    assert marked(site, ADA) and own_papers(site, ADA)
    press(site, site.link("unsubscribe", ADA), **{"List-Unsubscribe": "One-Click"})
    assert site.row(ADA)["status"] == "unsubscribed"
    assert marked(site, ADA) == {} and own_papers(site, ADA) == []
    assert marked(site, EMMY) != {}  # nobody else's


def test_a_title_from_the_catalog_is_text_on_every_page(site: Site) -> None:
    evil = Paper(id="evil-1", title='<img src=x onerror=alert(1)> & "quotes"',
                 abstract="A paper.", first_seen_at=utcnow())
    save_papers(site.engine, [(evil, "evil-1")], [], utcnow())
    set_feedback(site.engine, site.row(ADA)["id"], evil.id, "more", utcnow())
    for path in (site.link("more", ADA, evil.id), site.link("preferences", ADA)):
        page = site.client.get(path).text
        assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_the_preview_of_the_next_digest_leaves_out_a_paper_marked_less_like_this(
        site: Site) -> None:
    def previewed() -> list[str]:
        page = site.client.get(site.link("preferences", ADA)).text
        preview = page[page.index('id="preview-title"'):page.index('id="reading"')]
        return [unescape(t) for t in re.findall(r'rel="noopener noreferrer" target="_blank">'
                                                r'([^<]+)</a>', preview)]
    before = previewed()
    first = next(item.paper for item in digest_for(site.engine, site.settings, ADA).digest.items
                 if item.paper.title == before[0])
    press(site, site.link("less", ADA, first.id))
    after = previewed()
    assert first.title not in after  # never sent to Ada, yet never shown again
    assert marked(site, ADA) == {first.id: "less"}
