"""The sample returns in tests/fixtures/returns, filled in for one digest."""

from __future__ import annotations

from string import Template

from paths import FIXTURES

SAMPLES = FIXTURES / "returns"


def sample(name: str, **values: str) -> bytes:
    """``tests/fixtures/returns/<name>.eml`` with $VERP, $RECIPIENT, $MESSAGE_ID, $TOKEN filled
    in, CRLF line endings, as it would arrive."""
    text = Template((SAMPLES / f"{name}.eml").read_text("utf-8")).safe_substitute(values)
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
