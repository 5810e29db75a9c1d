"""The preflight rules, one by one: what is refused, what is only a warning, which setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from paths import TEMPLATES

from newsletter.errors import ConfigError
from newsletter.preflight import preflight, require_ready, reserved_domain, unreachable_host
from newsletter.settings import Settings

READY = {"base_url": "https://papers.lab.test", "from_address": "papers@lab.test",
         "secret_key": "a-long-random-secret-key", "smtp_host": "relay.lab.test",
         "returns_maildir": Path("returns"), "templates_dir": TEMPLATES}


def findings(**overrides: object) -> dict[str, str]:
    """{setting: level} for READY with ``overrides``."""
    settings = Settings(**{**READY, **overrides})  # type: ignore[arg-type]
    return {f.setting: f.level for f in preflight(settings)}


def test_ready_settings_have_only_the_warning_about_dkim() -> None:
    assert findings() == {"NEWSLETTER_DKIM_KEY_FILE": "warn"}
    assert require_ready(Settings(**READY))  # returns the warnings, raises nothing


@pytest.mark.parametrize("url", [
    "http://localhost:8000", "http://papers.lab.test", "https://localhost", "https://127.0.0.1",
    "https://[::1]:8443", "https://10.0.0.5", "https://192.168.1.20", "https://papers.example.org",
    "https://dev.localhost", "https://printer.local",
])
def test_a_base_url_readers_cannot_open_over_https_is_refused(url: str) -> None:
    assert findings(base_url=url)["NEWSLETTER_BASE_URL"] == "refuse"


@pytest.mark.parametrize(("setting", "value"), [
    ("from_address", "papers@example.org"), ("from_address", "papers@mail.example.com"),
    ("list_id", "papers.example.net"), ("unsubscribe_mailto", "u@example.org"),
    ("reply_to", "r@x.example"), ("bounce_address", "b@a.invalid"),
])
def test_an_address_or_list_id_at_a_reserved_domain_is_refused(setting: str, value: str) -> None:
    assert findings(**{setting: value})[f"NEWSLETTER_{setting.upper()}"] == "refuse"


def test_reserved_names_are_those_of_rfc_2606_and_6761_only() -> None:
    assert reserved_domain("example.org") and reserved_domain("a.b.example")
    assert not reserved_domain("examples.org") and not reserved_domain("lab.test")
    assert unreachable_host("LOCALHOST") and not unreachable_host("8.8.8.8")


def test_no_secret_key_or_broken_templates_are_refused(tmp_path: Path) -> None:
    assert findings(secret_key=None)["NEWSLETTER_SECRET_KEY"] == "refuse"
    assert findings(templates_dir=tmp_path / "none")["NEWSLETTER_TEMPLATES_DIR"] == "refuse"
    broken = tmp_path / "templates"
    broken.mkdir()
    for source in TEMPLATES.iterdir():
        if source.is_file():
            (broken / source.name).write_text(source.read_text("utf-8"), "utf-8")
    (broken / "_paper.html").write_text("{% if %}", "utf-8")  # a syntax error
    assert findings(templates_dir=broken)["NEWSLETTER_TEMPLATES_DIR"] == "refuse"


def test_require_ready_names_every_refusal_in_one_error() -> None:
    with pytest.raises(ConfigError) as caught:
        require_ready(Settings(**{**READY, "base_url": "http://localhost:8000",
                                  "from_address": "papers@example.org"}))
    assert "NEWSLETTER_BASE_URL" in str(caught.value)
    assert "NEWSLETTER_FROM_ADDRESS" in str(caught.value)


def test_a_relay_without_tls_is_a_warning_unless_it_is_on_this_machine() -> None:
    assert findings(smtp_security="none")["NEWSLETTER_SMTP_SECURITY"] == "warn"
    assert "NEWSLETTER_SMTP_SECURITY" not in findings(smtp_security="none",
                                                      smtp_host="127.0.0.1")
    assert findings(smtp_validate_certs=False)["NEWSLETTER_SMTP_VALIDATE_CERTS"] == "warn"


@pytest.mark.parametrize(("setting", "value"), [
    ("reply_to", "not an address"), ("bounce_address", "bounces@"),
    ("feedback_id", "a\nBcc: x"), ("feedback_id", "two words"),
])
def test_an_address_or_header_value_that_cannot_be_used_is_refused(setting: str,
                                                                   value: str) -> None:
    assert findings(**{setting: value})[f"NEWSLETTER_{setting.upper()}"] == "refuse"


def test_no_mailbox_of_returns_is_a_warning() -> None:
    assert findings(returns_maildir=None)["NEWSLETTER_RETURNS_IMAP_HOST"] == "warn"


def test_dkim_a_key_that_cannot_sign_is_refused_a_misaligned_domain_warned(
        tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "dkim.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    signed = {"dkim_key_file": pem, "dkim_selector": "mail2026"}
    assert findings(**signed) == {}
    assert findings(**signed, dkim_domain="lab.test") == {}  # the From domain itself
    assert findings(**signed, dkim_domain="other.test")["NEWSLETTER_DKIM_DOMAIN"] == "warn"
    assert findings(dkim_key_file=pem)["NEWSLETTER_DKIM_KEY_FILE"] == "refuse"  # no selector
    assert findings(dkim_key_file=tmp_path / "gone.pem",
                    dkim_selector="s")["NEWSLETTER_DKIM_KEY_FILE"] == "refuse"
