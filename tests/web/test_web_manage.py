"""The links in every digest, over HTTP: unsubscribe (RFC 8058 one-click), preferences with a
preview of the next digest, tracked paper links, and the operator's gallery of those digests
(newsletter/web/manage.py, clicks.py, admin.py). Refusals are in test_web_security.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient
from typer.testing import CliRunner
from web_site import (  # noqa: F401
    ADA,
    EMMY,
    SECRET,
    Site,
    clicks_of,
    confirm,
    confirmation_path,
    csrf_in,
    preference_form,
    sign_in,
    site,
    tracking,
)

from newsletter.cli import app as cli_app
from newsletter.compose.paperview import paper_url
from newsletter.models import Paper, Subscriber
from newsletter.store.catalog import load_paper, load_papers, record_click, save_papers
from newsletter.store.subscribers import load_subscribers, sync_subscribers
from newsletter.subscribers import read_subscriber_files
from newsletter.web import click_url

# -- unsubscribe --------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_the_rfc_8058_one_click_post_unsubscribes_at_once_without_a_redirect(
        site: Site, encoding: str) -> None:
    # Exactly what a mail provider sends: no cookie, no CSRF field, just the RFC's body.
    url = site.link("unsubscribe", ADA)
    client = TestClient(site.client.app, follow_redirects=False)
    if encoding == "urlencoded":
        response = client.post(url, content=b"List-Unsubscribe=One-Click",
                               headers={"content-type": "application/x-www-form-urlencoded"})
    else:
        response = client.post(url, files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert "location" not in response.headers
    assert "You are unsubscribed" in response.text
    assert site.row(ADA)["status"] == "unsubscribed"
    assert site.row(EMMY)["status"] == "active"


def test_opening_the_unsubscribe_link_only_asks_with_one_button(site: Site) -> None:
    response = site.client.get(site.link("unsubscribe", ADA))
    assert response.status_code == 200
    assert response.text.count("<button") == 1 and "Unsubscribe?" in response.text
    assert site.row(ADA)["status"] == "active"
    # the button posts back to the same URL
    form = {"csrf": csrf_in(response.text), "List-Unsubscribe": "One-Click"}
    assert site.client.post(site.link("unsubscribe", ADA), data=form).status_code == 200
    assert site.row(ADA)["status"] == "unsubscribed"
    again = site.client.get(site.link("unsubscribe", ADA))
    assert "already unsubscribed" in again.text


def test_an_unsubscribe_wins_over_the_subscriber_files_until_they_sign_up_again(site: Site) -> None:
    site.client.post(site.link("unsubscribe", ADA), data={"List-Unsubscribe": "One-Click"})
    found, _ = read_subscriber_files(site.settings.subscribers_dir)
    sync_subscribers(site.engine, found)
    assert site.row(ADA)["status"] == "unsubscribed"
    assert ADA not in [s.email for s in load_subscribers(site.engine)]
    # ...until Ada subscribes again herself
    site.client.post("/subscribe", data={"email": ADA, "topics": "GNN", "csrf": site.csrf()})
    (confirmation,) = site.outbox()
    confirm(site, confirmation_path(confirmation))
    sync_subscribers(site.engine, found)
    assert site.row(ADA)["status"] == "active"


# -- preferences --------------------------------------------------------------------------------

def test_saving_preferences_changes_them_and_the_files_no_longer_overwrite_them(site: Site) -> None:
    form = preference_form(site, topics="neural radiance fields\ndiffusion models",
                           frequency="weekly", weekday="friday", send_time="18:30",
                           timezone="Europe/Paris", max_papers="4")
    response = site.client.post(site.link("preferences", ADA), data=form)
    assert response.status_code == 303
    assert response.headers["location"].endswith("?saved=1")
    row = site.row(ADA)
    assert row["topics"] == ["neural radiance fields", "diffusion models"]
    assert (row["frequency"], row["weekday"], row["send_time"], row["timezone"],
            row["max_papers"]) == ("weekly", 4, "18:30", "Europe/Paris", 4)
    assert row["self_managed"] is True and row["status"] == "active"
    found, _ = read_subscriber_files(site.settings.subscribers_dir)
    sync_subscribers(site.engine, found)
    assert site.row(ADA)["topics"] == ["neural radiance fields", "diffusion models"]
    page = site.client.get(response.headers["location"])
    assert "Saved." in page.text and "neural radiance fields" in page.text


def test_the_preview_shows_the_next_digest_for_unsaved_topics(site: Site) -> None:
    page = site.client.get(site.link("preferences", ADA))
    assert re.findall(r'<h3 class="topic">([^<]+?) <span', page.text)[-1] in (
        "GNN", "graph contrastive learning")
    form = preference_form(site, topics="neural radiance fields", action="preview")
    response = site.client.post(site.link("preferences", ADA), data=form)
    assert response.status_code == 200 and "not saved yet" in response.text
    headings = re.findall(r'<h3 class="topic">([^<]+?) <span', response.text)
    assert "neural radiance fields" in headings and "GNN" not in headings
    assert site.row(ADA)["topics"] == ["GNN", "graph contrastive learning"]


def test_the_preview_names_a_topic_that_finds_nothing(site: Site) -> None:
    # Its section is simply missing otherwise: the reader would not know that topic is quiet.
    form = preference_form(site, topics="neural radiance fields\nnetwork intrusion detection",
                           action="preview")
    response = site.client.post(site.link("preferences", ADA), data=form)
    assert response.status_code == 200
    assert "Nothing new on “network intrusion detection”" in response.text
    assert "Nothing new on “neural radiance fields”" not in response.text


@pytest.mark.parametrize("field,value,says", [
    ("max_papers", "500", "Papers per email"), ("timezone", "Mars/Olympus_Mons", "Time zone"),
    ("topics", "", "at least one topic"), ("frequency", "hourly", "How often"),
    ("name", "Ada\r\nBcc: eve@example.org", "single line")])
def test_invalid_preferences_are_explained_and_nothing_is_saved(
        site: Site, field: str, value: str, says: str) -> None:
    before = site.row(ADA)
    response = site.client.post(site.link("preferences", ADA),
                                data=preference_form(site, **{field: value}))
    assert response.status_code == 422 and says in response.text
    assert site.row(ADA) == before


# -- the operator's gallery ---------------------------------------------------------------------

def test_the_gallery_shows_each_digest_exactly_as_send_would_send_it(
        site: Site, tmp_path: Path) -> None:
    sign_in(site)
    ada = site.row(ADA)["id"]
    page = site.client.get(f"/admin/digest/{ada}")
    assert page.status_code == 200 and f"/admin/digest/{ada}/html" in page.text
    html = site.client.get(f"/admin/digest/{ada}/html")
    assert "sandbox" in html.headers["content-security-policy"]
    text = site.client.get(f"/admin/digest/{ada}/text")
    env = {"NEWSLETTER_DATABASE_URL": site.settings.database_url,
           "NEWSLETTER_SECRET_KEY": SECRET, "NEWSLETTER_BASE_URL": "http://testserver"}
    for part, body in (([], html.text), (["--text"], text.text)):
        out = tmp_path / "preview"
        result = CliRunner().invoke(cli_app, ["preview", ADA, "--out", str(out), *part], env=env)
        assert result.exit_code == 0, result.output
        assert body == out.read_text()


# -- clicks -------------------------------------------------------------------------------------

def test_a_tracked_link_counts_one_click_per_reader_and_goes_to_the_papers_own_page(
        tracking: Site) -> None:
    paper = load_papers(tracking.engine)[0]
    ada, emmy = (load_subscribers(tracking.engine, email=a)[0] for a in (ADA, EMMY))
    url = click_url(SECRET, "http://testserver", ada, paper.id)
    for _ in range(3):
        response = tracking.client.get(url)
        assert response.status_code == 302 and response.headers["location"] == paper_url(paper)
    assert clicks_of(tracking, paper.id) == 1
    tracking.client.get(click_url(SECRET, "http://testserver", emmy, paper.id))
    assert clicks_of(tracking, paper.id) == 2


def test_with_tracking_off_old_click_links_still_redirect_but_count_nothing(site: Site) -> None:
    paper = load_papers(site.engine)[0]
    ada = load_subscribers(site.engine, email=ADA)[0]
    response = site.client.get(click_url(SECRET, "http://testserver", ada, paper.id))
    assert response.status_code == 302 and response.headers["location"] == paper_url(paper)
    assert not clicks_of(site, paper.id)


def test_a_click_is_counted_once_per_reader_in_the_store(engine: Engine) -> None:
    save_papers(engine, [(Paper(id="p1", title="T", abstract="A"), "t")], [])
    sync_subscribers(engine, [Subscriber(email="r@x.org", name="", topics=("GNN",))])
    reader = load_subscribers(engine)[0].id
    assert reader is not None
    assert record_click(engine, reader, "p1")
    assert not record_click(engine, reader, "p1")
    assert not record_click(engine, reader + 100, "p1")  # no such reader
    paper = load_paper(engine, "p1")
    assert paper is not None and paper.clicks == 1


def test_serve_explains_itself_with_help() -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--help"])
    assert result.exit_code == 0 and "--port" in result.output and "unsubscribe" in result.output
