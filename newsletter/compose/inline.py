"""Jinja2 environments, and CSS inlined once on the template source rather than per email.

premailer costs ~20 ms per document, 100x the Jinja render, and its result depends only on the
markup. So the Jinja tags are swapped for inert placeholders while lxml parses the template,
premailer inlines the CSS, and the tags are swapped back: one premailer run per process.

Not everything is inlined. The styles of what repeats once per paper (``share_by_class``) stay
in a ``<style>`` block of their own, kept in ``<head>``, and the elements carry only their
classes: inlined, those attributes were 40% of a 50-paper digest's bytes, and a digest must stay
under Gmail's clipping limit (``render.HTML_BUDGET``). Every client that matters reads a
``<style>`` block with class selectors; one that strips it still shows the text and the links.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Callable

import jinja2
from premailer import Premailer

from newsletter.errors import ConfigError

PREMAILER_OPTIONS: dict[str, Any] = {
    "strip_important": False,  # the dark-mode and mobile overrides need their !important
    "allow_network": False,
    "allow_loading_external_files": False,
    # The media queries live in a <style data-premailer="ignore"> block that premailer keeps
    # verbatim; keeping the inlined block too would only add bytes to every email.
    "keep_style_tags": False,
    "disable_validation": True,
    "disable_link_rewrites": True,
    "remove_classes": False,  # the @media rules select by class
    "cssutils_logging_level": logging.CRITICAL,
}


# -- templates ---------------------------------------------------------------------------------

def make_environment(templates_dir: Path, generated: dict[str, str], *, html: bool,
                     filters: dict[str, Callable[..., Any]]) -> jinja2.Environment:
    """One environment per output format: Jinja fixes autoescaping per compiled template, and the
    shared partials (``_copy.jinja``) must be escaped in HTML and verbatim in text. With a single
    environment a macro called from HTML would pass catalog text through unescaped.
    ``generated`` holds templates made at run time (the inlined HTML); files come second."""
    if not templates_dir.is_dir():
        raise ConfigError(f"{templates_dir}: templates folder not found (NEWSLETTER_TEMPLATES_DIR)")
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([
            jinja2.DictLoader(generated),
            jinja2.FileSystemLoader(templates_dir),
        ]),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml"), default_for_string=html, default=html
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(filters)
    return env


_INCLUDE = re.compile(r"""(?m)(?:^[ \t]*)?\{%-?\s*include\s+(["'])([\w./-]+)\1\s*-?%\}\n?""")
_ANY_INCLUDE = re.compile(r"\{%-?\s*include\b")
_COMMENT = re.compile(r"\{#.*?#\}", re.S)


def flatten_includes(env: jinja2.Environment, name: str, _depth: int = 0) -> str:
    """The template source with every literal ``{% include %}`` replaced by the partial's source,
    so premailer sees all the markup that the CSS applies to."""
    if _depth > 10:
        raise ConfigError(f"template {name!r}: includes nested more than 10 deep (a cycle?)")
    assert env.loader is not None
    source = _COMMENT.sub("", env.loader.get_source(env, name)[0])
    # Jinja drops a template's final newline and trim_blocks the one after the tag: same here.
    source = _INCLUDE.sub(
        lambda m: flatten_includes(env, m.group(2), _depth + 1).removesuffix("\n"), source
    )
    if _depth == 0 and _ANY_INCLUDE.search(source):
        raise ConfigError(f"template {name!r}: only includes of a quoted name can be inlined")
    return source


# A block of a digest template that depends on the paper alone (see render.same_for_every_reader)
_SHARED_BLOCK = re.compile(r"(?ms)^[ \t]*\{%\s*call\(paper\)\s*same_for_every_reader\(paper\)\s*%\}\n"
                           r"(.*?)^[ \t]*\{%\s*endcall\s*%\}\n")


def split_shared_blocks(source: str, name: str, suffix: str) -> tuple[str, dict[str, str]]:
    """``source`` with each ``{% call(paper) same_for_every_reader(paper) %}`` block replaced
    by ``{{ paper|same_for_every_reader("<name>") }}``, and the blocks' sources by those names.

    Rendered as a call block, the body costs a Macro and a ``Context.call`` per paper; as a
    filter with the body in its own template, a cache hit is one function call. The output is
    the same: trim_blocks drops the newline after the opening tag, lstrip_blocks and trim_blocks
    the closing tag's line, and the extra newline stands for the one Jinja drops at the end of
    a template. ``suffix`` keeps the names' extension, on which autoescaping depends."""
    blocks: dict[str, str] = {}

    def cut(match: re.Match[str]) -> str:
        block = f"{name}.shared{len(blocks)}{suffix}"
        blocks[block] = match.group(1) + "\n"
        return f'{{{{ paper|same_for_every_reader("{block}") }}}}'

    return _SHARED_BLOCK.sub(cut, source), blocks


_INLINED_BLOCK = re.compile(r"<style>(.*?)</style>\n?", re.S)  # the block premailer inlines
_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}\s*")
_CLASS_ATTRIBUTE = re.compile(r"""\bclass=(["'])(.*?)\1""")


def classes_in(source: str) -> set[str]:
    """The class names in ``source``'s ``class="..."`` attributes."""
    return {name for _, value in _CLASS_ATTRIBUTE.findall(source) for name in value.split()}


def share_by_class(source: str, classes: set[str]) -> str:
    """Move the rules of the first ``<style>`` block (the one premailer inlines) whose selectors
    are all among ``classes`` (``.paper``, ``.meta, .keywords``) into a block of their own that
    premailer keeps, written before it, so the elements keep only their classes. Its rules come
    before the kept media queries, whose ``!important`` overrides still win."""
    block = _INLINED_BLOCK.search(source)
    if block is None or not classes:
        return source
    shared: list[str] = []

    def take(rule: re.Match[str]) -> str:
        selectors = [s.strip() for s in rule.group(1).split(",")]
        if not all(s.startswith(".") and s[1:] in classes for s in selectors):
            return rule.group(0)
        body = ";".join(_compact(d) for d in rule.group(2).split(";") if d.strip())
        shared.append(f"{','.join(selectors)}{{{body}}}")
        return ""

    rest = _RULE.sub(take, block.group(1))
    if not shared:
        return source
    kept = '<style data-premailer="ignore">\n' + "\n".join(shared) + "\n</style>\n"
    return f"{source[:block.start()]}{kept}<style>{rest}</style>\n{source[block.end():]}"


def _compact(declaration: str) -> str:
    name, _, value = declaration.partition(":")
    return f"{name.strip()}:{value.strip()}"


_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
_PLACEHOLDER = re.compile(r"<!--JinjaStmt(\d+)End-->|JinjaExpr(\d+)End")
_LEFTOVER = re.compile(r"Jinja(Stmt|Expr)\d+End")


def inline_css(source: str) -> str:
    """Run premailer over a Jinja HTML template without letting lxml see (and mangle) the tags.

    Statements become HTML comments, which lxml keeps in place even between table rows;
    expressions become alphanumeric words, which survive inside attributes (lxml would
    percent-encode the spaces and braces of ``href="{{ x }}"``)."""
    if _LEFTOVER.search(source):
        raise ConfigError("the HTML template must not contain words like 'JinjaExpr0End'")
    tags: list[str] = []

    def protect(match: re.Match[str]) -> str:
        tags.append(match.group(0))
        if match.group(0).startswith("{{"):
            return f"JinjaExpr{len(tags) - 1}End"
        return f"<!--JinjaStmt{len(tags) - 1}End-->"

    inlined = Premailer(**PREMAILER_OPTIONS).transform(
        _JINJA_TAG.sub(protect, source), pretty_print=False
    )
    seen: list[int] = []

    def restore(match: re.Match[str]) -> str:
        seen.append(int(match.group(1) or match.group(2)))
        return tags[seen[-1]]

    restored = _PLACEHOLDER.sub(restore, inlined)
    if seen != list(range(len(tags))) or _LEFTOVER.search(restored):
        # lxml dropped, moved or escaped a placeholder: a statement before <html> or inside
        # <title>, text where HTML allows none...
        raise ConfigError("premailer could not keep the Jinja tags of the HTML template in place")
    return restored
