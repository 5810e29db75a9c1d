"""The one definition of acceptable text for what people write about themselves: a name, a topic.

Used alike by the subscriber files (``subscribers.py``), the web forms and sign-up (``signup.py``,
``web/``), the store when it reads a row an older version wrote (``repair``), and the header
builder (``compose/message.py``), so that what one of them accepts, none of the others refuses.

A character of Unicode category Cc (controls: tab, NUL, BEL, ...), Cf (invisible formatting:
zero-width space, bidi overrides, soft hyphen, BOM), Zl or Zp (line and paragraph separators),
or a lone surrogate (Cs, which cannot be encoded), never reaches a page, a file or a header:

- whitespace of any kind (tab, no-break space, ...) becomes one space, runs collapsed, ends trimmed;
- line breaks (LF, CR, VT, FF, NEL, U+2028, U+2029, ...) too where the text may span lines (a
  topic typed over two lines), and are refused in a one-line value (a name: a line break there
  is how a header gets injected);
- Cf characters are dropped (they are invisible, and bidi overrides can reorder what a reader
  sees), except the zero-width joiner and non-joiner, which scripts and emoji need;
- any other control character is refused, with its code point named.
"""

from __future__ import annotations

import unicodedata

MAX_NAME_CHARS = 100
MAX_TOPIC_CHARS = 80
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
# The two format characters that writing needs: zero-width non-joiner and joiner (Persian and
# Indic names, emoji sequences such as 👩‍🔬). Harmless in a header; every other Cf is not kept.
JOINERS = frozenset("\u200c\u200d")
LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


class TextError(ValueError):
    """What is wrong with a value, in words for the person who typed it."""


def unsafe(value: str) -> str | None:
    """The first character of ``value`` that no name, topic or header may hold, or None."""
    if value.isprintable():  # C speed; False also for harmless characters (NBSP, private use)
        return None
    for char in value:
        if unicodedata.category(char) in REFUSED_CATEGORIES and char not in JOINERS:
            return char
    return None


def describe(char: str) -> str:
    """``U+0007`` and, when Unicode has one, the character's name."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


def clean_line(value: str, *, max_chars: int, multiline: bool = False) -> str:
    """``value`` as stored: NFC, whitespace collapsed, format characters dropped.

    TextError when a line break is left in a one-line value, a control character anywhere, or
    more than ``max_chars`` characters remain.
    """
    if not multiline and any(char in LINE_BREAKS for char in value):
        raise TextError("must be a single line")
    text = _normalize(value)
    if (char := unsafe(text)) is not None:
        raise TextError(f"contains the control character {describe(char)}: remove it")
    if len(text) > max_chars:
        raise TextError(f"must be at most {max_chars} characters")
    return text


def repair(value: str, max_chars: int) -> str:
    """What ``clean_line`` would make of a stored value, never refusing: a value an older
    version accepted is shown and sent with its bad characters as spaces, not turned away."""
    if value.isprintable() and value == value.strip() and "  " not in value:
        return value[:max_chars]
    text = "".join(" " if unicodedata.category(char) in REFUSED_CATEGORIES
                   and char not in JOINERS else char for char in _normalize(value))
    return " ".join(text.split())[:max_chars]


def _normalize(value: str) -> str:
    if value.isprintable():
        text = value
    else:
        text = "".join(char for char in value if char in JOINERS
                       or unicodedata.category(char) not in ("Cf", "Cs"))
    return " ".join(unicodedata.normalize("NFC", text).split())  # every Unicode space and line break, runs collapsed
