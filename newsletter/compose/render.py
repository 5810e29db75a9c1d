"""Digest -> subject, preheader, HTML and plain-text bodies.

Email clients ignore most of <style>, so CSS must sit in style="" attributes. The inlining depends
only on the markup, not on the data, so the Renderer inlines the template once (``inline.py``)
and then renders the already-inlined template for every subscriber.

A run renders the same few hundred papers into tens of thousands of digests, so what depends on
the paper alone is computed once per Renderer and kept in bounded caches: the cleaned text,
excerpt, meta line and checked links (``paperview.py``), the wrapped text, and the templates'
``same_for_every_reader`` blocks, rendered once per paper. Only a paper's number, reason and
(tracked) link are the subscriber's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import jinja2
import jinja2.meta
from markupsafe import Markup

from newsletter.compose.inline import (
    classes_in,
    flatten_includes,
    inline_css,
    make_environment,
    share_by_class,
    split_shared_blocks,
)
from newsletter.compose.paperview import MONTHS, PaperParts, PaperView, excerpt, one_line
from newsletter.errors import ConfigError
from newsletter.models import Digest, DigestItem, Paper, RenderedDigest, SubscriberLinks

HTML_TEMPLATE = "digest.html"
PAPER_TEMPLATE = "_paper.html"  # repeated once per paper: its classes are styled in <style>
TEXT_TEMPLATE = "digest.txt"
INLINED_NAME = "digest.inlined.html"  # ends in .html so autoescape applies to it as well
FLAT_TEXT_NAME = "digest.flat.txt"  # the text template with its includes pasted in
# Bounds on the per-Renderer caches, so a long run cannot grow them without limit: a run's
# candidate window holds a few thousand papers at most, and an evicted one is only recomputed.
PAPER_CACHE_SIZE = 4096
WRAP_CACHE_SIZE = 16384  # ~4 wrapped fields a paper, plus the reasons, which repeat a lot

# Gmail clips a message whose HTML passes 102 KB, hiding everything below the cut: the footer
# with its unsubscribe link. A digest over this budget leaves papers out (``Renderer.fit``).
HTML_BUDGET = 90 * 1024

TRENDING_HEADING = "Trending in your topics"
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True, slots=True)
class SectionView:
    topic: str
    count: int
    papers: tuple[PaperView, ...]
    trending: bool = False


class Renderer:
    """Loads the templates and inlines the CSS once; ``render`` is then cheap per subscriber."""

    def __init__(self, templates_dir: Path, *, base_url: str, site_name: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.site_name = site_name
        self._generated: dict[str, str] = {}
        self._generated_text: dict[str, str] = {}
        self._papers = PaperParts(PAPER_CACHE_SIZE)
        # wrap is a pure function of its arguments, and most of what it wraps is a paper's text
        # that the next digests wrap again
        cached_wrap = lru_cache(maxsize=WRAP_CACHE_SIZE)(wrap)
        self.html_env = make_environment(Path(templates_dir), self._generated, html=True,
                                         filters={"wrap": cached_wrap})
        self.text_env = make_environment(Path(templates_dir), self._generated_text, html=False,
                                         filters={"wrap": cached_wrap})
        for env in (self.html_env, self.text_env):
            env.globals[SHARED] = same_for_every_reader
            env.filters[SHARED] = shared_fragment
        try:
            html, blocks = split_shared_blocks(inline_css(self.html_source()), INLINED_NAME,
                                               ".html")
            self._generated.update(blocks, **{INLINED_NAME: html})
            check_shared_blocks(self.html_env, HTML_TEMPLATE, html, blocks)
            self._html = self.html_env.get_template(INLINED_NAME)
            # Pasting the includes in, as for the HTML, saves a Jinja context per paper
            text, blocks = split_shared_blocks(
                flatten_includes(self.text_env, TEXT_TEMPLATE), FLAT_TEXT_NAME, ".txt")
            self._generated_text.update(blocks, **{FLAT_TEXT_NAME: text})
            check_shared_blocks(self.text_env, TEXT_TEMPLATE, text, blocks)
            self._text = self.text_env.get_template(FLAT_TEXT_NAME)
        except jinja2.TemplateNotFound as exc:
            raise ConfigError(f"{templates_dir}: template {exc.name!r} is missing") from exc

    def html_source(self) -> str:
        """The HTML template, includes pasted in, with the per-paper classes' rules moved to a
        kept <style> block (``inline.share_by_class``)."""
        source = flatten_includes(self.html_env, HTML_TEMPLATE)
        assert self.html_env.loader is not None
        try:
            paper = self.html_env.loader.get_source(self.html_env, PAPER_TEMPLATE)[0]
        except jinja2.TemplateNotFound:
            return source  # a template set without the partial: everything is inlined
        return share_by_class(source, classes_in(paper))

    def fit(self, digest: Digest, links: SubscriberLinks,
            paper_link: Callable[[Paper], str] | None = None,
            budget: int = HTML_BUDGET) -> tuple[Digest, RenderedDigest]:
        """The digest as it goes out: whole when its HTML fits in ``budget`` bytes, else with
        papers left out from the end (they stay unsent, so a later digest can have them) and a
        line saying how many are waiting. The returned Digest holds only the papers shown."""
        rendered = self.render(digest, links, paper_link)
        total = keep = len(digest.items)
        while (size := len(rendered.html.encode("utf-8"))) > budget and keep > 1:
            # papers are most of the bytes: scale down, and always by at least one
            keep = max(1, min(keep - 1, keep * budget // size))
            shown = first_items(digest, keep)
            rendered = self.render(shown, links, paper_link, waiting=total - keep)
        return (digest if keep == total else first_items(digest, keep)), rendered

    def render(self, digest: Digest, links: SubscriberLinks,
               paper_link: Callable[[Paper], str] | None = None, *,
               waiting: int = 0) -> RenderedDigest:
        """``paper_link`` replaces each paper's own URL (click tracking); ``waiting`` is how
        many relevant papers were left out (``fit``)."""
        context = self.context(digest, links, paper_link, waiting=waiting)
        return RenderedDigest(
            subject=context["subject"],
            preheader=context["preheader"],
            html=self._html.render(context) + "\n",
            text=self._text.render(context) + "\n",
        )

    def context(self, digest: Digest, links: SubscriberLinks,
                paper_link: Callable[[Paper], str] | None = None, *,
                waiting: int = 0) -> dict[str, Any]:
        """The template variables; public so previews and tests can render other templates."""
        subscriber = digest.subscriber
        sections = _section_views(digest, paper_link, self._papers)
        count = sum(section.count for section in sections)
        topics = digest_topics(digest)
        day, weekly = edition_date(digest)
        return {
            "subject": subject_line(count, topics, day, weekly),
            "preheader": preheader(digest.items),
            "site_name": self.site_name,
            "base_url": self.base_url,
            "name": one_line(subscriber.name),
            "email": subscriber.email,
            "edition_label": edition_label(day, weekly),
            "count": count,
            "digest_topics": topics_phrase(topics),
            "subscribed_topics": join_words([one_line(t) for t in subscriber.topics] or topics),
            "sections": sections,
            "trending_count": sum(s.count for s in sections if s.trending),
            "waiting": waiting,
            "links": links,
            "feedback": feedback_links(digest, links),
        }


# -- blocks rendered once per paper -------------------------------------------------------------

SHARED = "same_for_every_reader"


def same_for_every_reader(paper: PaperView, caller: Callable[[PaperView], str]) -> str:
    """``{% call(paper) same_for_every_reader(paper) %}...{% endcall %}`` in a digest template
    marks the part of a paper's block that depends on the paper alone. The Renderer cuts such
    blocks out into templates of their own (``split_shared_blocks``), renders each once per
    paper and reuses it for every reader (``shared_fragment``); this function renders a block
    left in place (a template rendered from its files, as tests do) the same way, uncached.

    A block sees ``paper`` with the reader's own fields (number, url, reason) empty, and
    ``check_shared_blocks`` refuses a block that uses any other variable, so nothing of one
    reader can be cached into another's digest."""
    return caller(_shared_view(paper))


@jinja2.pass_eval_context
def shared_fragment(eval_ctx: jinja2.nodes.EvalContext, paper: PaperView, block: str) -> str:
    """The template ``block`` rendered for ``paper`` alone: once per paper, then from the
    Renderer's paper cache."""
    shared = paper.shared
    fragment = shared.fragments.get(block) if shared is not None else None
    if fragment is None:
        fragment = eval_ctx.environment.get_template(block).render(paper=_shared_view(paper))
        if eval_ctx.autoescape:
            fragment = Markup(fragment)  # rendered with autoescape already
        if shared is not None:
            shared.fragments[block] = fragment
    return fragment


def _shared_view(paper: PaperView) -> PaperView:
    if paper.shared is not None:
        return paper.shared.view
    return replace(paper, number=0, url="", reason="")  # made by paper_view(), outside a cache


def check_shared_blocks(env: jinja2.Environment, name: str, source: str,
                        blocks: dict[str, str]) -> None:
    """ConfigError when a shared block uses a variable other than ``paper``: its output is
    cached per paper, so it must not depend on the reader."""
    bodies = list(blocks.values())
    for node in env.parse(source).find_all(jinja2.nodes.CallBlock):  # blocks left in place
        if isinstance(node.call.node, jinja2.nodes.Name) and node.call.node.name == SHARED:
            bodies.append(jinja2.nodes.Template(node.body))
    for body in bodies:
        tree = env.parse(body) if isinstance(body, str) else body
        used = jinja2.meta.find_undeclared_variables(tree) - {"paper"} - env.globals.keys()
        if used:
            raise ConfigError(
                f"template {name!r}: a {SHARED} block is rendered once for all readers, so it "
                f"can use only paper, not {', '.join(sorted(used))}")


# -- what the templates show -------------------------------------------------------------------

def _section_views(digest: Digest, link: Callable[[Paper], str] | None,
                   papers: PaperParts) -> tuple[SectionView, ...]:
    numbers = iter(range(1, len(digest.items) + 1))
    return tuple(
        SectionView(TRENDING_HEADING if section.trending else one_line(section.topic),
                    len(section.items),
                    tuple(papers.view(next(numbers), item, link) for item in section.items),
                    trending=section.trending)
        for section in digest.sections if section.items
    )


def feedback_links(digest: Digest, links: SubscriberLinks) -> tuple[tuple[str, str], ...]:
    """Each paper's ("More like this", "Less like this") links, in the order the papers are
    numbered (``feedback[paper.number - 1]``); empty when ``links`` makes none. Per reader and
    paper, so never inside a ``same_for_every_reader`` block."""
    make = links.feedback
    if make is None:
        return ()
    return tuple((make(item.paper.id, "more"), make(item.paper.id, "less"))
                 for item in digest.items)


def first_items(digest: Digest, count: int) -> Digest:
    """``digest`` with only its first ``count`` papers, in digest order; emptied sections go."""
    sections = []
    for section in digest.sections:
        items = section.items[:max(count, 0)]
        count -= len(items)
        if items:
            sections.append(replace(section, items=items))
    return replace(digest, sections=tuple(sections))


def digest_topics(digest: Digest) -> list[str]:
    """The topics this digest has papers on: the topic sections', then those that only the
    Trending section's papers matched ("Trending" itself is not a topic)."""
    sections = [one_line(s.topic) for s in digest.sections if s.items and not s.trending]
    trending = [one_line(i.topic) for s in digest.sections if s.trending for i in s.items]
    return list(dict.fromkeys(sections + trending))


def wrap(text: str, width: int = 72, indent: int = 0) -> str:
    """Greedy word wrap for the text part that never breaks a long word (a URL); Jinja's
    wordwrap (textwrap) took 70% of the whole render, this is 20x faster."""
    lines = [""]
    for word in text.split():
        if lines[-1] and len(lines[-1]) + 1 + len(word) > width:
            lines.append(word)
        else:
            lines[-1] = f"{lines[-1]} {word}" if lines[-1] else word
    return ("\n" + " " * indent).join(lines)


def topics_phrase(topics: list[str], limit: int = 3) -> str:
    """"GNN, PINNs and LLM agents", or "GNN, PINNs, LLMs and 2 more topics" past ``limit``."""
    if len(topics) <= limit:
        return join_words(topics)
    return f"{', '.join(topics[:limit])} and {len(topics) - limit} more topics"


def join_words(words: list[str]) -> str:
    return " and ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else "".join(words)


def edition_date(digest: Digest) -> tuple[date, bool]:
    """The day the edition is for, and whether it is a weekly one ("2026-W48")."""
    edition = digest.edition
    try:
        if re.fullmatch(r"\d{4}-W\d{2}", edition):
            return date.fromisocalendar(int(edition[:4]), int(edition[6:]), 1), True
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", edition):
            return date.fromisoformat(edition), False
    except ValueError:
        pass
    return digest.created_at.date(), False


def edition_label(day: date, weekly: bool) -> str:
    if weekly:
        return f"Week of {day.day} {MONTHS[day.month - 1]} {day.year}"
    return f"{_DAYS[day.weekday()]}, {day.day} {MONTHS[day.month - 1]} {day.year}"


def subject_line(count: int, topics: list[str], day: date, weekly: bool) -> str:
    """"7 new papers on GNN, PINNs and more — Mon 23 Nov"; one line, as topics are one_line()d."""
    shown = [excerpt(topic, 40) for topic in topics[:2]]
    about = f"{', '.join(shown)} and more" if len(topics) > 2 else join_words(shown)
    month = MONTHS[day.month - 1][:3]
    when = f"week of {day.day} {month}" if weekly else f"{_DAYS[day.weekday()][:3]} {day.day} {month}"
    return f"{count} new paper{'s' if count != 1 else ''} on {about} — {when}"


def preheader(items: list[DigestItem]) -> str:
    """The inbox preview line: the top paper's title and how many more follow."""
    if not items:
        return ""
    top = excerpt(items[0].paper.title, 110)
    return f"{top} · and {len(items) - 1} more" if len(items) > 1 else top
