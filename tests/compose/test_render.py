from __future__ import annotations

import email
import email.message
import email.policy
import os
import re
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path

import lxml.html
import pytest
from paths import EXPECTED, TEMPLATES
from premailer import Premailer

from newsletter.compose import inline, paperview, render, tokens
from newsletter.compose.inline import PREMAILER_OPTIONS, inline_css
from newsletter.compose.message import build_message
from newsletter.compose.render import Renderer
from newsletter.compose.tokens import links_for
from newsletter.errors import ConfigError
from newsletter.models import Digest, DigestItem, Link, Paper, Section, Subscriber

UPDATE = os.environ.get("UPDATE_EXPECTED") == "1"  # UPDATE_EXPECTED=1 pytest ... rewrites them
NOW = datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc)
SECRET = "golden-secret"
BASE_URL = "https://papers.example.org"
GNN_ABSTRACT = (
    "Graph neural networks (GNNs) have achieved remarkable success across a wide range of "
    "applications, such as recommendation, drug discovery, and question answering. Behind the "
    "success of GNNs lies the backpropagation (BP) algorithm, which is the de facto standard for "
    "training deep neural networks. However, BP imposes several constraints, which are not only "
    "biologically implausible, but also limit the scalability, parallelism, and flexibility."
)


def item(paper: Paper, topic: str, reason: str) -> DigestItem:
    return DigestItem(paper=paper, score=1.0, topic=topic, reason=reason)


def golden_digest() -> Digest:
    """2 sections, 4 papers, exercising every optional field once."""
    subscriber = Subscriber(email="ada@example.org", name="Ada Lovelace", topics=("GNN", "PINNs"))
    forward = Paper(
        id="2403.01234", title="Forward Learning of Graph Neural Networks", abstract=GNN_ABSTRACT,
        arxiv_id="2403.01234", url="https://arxiv.org/abs/2403.01234",
        authors=("Namyong Park", "Xing Wang", "Antoine Simoulin", "Shuai Yang"),
        published=date(2026, 11, 20),
        links=(Link("code", "https://github.com/facebookresearch/forwardgnn"),),
        upvotes=120, github_stars=1234,
        ai_summary="Trains GNNs with forward passes only, without backpropagation.",
        keywords=("forward learning", "GNN"),  # not shown: the AI summary says more
    )
    disk = Paper(
        id="disk-gnn", title="DiskGNN: Bridging I/O Efficiency and Model Accuracy",
        abstract="Out-of-core GNN training & offline sampling.", author_count=5,
        links=(Link("project", "https://diskgnn.example.org"),),
        keywords=("out-of-core training", "offline sampling", "I/O"),
    )
    pinn = Paper(
        id="2411.00001", title="Physics-informed neural networks for Navier–Stokes flows",
        abstract="We solve PDEs with PINNs.\n\nTwo paragraphs, odd   spacing.",
        arxiv_id="2411.00001", authors=("Jürgen Müller",), published=date(2026, 11, 21),
    )
    solver = Paper(id="cgs", title="Convergent Graph Solvers", abstract="Fixed points.")
    return Digest(
        subscriber=subscriber,
        edition="2026-11-23",
        sections=(
            Section("GNN", (
                item(forward, "GNN", "matches: GNN → graph neural network (title)"),
                item(disk, "GNN", "trending: 120 upvotes in 2 days"),
            )),
            Section("PINNs", (
                item(pinn, "PINNs", "matches: PINNs → physics-informed neural networks (title)"),
                item(solver, "PINNs", "matches: solver (abstract)"),
            )),
        ),
        created_at=NOW,
    )


def hostile_digest() -> Digest:
    evil = Paper(
        id="x", title='<script>alert("t")</script> & <b>bold</b>',
        abstract="<script>steal()</script> <img src=x onerror=alert(1)> a & b",
        authors=('<a href="https://evil.example">Mallory</a>',),
        url="javascript:alert(1)", links=(Link("code", "data:text/html,<script>x</script>"),),
    )
    subscriber = Subscriber(email="eve@example.org", name="<Eve>", topics=("<i>xss</i>",))
    section = Section("<i>xss</i>", (item(evil, "<i>xss</i>", "because <script>"),))
    return Digest(subscriber, "2026-11-23", (section,), NOW)


def max_digest(papers: int = 30) -> Digest:
    """The biggest digest a subscriber can get: every field long and present."""
    long_abstract = " ".join([GNN_ABSTRACT] * 8)
    items = []
    for n in range(papers):
        paper = Paper(
            id=f"p{n}", title=f"{n} " + "Very Long Title About Graph Neural Operators " * 5,
            abstract=long_abstract, arxiv_id=f"2411.{n:05d}",
            url=f"https://huggingface.co/papers/2411.{n:05d}?utm_source=digest&utm_medium=email",
            authors=tuple(f"Firstname{a} Double-Barrelled-Surname{a}" for a in range(12)),
            published=date(2026, 11, 20),
            links=(Link("code", f"https://github.com/some-organisation/some-repository-{n}"),
                   Link("project", f"https://some-organisation.github.io/some-project-{n}")),
            upvotes=12345, github_stars=123456, ai_summary=GNN_ABSTRACT,
        )
        reason = "matches: physics-informed neural networks → PINN, PDE, operator (title, abstract)"
        items.append(item(paper, f"topic {n % 5}", reason))
    sections = tuple(
        Section(f"Topic number {t} with a long name", tuple(items[t::5])) for t in range(5)
    )
    subscriber = Subscriber(email="a.very.long.address@subdomain.example.org", name="Ada " * 10,
                            topics=tuple(s.topic for s in sections), max_papers=papers)
    return Digest(subscriber, "2026-11-23", sections, NOW)


def links(email: str):
    reader = Subscriber(email=email, name="", topics=(), link_id="golden-link1",
                        link_key="golden-key")
    return links_for(reader, secret=SECRET, base_url=BASE_URL, mailto="unsubscribe@example.org")


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES, base_url=BASE_URL, site_name="Trending Papers")


def golden_message(renderer: Renderer) -> bytes:
    digest = golden_digest()
    rendered = renderer.render(digest, links(digest.subscriber.email))
    out = build_message(digest, rendered, links(digest.subscriber.email),
                        from_address="papers@example.org", from_name="Trending Papers",
                        list_id="papers.example.org", now=NOW)
    return out.data


def blank_volatile(text: str) -> str:
    text = re.sub(r"(?m)^Message-ID: .*$", "Message-ID: <BLANK>", text)
    boundaries = set(re.findall(r'boundary="([^"]+)"', text))
    for n, boundary in enumerate(sorted(boundaries)):
        text = text.replace(boundary, f"BOUNDARY-{n}")
    return text


def check_expected(name: str, actual: str) -> None:
    path = EXPECTED / name
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="\n")
    assert path.exists(), f"{path} is missing: run with UPDATE_EXPECTED=1 to create it"
    assert actual == path.read_text(encoding="utf-8"), f"{name} changed; UPDATE_EXPECTED=1 if intended"


def test_golden_message(renderer: Renderer) -> None:
    """The whole email, byte for byte except Message-ID and the MIME boundaries."""
    data = golden_message(renderer)
    check_expected("digest.eml", blank_volatile(data.decode("ascii").replace("\r\n", "\n")))


def test_golden_parts(renderer: Renderer) -> None:
    """The decoded parts too, so a template change shows up as a readable diff."""
    digest = golden_digest()
    rendered = renderer.render(digest, links(digest.subscriber.email))
    check_expected("digest.html", rendered.html)
    check_expected("digest.txt", rendered.text)


def test_content(renderer: Renderer) -> None:
    digest = golden_digest()
    subscriber_links = links(digest.subscriber.email)
    rendered = renderer.render(digest, subscriber_links)
    assert rendered.subject == "4 new papers on GNN and PINNs — Mon 23 Nov"
    assert rendered.preheader == "Forward Learning of Graph Neural Networks · and 3 more"
    for body in (rendered.html, rendered.text):
        assert "Hi Ada Lovelace," in body
        assert "Monday, 23 November 2026" in body
        assert "Namyong Park, Xing Wang, Antoine Simoulin et al." in body
        assert "5 authors" in body
        assert "https://github.com/facebookresearch/forwardgnn" in body
        assert "https://arxiv.org/abs/2411.00001" in body  # no url: the arXiv id
        assert "https://arxiv.org/search/?searchtype=title&amp;query=Convergent+Graph+Solvers" in body \
            or "https://arxiv.org/search/?searchtype=title&query=Convergent+Graph+Solvers" in body
        assert "trending: 120 upvotes in 2 days" in body
        assert "PDEs with PINNs. Two paragraphs, odd spacing." in body
        assert subscriber_links.unsubscribe_url in body
        assert subscriber_links.preferences_url in body
        assert "Trending Papers" in body
    doc = lxml.html.document_fromstring(rendered.html)
    assert [h.text_content().split(" ·")[0] for h in doc.cssselect("h2.topic")] == ["GNN", "PINNs"]
    assert doc.cssselect("a.title-link")[0].get("href") == "https://arxiv.org/abs/2403.01234"
    assert {a.text_content(): a.get("href") for a in doc.cssselect("a.footer-link")} == {
        "Unsubscribe": subscriber_links.unsubscribe_url,
        "Change your topics": subscriber_links.preferences_url,
    }
    assert doc.cssselect("span.preheader")[0].text_content().startswith(rendered.preheader)


def test_the_frame_is_inlined_the_paper_styles_shared_by_class_and_media_rules_kept(
        renderer: Renderer) -> None:
    rendered = renderer.render(golden_digest(), links("ada@example.org"))
    doc = lxml.html.document_fromstring(rendered.html)
    assert "max-width:600px" in doc.cssselect("table.container")[0].get("style")
    assert "display:none" in doc.cssselect("span.preheader")[0].get("style")
    per_paper = set(doc.cssselect("td.paper, td.paper *"))
    assert per_paper and not [e for e in per_paper if e.get("style")]  # classes only
    for element in set(doc.cssselect("table, td, a, p, h2, h3")) - per_paper:
        assert element.get("style"), lxml.html.tostring(element)[:80]
    shared, kept = (style.text for style in doc.head.findall("style"))
    assert ".paper{padding:16px 28px 16px 28px;" in shared
    assert ".title-link{color:#1e3a8a;text-decoration:none}" in shared
    assert ".masthead" not in shared  # once-only parts stay inlined
    assert "@media only screen and (max-width: 620px)" in kept
    assert "@media (prefers-color-scheme: dark)" in kept
    assert ".card { background-color: #181b21 !important;" in kept
    assert ".card { background-color: #ffffff" not in kept  # the inlined rules are not repeated
    assert all("data-premailer" not in style.attrib for style in doc.head.findall("style"))
    metas = {m.get("name"): m.get("content") for m in doc.head.findall("meta") if m.get("name")}
    assert metas["color-scheme"] == "light dark"
    assert metas["supported-color-schemes"] == "light dark"
    assert metas["viewport"].startswith("width=device-width")


def dom(html: str) -> list[tuple]:
    """Tags, attributes and text with whitespace normalised: what a mail client renders."""
    def norm(text: str | None) -> str:
        return " ".join((text or "").split())

    nodes = []
    for element in lxml.html.document_fromstring(html).iter():
        tag = element.tag if isinstance(element.tag, str) else "#comment"
        attrs = tuple(sorted((key, norm(value)) for key, value in element.attrib.items()))
        nodes.append((tag, attrs, norm(element.text), norm(element.tail)))
    return nodes


@pytest.mark.parametrize("make", [golden_digest, hostile_digest, max_digest])
def test_inlined_once_equals_premailer_per_email(renderer: Renderer, make) -> None:
    digest = make()
    subscriber_links = links(digest.subscriber.email)
    rendered = renderer.render(digest, subscriber_links)
    template = renderer.html_env.from_string(renderer.html_source())
    raw = template.render(renderer.context(digest, subscriber_links))
    per_email = Premailer(**PREMAILER_OPTIONS).transform(raw, pretty_print=False)
    assert dom(rendered.html) == dom(per_email)


def test_render_does_not_run_premailer(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = Renderer(TEMPLATES, base_url=BASE_URL, site_name="Trending Papers")

    def boom(*args, **kwargs):
        raise AssertionError("premailer ran during render")

    monkeypatch.setattr(inline, "Premailer", boom)
    digest = golden_digest()
    assert "style=" in fresh.render(digest, links(digest.subscriber.email)).html


def test_untrusted_text_is_escaped(renderer: Renderer) -> None:
    rendered = renderer.render(hostile_digest(), links("eve@example.org"))
    html = rendered.html
    assert "<script" not in html and "<img" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert "&lt;script&gt;steal()&lt;/script&gt;" in html
    assert "Hi &lt;Eve&gt;," in html
    doc = lxml.html.document_fromstring(html)
    assert not doc.xpath("//script | //img | //i | //b")
    hrefs = [a.get("href") for a in doc.iter("a")]
    assert not any(h.startswith(("javascript:", "data:")) for h in hrefs)
    assert not doc.cssselect("a.meta-link")  # the data: "code" link is dropped, not linked
    # The text part is plain text: the same strings, verbatim and unescaped.
    assert '<script>alert("t")</script> & <b>bold</b>' in rendered.text
    assert "&lt;" not in rendered.text and "&amp;" not in rendered.text
    assert "javascript:" not in rendered.text


@pytest.mark.parametrize("bad", [
    "javascript://papers.example/%0Aalert(document.cookie)", "JavaScript://x/%0d%0aalert(1)",
    "ftp://files.example/paper.pdf", "file:///etc/passwd", "file://host/share/paper.pdf",
    "data://text/html,<b>x</b>", "vbscript://x/msgbox"])
def test_only_http_links_from_a_catalog_entry_reach_the_email(renderer: Renderer,
                                                              bad: str) -> None:
    # A link with a host but another scheme: the parsers refuse these, and a catalog filled by
    # another version, a hand-edited row or a new source must still not put them in an email.
    paper = Paper(id="p", title="A paper", abstract="About graphs.", url=bad,
                  links=(Link("code", bad), Link("project", bad)))
    subscriber = Subscriber(email="ada@example.org", name="Ada", topics=("GNN",))
    digest = Digest(subscriber, "2026-11-23", (Section("GNN", (item(paper, "GNN", "r"),)),), NOW)
    rendered = renderer.render(digest, links(subscriber.email))
    message = build_message(digest, rendered, links(subscriber.email),
                            from_address="papers@example.org", from_name="Trending Papers",
                            list_id="papers.example.org", now=NOW)
    hrefs = [a.get("href") for a in lxml.html.document_fromstring(rendered.html).iter("a")]
    assert hrefs and all(h.startswith(("https://", "mailto:")) for h in hrefs), hrefs
    parsed = email.message_from_bytes(message.data, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    decoded = " ".join(part.get_content() for part in parsed.iter_parts())
    assert bad.split(":")[0].lower() + ":" not in decoded.lower()
    assert "https://arxiv.org/search/" in rendered.text  # the paper's link falls back


def rich_digest(papers: int = 50) -> Digest:
    """A 50-paper digest of Hugging Face papers as they come: arXiv ids, eight authors, a
    model-written summary, code and project links, engagement counts."""
    items = []
    for n in range(papers):
        paper = Paper(
            id=f"2411.{n:05d}", arxiv_id=f"2411.{n:05d}",
            title=f"Scaling Graph Neural Operators to Million-Node Meshes, Part {n}",
            abstract=GNN_ABSTRACT * 3, url=f"https://huggingface.co/papers/2411.{n:05d}",
            authors=tuple(f"Author{a} Surname{a}" for a in range(8)),
            published=date(2026, 11, 20), upvotes=100 + n, comments=n, github_stars=2000 + n,
            links=(Link("code", f"https://github.com/some-lab/graph-operators-{n}"),
                   Link("project", f"https://some-lab.github.io/graph-operators-{n}")),
            ai_summary=GNN_ABSTRACT[:220],
        )
        items.append(item(paper, f"topic {n % 3}", "matches: GNN → graph neural network (title)"))
    sections = tuple(Section(f"topic {t}", tuple(items[t::3])) for t in range(3))
    subscriber = Subscriber(email="ada@example.org", name="Ada Lovelace",
                            topics=tuple(s.topic for s in sections), max_papers=papers)
    return Digest(subscriber, "2026-11-23", sections, NOW)


READER = Subscriber(email="reader@example.org", name="", topics=(), link_id="golden-link1",
                    link_key="golden-key")


def tracked(paper: Paper) -> str:
    return tokens.click_url(SECRET, BASE_URL, READER, paper.id)


def test_fifty_rich_papers_fit_in_the_byte_budget_whole(renderer: Renderer) -> None:
    digest = rich_digest(50)
    shown, rendered = renderer.fit(digest, links(digest.subscriber.email), tracked)
    assert shown == digest  # all 50, none left out
    assert len(rendered.html.encode()) < render.HTML_BUDGET
    assert "did not fit" not in rendered.html and "Unsubscribe</a>" in rendered.html


def test_fifty_papers_with_every_field_at_its_longest_stay_in_the_budget(
        renderer: Renderer) -> None:
    digest = max_digest(50)
    shown, rendered = renderer.fit(digest, links(digest.subscriber.email), tracked)
    assert len(rendered.html.encode("utf-8")) <= render.HTML_BUDGET
    assert links(digest.subscriber.email).unsubscribe_url in rendered.html
    message = build_message(shown, rendered, links(digest.subscriber.email),
                            from_address="papers@example.org", from_name="Trending Papers",
                            list_id="papers.example.org", now=NOW)
    assert len(message.data) < 200 * 1024


def test_a_digest_over_the_budget_leaves_papers_out_from_the_end_and_says_so(
        renderer: Renderer) -> None:
    # Chinese text takes three bytes a character: fifty such papers at their longest pass 102 KB
    cjk = "图神经网络在推荐系统与药物发现中取得了显著成功。" * 30
    longest = max_digest(50)
    digest = replace(longest, sections=tuple(
        replace(section, items=tuple(
            replace(i, paper=replace(i.paper, title=cjk[:120], abstract=cjk, ai_summary=cjk))
            for i in section.items))
        for section in longest.sections))
    subscriber_links = links(digest.subscriber.email)
    assert len(renderer.render(digest, subscriber_links, tracked).html.encode()) > 102 * 1024
    shown, rendered = renderer.fit(digest, subscriber_links, tracked)
    size = len(rendered.html.encode("utf-8"))
    assert size <= render.HTML_BUDGET, f"HTML is {size} bytes"
    kept = len(shown.items)
    assert 10 < kept < 50
    assert shown.paper_ids == digest.paper_ids[:kept]  # the first ones, in digest order
    said = f"{50 - kept} more papers on your topics did not fit in this email"
    for body in (rendered.html, " ".join(rendered.text.split())):
        assert said in body
        assert subscriber_links.unsubscribe_url in body  # the footer is there, under the cut
    assert f"Here are {kept} papers" in rendered.html


def test_a_tighter_budget_leaves_more_out_but_never_the_first_paper(renderer: Renderer) -> None:
    digest = golden_digest()
    shown, rendered = renderer.fit(digest, links("ada@example.org"), budget=1000)
    assert shown.paper_ids == digest.paper_ids[:1]
    assert "3 more papers on your topics did not fit" in rendered.text


def test_subject_lines(renderer: Renderer) -> None:
    digest = golden_digest()
    one = replace(digest, sections=(replace(digest.sections[0], items=digest.sections[0].items[:1]),))
    assert renderer.render(one, links("a@b.c")).subject == "1 new paper on GNN — Mon 23 Nov"
    three = replace(digest, sections=(*digest.sections, Section("LLM\nagents", digest.sections[1].items)),
                    edition="2026-W48")
    subject = renderer.render(three, links("a@b.c")).subject
    assert subject == "6 new papers on GNN, PINNs and more — week of 23 Nov"
    newline = replace(digest, sections=(replace(digest.sections[0], topic="GNN\r\nBcc: x@evil"),))
    subject = renderer.render(newline, links("a@b.c")).subject
    assert "\n" not in subject and "\r" not in subject


def test_excerpt() -> None:
    assert paperview.excerpt("short  text\n") == "short text"
    text = "word " * 100
    cut = paperview.excerpt(text)
    assert len(cut) <= 300 and cut.endswith("word…")
    assert paperview.excerpt("x" * 400).endswith("…") and len(paperview.excerpt("x" * 400)) == 300
    assert paperview.excerpt("a" * 290 + ", thenwords more") == "a" * 290 + "…"  # no dangling ","


def test_authors_label() -> None:
    paper = Paper(id="p", title="t", abstract="a")
    assert paperview.authors_label(paper) is None
    assert paperview.authors_label(replace(paper, author_count=1)) == "1 author"
    assert paperview.authors_label(replace(paper, authors=("A", "B", "C"))) == "A, B, C"
    assert paperview.authors_label(replace(paper, authors=("A", "B", "C"), author_count=9)) == "A, B, C et al."
    assert paperview.authors_label(replace(paper, authors=("A", "B", "C", "D"))) == "A, B, C et al."


def test_paper_url_fallback() -> None:
    paper = Paper(id="p", title="Attention & Co: 100% <new>", abstract="a")
    assert paperview.paper_url(paper) == (
        "https://arxiv.org/search/?searchtype=title&query=Attention+%26+Co%3A+100%25+%3Cnew%3E"
    )
    assert paperview.paper_url(replace(paper, arxiv_id="2401.00001v2")) == "https://arxiv.org/abs/2401.00001v2"
    assert paperview.paper_url(replace(paper, url="https://hf.co/papers/1")) == "https://hf.co/papers/1"
    assert paperview.paper_url(replace(paper, url="javascript:alert(1)")).startswith("https://arxiv.org/search/")


def test_inline_css_keeps_attribute_expressions() -> None:
    source = ('<html><head><style>a { color: red }</style></head><body><table>'
              '{% for x in xs %}<tr><td><a href="{{ x.url }}">{{ x.name }}</a></td></tr>{% endfor %}'
              '</table></body></html>')
    inlined = inline_css(source)
    assert 'href="{{ x.url }}"' in inlined and "%20" not in inlined
    assert '<a href="{{ x.url }}" style="color:red">{{ x.name }}</a>' in inlined
    assert inlined.index("{% for x in xs %}") < inlined.index("<tr>") < inlined.index("{% endfor %}")


@pytest.mark.parametrize("source", [
    "{% set a = 1 %}<!DOCTYPE html><html><body><p>x</p></body></html>",  # dropped before <html>
    "<html><head><title>{% if a %}b{% endif %}</title></head><body></body></html>",  # escaped
])
def test_inline_css_refuses_tags_it_cannot_keep(source: str) -> None:
    with pytest.raises(ConfigError, match="Jinja tags"):
        inline_css(source)


def test_missing_templates_are_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        Renderer(tmp_path / "nope", base_url=BASE_URL, site_name="x")
    with pytest.raises(ConfigError, match="digest.html"):
        Renderer(tmp_path, base_url=BASE_URL, site_name="x")


# -- richer items and the Trending section -----------------------------------------------------


def trending_digest() -> Digest:
    digest = golden_digest()
    gnn, pinns = digest.sections
    hot = replace(gnn.items[1], reason="trending: 120 upvotes, 4 comments; matches: GNN (title)")
    return replace(digest, sections=(Section("Trending", (hot,), trending=True),
                                     replace(gnn, items=gnn.items[:1]), pinns))


def test_items_show_upvotes_code_stars_project_page_and_the_ai_summary_or_keywords(
        renderer: Renderer) -> None:
    rendered = renderer.render(golden_digest(), links("ada@example.org"))
    doc = lxml.html.document_fromstring(rendered.html)
    first, second = doc.cssselect("td.paper")[:2]
    assert "120 upvotes" in first.cssselect("p.meta")[0].text_content()
    assert "Code (1,234 stars)" in " ".join(first.cssselect("p.meta")[0].text_content().split())
    assert first.cssselect("p.summary")[0].text_content() == (
        "In short: Trains GNNs with forward passes only, without backpropagation.")
    assert not first.cssselect("p.keywords")  # the summary says more than keywords
    assert second.cssselect("p.keywords")[0].text_content() == (
        "Keywords: out-of-core training, offline sampling, I/O")
    assert {a.text_content(): a.get("href") for a in second.cssselect("a.meta-link")} == {
        "Project page": "https://diskgnn.example.org"}
    for line in ("Code: https://github.com/facebookresearch/forwardgnn (1,234 stars)",
                 "In short: Trains GNNs with forward passes only, without",
                 "Project page: https://diskgnn.example.org",
                 "Keywords: out-of-core training, offline sampling, I/O"):
        assert line in rendered.text


def test_a_trending_section_is_headed_explained_and_announced_in_the_intro(
        renderer: Renderer) -> None:
    digest = trending_digest()
    rendered = renderer.render(digest, links("ada@example.org"))
    doc = lxml.html.document_fromstring(rendered.html)
    headings = [" ".join(h.text_content().split()) for h in doc.cssselect("h2.topic")]
    assert headings == ["Trending in your topics · 1 paper", "GNN · 1 paper", "PINNs · 2 papers"]
    assert doc.cssselect("p.section-note")[0].text_content().startswith("Papers on your topics")
    assert "starting with the one the research community is most excited about" in (
        doc.cssselect("p.intro")[0].text_content())
    assert "Trending in your topics (1 paper)\n-------" in rendered.text
    assert "most excited about right now" in rendered.text
    # "Trending" is a section, not one of the person's topics.
    assert rendered.subject == "4 new papers on GNN and PINNs — Mon 23 Nov"


def test_without_a_trending_section_the_digest_says_nothing_about_trending(
        renderer: Renderer) -> None:
    digest = golden_digest()
    digest = replace(digest, sections=tuple(
        replace(s, items=tuple(i for i in s.items if "trending" not in i.reason))
        for s in digest.sections))
    rendered = renderer.render(digest, links("ada@example.org"))
    for body in (rendered.html, rendered.text):
        body = body.replace("Trending Papers", "")  # the site's name
        assert "trending" not in body.lower() and "excited" not in body
        assert "right now" not in body


def test_the_intro_says_when_every_paper_is_trending(renderer: Renderer) -> None:
    digest = trending_digest()
    digest = replace(digest, sections=digest.sections[:1])
    intro = renderer.render(digest, links("ada@example.org")).text.split("\n\n")[1]
    assert intro == ("Here is 1 paper on GNN that you have not seen yet, and the research\n"
                     "community is excited about it right now.")


# -- per-paper caching ---------------------------------------------------------------------------


@pytest.mark.parametrize("make", [golden_digest, hostile_digest, max_digest, trending_digest])
def test_the_flattened_text_template_renders_what_the_includes_do(renderer: Renderer, make) -> None:
    digest = make()
    subscriber_links = links(digest.subscriber.email)
    with_includes = renderer.text_env.get_template("digest.txt")
    expected = with_includes.render(renderer.context(digest, subscriber_links)) + "\n"
    assert renderer.render(digest, subscriber_links).text == expected


def test_a_cached_paper_keeps_each_subscribers_number_reason_and_link() -> None:
    fresh = Renderer(TEMPLATES, base_url=BASE_URL, site_name="Trending Papers")
    digest = golden_digest()
    forward = digest.sections[0].items[0]
    other = replace(digest, sections=(
        Section("PINNs", (digest.sections[1].items[0],
                          replace(forward, reason="matches: forward learning (abstract)"))),))
    first = fresh.render(digest, links("ada@example.org")).text
    second = fresh.render(other, links("ada@example.org"),
                          paper_link=lambda paper: f"https://t.example/{paper.id}").text
    assert "1. Forward Learning of Graph Neural Networks" in first
    assert "2. Forward Learning of Graph Neural Networks\n   https://t.example/2403.01234" in second
    assert "Why this paper: matches: forward learning (abstract)" in second
    assert "matches: GNN → graph neural network" not in second
    again = fresh.render(digest, links("ada@example.org")).text
    assert again == first  # the tracked link of the second digest did not stick to the paper


def test_a_changed_paper_is_not_served_from_the_cache() -> None:
    fresh = Renderer(TEMPLATES, base_url=BASE_URL, site_name="Trending Papers")
    digest = golden_digest()
    fresh.render(digest, links("ada@example.org"))
    item0 = digest.sections[0].items[0]
    newer = replace(item0, paper=replace(item0.paper, title="Backward Learning", upvotes=999))
    changed = replace(digest, sections=(Section("GNN", (newer,)),))
    text = fresh.render(changed, links("ada@example.org")).text
    assert "Backward Learning" in text and "999 upvotes" in text
    assert "Forward Learning" not in text


def test_the_paper_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "PAPER_CACHE_SIZE", 5)
    fresh = Renderer(TEMPLATES, base_url=BASE_URL, site_name="Trending Papers")
    base = golden_digest().sections[0].items[0]
    for n in range(20):
        item_n = replace(base, paper=replace(base.paper, id=f"p{n}", title=f"Paper number {n}"))
        digest = replace(golden_digest(), sections=(Section("GNN", (item_n,)),))
        assert f"Paper number {n}" in fresh.render(digest, links("ada@example.org")).text
    assert len(fresh._papers) == 5


def test_shared_blocks_are_cut_out_and_rendered_once_per_paper(renderer: Renderer) -> None:
    assert [n for n in renderer._generated if ".shared" in n] == ["digest.inlined.html.shared0.html"]
    assert [n for n in renderer._generated_text if ".shared" in n] == ["digest.flat.txt.shared0.txt"]
    fresh = Renderer(TEMPLATES, base_url=BASE_URL, site_name="Trending Papers")
    digest = golden_digest()
    first = fresh.render(digest, links("ada@example.org"))
    views = fresh.context(digest, links("ada@example.org"))["sections"][0].papers
    assert set(views[0].shared.fragments) == {"digest.inlined.html.shared0.html",
                                              "digest.flat.txt.shared0.txt"}
    assert "forwardgnn" in views[0].shared.fragments["digest.flat.txt.shared0.txt"]
    assert fresh.render(digest, links("ada@example.org")) == first


@pytest.mark.parametrize("inside", ["{{ name }}", "{{ links.unsubscribe_url }}",
                                    "{% if email %}x{% endif %}"])
def test_a_shared_block_that_uses_the_reader_is_refused(tmp_path: Path, inside: str) -> None:
    import shutil
    shutil.copytree(TEMPLATES, tmp_path / "t")
    partial = tmp_path / "t" / "_paper.txt"
    partial.write_text(partial.read_text().replace("{% endcall %}", inside + "\n{% endcall %}"))
    with pytest.raises(ConfigError, match="same_for_every_reader block .* only paper"):
        Renderer(tmp_path / "t", base_url=BASE_URL, site_name="x")
