"""The subscriber's journey in a real headless Chromium (Debian's, driven by Playwright), against
`newsletter serve`'s app under uvicorn, a real aiosmtpd server, and `newsletter send` run as a
process, as an operator would.

Every page is also photographed at desktop and phone width into tests/screenshots/ (git-ignored)
for a person to look at.
"""

from __future__ import annotations

import base64
import email.message
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from paths import ROOT
from playwright.sync_api import Browser, Page, sync_playwright
from smtp_server import SmtpServer
from sqlalchemy import Engine
from web_site import (
    PASSWORD,
    ROOT,
    SECRET,
    clean_environment,
    site_settings,
    tampered,
    uvicorn_on,
)

from newsletter.catalog import ingest
from newsletter.dispatch.deliver import Pipeline
from newsletter.settings import Settings
from newsletter.store.catalog import load_paper
from newsletter.store.engine import connect, utcnow
from newsletter.store.readers import feedback_list
from newsletter.store.subscribers import load_subscribers, subscriber_status, sync_subscribers
from newsletter.subscribers import read_subscriber_files
from newsletter.web import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = ROOT / "tests" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
READER = "reader@example.org"

if not Path(CHROMIUM).exists():  # CI installs it (.ci/run); there a missing browser is a failure
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)


# -- the running site ---------------------------------------------------------------------------

@dataclass
class Live:
    url: str
    settings: Settings
    engine: Engine
    smtp: SmtpServer
    env: dict[str, str]  # for `newsletter` processes on the same database and relay

    def status(self, address: str) -> str | None:
        return subscriber_status(self.engine, address)

    def send(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "newsletter", "send", *args],
                                env={**os.environ, **self.env}, capture_output=True, text=True,
                                timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        return result

    def mail(self, address: str, number: int) -> email.message.EmailMessage:
        """The ``number``-th message (1-based) the SMTP server received for ``address``."""
        assert self.smtp.wait_for(lambda s: s.recipients().count(address) >= number, 10), (
            f"no message {number} for {address}")
        return [m.message for m in self.smtp.messages if address in m.rcpt_tos][number - 1]


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
         smtp_server: SmtpServer) -> Iterator[Live]:
    """The app under uvicorn on 127.0.0.1, on a port the OS picked (bound before the settings
    are made, since every link in every email names it)."""
    clean_environment(monkeypatch, tmp_path)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    subscribers = tmp_path / "subscribers"  # only the people who sign up in the test
    subscribers.mkdir()
    settings = site_settings(tmp_path, base_url=url, subscribers_dir=subscribers,
                             smtp_host=smtp_server.host, smtp_port=smtp_server.port,
                             smtp_security="none")
    engine = connect(settings.database_url)
    ingest.ingest(engine, [ROOT / "seeds"], utcnow())
    # The site is http on loopback, which `send` over SMTP refuses for real readers: this relay
    # is a test one on purpose (NEWSLETTER_PREFLIGHT=warn).
    env = {**smtp_server.env(), "NEWSLETTER_DATABASE_URL": settings.database_url,
           "NEWSLETTER_SECRET_KEY": SECRET, "NEWSLETTER_BASE_URL": url,
           "NEWSLETTER_SUBSCRIBERS_DIR": str(subscribers), "NEWSLETTER_PREFLIGHT": "warn",
           "NEWSLETTER_OUTBOX_DIR": str(tmp_path / "outbox")}
    with uvicorn_on(create_app(settings, engine), sock):
        yield Live(url, settings, engine, smtp_server, env)
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


# Every visible piece of text: its colour over the backgrounds painted under it (composited
# from the root down, alpha included), and the WCAG contrast ratio of the two.
CONTRASTS = """(canvas) => {
  const rgba = (css) => {
    const m = css.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, under) => [0, 1, 2].map(i => top[i] * top[3] + under[i] * (1 - top[3]));
  const luminance = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const found = [];
  for (const el of document.body.querySelectorAll('*')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || ['OPTION', 'SCRIPT', 'STYLE', 'TITLE'].includes(el.tagName)) continue;
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (box.width < 2 || box.height < 2 || style.visibility !== 'visible'
        || Number(style.opacity) === 0) continue;
    const chain = [];
    for (let e = el; e; e = e.parentElement) chain.unshift(e);
    let bg = canvas;
    for (const e of chain) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) bg = over(c, bg);
    }
    const fg = over(rgba(style.color), bg);
    const [hi, lo] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
    found.push({text: el.textContent.trim().slice(0, 40), cls: el.className || el.tagName,
                ratio: (hi + 0.05) / (lo + 0.05)});
  }
  return found;
}"""


def assert_contrast(page: Page, name: str) -> None:
    """Every visible text on the page reaches 4.5:1 (WCAG AA), in light and in dark mode."""
    low = []
    for scheme, canvas in (("light", [255, 255, 255]), ("dark", [18, 18, 18])):
        page.emulate_media(color_scheme=scheme)
        texts = page.evaluate(CONTRASTS, canvas)
        assert texts, f"{name}: no text found"
        low += [f"{scheme}: {t['cls']} {t['text']!r} {t['ratio']:.2f}:1" for t in texts
                if t["ratio"] < 4.5]
    page.emulate_media(color_scheme="light")
    assert not low, f"{name}: text below 4.5:1 contrast: " + "; ".join(low)


def shoot(page: Page, name: str) -> None:
    """The page as it is now, at desktop and at phone width, whole length; and its contrast
    checked from the rendered styles."""
    assert_contrast(page, name)
    SHOTS.mkdir(exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(250)  # a framed document repaints after the resize
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def heading(page: Page) -> str:
    return page.inner_text("h1")


def open_email(page: Page, message: email.message.EmailMessage) -> None:
    """Show the HTML part as a mail client would: in a blank document (not under our site's
    CSP, which would block the email's inline styles), links clickable."""
    page.goto("about:blank")
    page.set_content(message.get_body(("html",)).get_content())  # type: ignore[union-attr]


def sections(digest: email.message.EmailMessage) -> set[str]:
    """The topic headings of a digest, from its text part ("GNN (3 papers)" over dashes)."""
    text = digest.get_body(("plain",)).get_content().replace("\r\n", "\n")
    found = re.findall(r"^(.+) \(\d+ papers?\)\n-+$", text, re.MULTILINE)
    return {topic for topic in found if topic != "Trending in your topics"}


def tomorrow() -> str:
    return (utcnow() + timedelta(days=1)).date().isoformat()


def sign_up(live: Live, page: Page, topics: str, *, shots: bool = False) -> None:
    """Fill in the form, get the confirmation email, open its link from the email itself and
    press the button on the page it opens."""
    page.goto(live.url + "/")
    if shots:
        shoot(page, "01-signup")
    page.fill("input[name=email]", READER)
    page.fill("textarea[name=topics]", topics)
    page.click("text=Send me the confirmation link")
    assert heading(page) == "Check your inbox"
    if shots:
        shoot(page, "02-check-your-inbox")
    confirmation = live.mail(READER, 1)
    assert live.status(READER) is None  # nothing before the link is opened
    open_email(page, confirmation)
    if shots:
        shoot(page, "03-confirmation-email")
    page.click("text=Confirm my subscription")
    assert heading(page) == "Confirm your subscription"
    assert live.status(READER) is None  # opening the link alone changes nothing
    if shots:
        shoot(page, "04-confirm")
    page.click("button:has-text('Confirm my subscription')")
    assert heading(page) == "You are subscribed"
    if shots:
        shoot(page, "05-confirmed")
    assert live.status(READER) == "active"


# -- journeys -----------------------------------------------------------------------------------

def test_sign_up_confirm_get_a_digest_unsubscribe_from_it_and_get_no_more(
        live: Live, page: Page) -> None:
    sign_up(live, page, "graph neural networks", shots=True)
    sent = live.send()
    assert "Sent 1 digests" in sent.stdout
    digest = live.mail(READER, 2)
    assert sections(digest) == {"graph neural networks"}
    assert live.url + "/unsubscribe/" in digest["List-Unsubscribe"]
    planned = live.send("--dry-run", "--date", tomorrow())
    assert READER in planned.stdout  # tomorrow has a digest for them, while subscribed

    open_email(page, digest)
    shoot(page, "06-digest-email")
    page.click("a.footer-link:has-text('Unsubscribe')")
    assert heading(page) == "Unsubscribe?"
    assert live.status(READER) == "active"  # opening the link alone changes nothing
    shoot(page, "07-unsubscribe")
    page.click("button:has-text('Unsubscribe')")
    assert heading(page) == "You are unsubscribed"
    shoot(page, "08-unsubscribed")
    assert live.status(READER) == "unsubscribed"

    live.send("--date", tomorrow())
    time.sleep(0.3)  # anything sent would have arrived by now
    assert live.smtp.recipients().count(READER) == 2


def test_changing_topics_from_a_digest_changes_the_next_digests_sections(
        live: Live, page: Page) -> None:
    sign_up(live, page, "graph neural networks")
    live.send()
    first = live.mail(READER, 2)
    assert sections(first) == {"graph neural networks"}

    open_email(page, first)
    page.click("text=Change your topics")
    assert heading(page) == "Your preferences"
    shoot(page, "09-preferences")
    page.fill("textarea[name=topics]", "neural radiance fields")
    page.click("text=Preview changes")
    preview = page.inner_text("section.preview")
    assert "neural radiance fields" in preview and "not saved yet" in page.content()
    shoot(page, "10-preferences-preview")
    assert load_subscribers(live.engine, email=READER)[0].topics == ("graph neural networks",)
    page.click("text=Save preferences")
    assert "Saved." in page.inner_text(".alert-success")
    shoot(page, "11-preferences-saved")

    live.send("--date", tomorrow())
    second = live.mail(READER, 3)
    assert sections(second) == {"neural radiance fields"}


def test_the_operator_gallery_and_the_refusals_are_pages_too(live: Live, page: Page) -> None:
    found, _ = read_subscriber_files(ROOT / "subscribers")
    sync_subscribers(live.engine, found)
    page.goto(live.url + "/admin")
    assert heading(page) == "Preview gallery"
    shoot(page, "12-admin-sign-in")
    page.fill("input[name=password]", "guess")
    page.click("button:has-text('Sign in')")
    assert "not right" in page.inner_text(".alert-error")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    assert heading(page) == "Next digests"
    assert page.locator("article.digest-card").count() == len(found)
    shoot(page, "13-admin-gallery")
    page.click("article.digest-card >> text=View")
    frame = page.frame_locator("iframe.email-frame")
    assert frame.locator("a.footer-link").first.inner_text() == "Change your topics"
    shoot(page, "14-admin-digest")

    unsubscribe = live.url + "/unsubscribe/" + tampered("x" * 40 + ".abcdefghijk")
    page.goto(unsubscribe)
    assert heading(page) == "This link does not work"
    shoot(page, "15-invalid-link")
    page.goto(live.url + "/no/such/page")
    assert heading(page) == "Page not found"
    shoot(page, "16-not-found")
    page.goto(live.url + "/")
    page.fill("input[name=email]", "someone@localhost")
    page.fill("textarea[name=topics]", "GNN")
    page.click("text=Send me the confirmation link")
    assert "does not look right" in page.inner_text(".alert-error")
    shoot(page, "17-signup-error")


# -- "More like this" / "Less like this" ------------------------------------------------------

CONTROL = "control@example.org"


def papers_in(digest: email.message.EmailMessage) -> list[str]:
    """The paper ids of a digest in order, read from its "Less like this" links (the token
    carries the paper id, base64)."""
    text = digest.get_body(("plain",)).get_content()
    items = re.findall(r"/less/[A-Za-z0-9_-]{12}\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]{22}", text)
    return [base64.urlsafe_b64decode(i + "=" * (-len(i) % 4)).decode() for i in items]


def choices(live: Live, address: str) -> dict[str, str]:
    subscriber = load_subscribers(live.engine, statuses=None, email=address)[0]
    assert subscriber.id is not None
    return {e.paper_id: e.verdict for e in feedback_list(live.engine, subscriber.id)}


def page_title(live: Live, paper_id: str) -> str:
    paper = load_paper(live.engine, paper_id)
    assert paper is not None
    return paper.title


def choose(page: Page, digest: email.message.EmailMessage, label: str, number: int,
           *, shots: str = "") -> None:
    """From the received email: the ``number``-th paper's ``label`` link, then the page's one
    button."""
    open_email(page, digest)
    if shots:
        shoot(page, f"{shots}-digest-with-feedback-links")
    page.locator(f"a.fb-link:has-text('{label}')").nth(number).click()
    assert heading(page) == f"{label}?"
    if shots:
        shoot(page, f"{shots}-{label.split()[0].lower()}-like-this")
    page.click(f"button:has-text('{label}')")
    assert heading(page) == f"Noted: {label.lower()}"
    if shots:
        shoot(page, f"{shots}-{label.split()[0].lower()}-noted")


def test_less_and_more_like_this_from_a_received_digest_change_the_next_digest(
        live: Live, page: Page) -> None:
    # A topic with few papers in the seed catalog, so the next digest has free places
    sign_up(live, page, "PINNs")
    # someone with the same topic who never presses anything: the topics alone
    (Path(live.env["NEWSLETTER_SUBSCRIBERS_DIR"]) / "control.toml").write_text(
        f'[[subscriber]]\nemail = "{CONTROL}"\ntopics = ["PINNs"]\n')
    live.send()
    first = live.mail(READER, 2)
    shown = papers_in(first)
    assert len(shown) >= 3 and shown == papers_in(live.mail(CONTROL, 1))

    open_email(page, first)
    page.locator("a.fb-link:has-text('Less like this')").first.click()
    assert heading(page) == "Less like this?"
    assert choices(live, READER) == {}  # opening the link alone records nothing
    choose(page, first, "Less like this", 0, shots="18")
    assert choices(live, READER) == {shown[0]: "less"}
    page.click("button:has-text('Undo')")
    assert heading(page) == "Undone" and choices(live, READER) == {}
    choose(page, first, "Less like this", 0)
    choose(page, first, "More like this", 1, shots="19")
    assert choices(live, READER) == {shown[0]: "less", shown[1]: "more"}
    assert choices(live, CONTROL) == {}

    page.click("text=your preferences page")
    assert heading(page) == "Your preferences"
    told = page.inner_text("section.reading")
    shoot(page, "20-preferences-with-feedback")
    assert "More like this · 1" in told and "Less like this · 1" in told
    assert "Like papers you saved" in page.inner_text("section.preview")  # the preview learns too

    # The next digests: the reader's learns from the two presses, the control's cannot.
    live.send("--date", tomorrow())
    second, control = live.mail(READER, 3), papers_in(live.mail(CONTROL, 2))
    after = papers_in(second)
    assert after != control
    brought = set(after) - set(control)
    assert brought, "feedback brought no paper the topics alone did not rank in"
    # ...each with a reason a person can check: the liked paper's title
    text = " ".join(second.get_body(("plain",)).get_content().split())
    liked = " ".join(page_title(live, shown[1]).split())
    assert "Like papers you saved" in sections(second)
    assert f"Why this paper: like: {liked}" in text
    # "Less like this": that paper and its near twins stay out
    ranker = Pipeline.build(live.engine, live.settings, utcnow()).ranker
    hidden = load_paper(live.engine, shown[0])
    assert hidden is not None and shown[0] not in after
    twins = [pid for pid in after if ranker.near_duplicate(hidden, load_paper(live.engine, pid))]
    assert not twins
