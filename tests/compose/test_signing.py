"""Headers for what comes back (Auto-Submitted, Reply-To, Feedback-ID, VERP) and DKIM signatures,
verified by dkimpy against the public key, as a receiving server would."""

from __future__ import annotations

import base64
import random
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from newsletter.compose.message import Returns, build_message
from newsletter.compose.signing import DkimSigner, relaxed_body, relaxed_header
from newsletter.compose.tokens import bounce_address, read_bounce_address
from newsletter.errors import ConfigError
from newsletter.models import (
    Digest,
    DigestItem,
    Paper,
    RenderedDigest,
    Section,
    Subscriber,
    SubscriberLinks,
)

NOW = datetime(2026, 11, 23, 7, tzinfo=UTC)
SECRET = "s3cret"
LINKS = SubscriberLinks(
    unsubscribe_url="https://papers.example.org/unsubscribe/T0k3n.abc",
    preferences_url="https://papers.example.org/preferences/PrEfS.xyz",
    unsubscribe_mailto="mailto:unsubscribe@example.org?subject=unsubscribe%20T0k3n.abc",
)
RENDERED = RenderedDigest(
    subject="2 new papers on GNN — Mon 23 Nov", preheader="",
    html="<!DOCTYPE html>\n<html><body><p>Hi Zoë,</p>  <p>" + "words   and\tspaces " * 40
         + "  </p></body></html>\n\n\n",
    text="Hi Zoë,\n\n   Some papers → here…   \n",
)


def digest(sub_id: int | None = 42, edition: str = "2026-11-23") -> Digest:
    paper = Paper(id="p1", title="Forward Learning", abstract="a")
    section = Section("GNN", (DigestItem(paper, 1.0, "GNN", "matches"),))
    reader = Subscriber(email="ada@example.org", name="Ada Lovelace", topics=("GNN",), id=sub_id)
    return Digest(reader, edition, (section,), NOW)


def build(returns: Returns = Returns(), d: Digest | None = None):
    return build_message(d or digest(), RENDERED, LINKS, from_address="papers@example.org",
                         from_name="Trending Papers", list_id="papers.example.org", now=NOW,
                         returns=returns)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def dns_record(key) -> bytes:
    """The TXT record an operator publishes at <selector>._domainkey.<domain>."""
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def verify(data: bytes, key) -> bool:
    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"mail2026._domainkey.example.org."
        return dns_record(key)
    return dkim.verify(data, dnsfunc=dns)


def signer(key, **overrides) -> DkimSigner:
    options = {"selector": "mail2026", "domain": "example.org", "now": NOW, **overrides}
    return DkimSigner(pem(key), **options)


def test_every_digest_says_it_is_machine_made_and_carries_the_optional_headers() -> None:
    plain = message_from_bytes(build().data, policy=policy.default)
    assert plain["Auto-Submitted"] == "auto-generated"
    assert plain["Reply-To"] is None and plain["Feedback-ID"] is None
    returns = Returns(reply_to="editors@example.org", feedback_id="papers")
    msg = message_from_bytes(build(returns).data, policy=policy.default)
    assert msg["Reply-To"] == "editors@example.org"
    assert msg["Feedback-ID"] == "2026-11-23:digest:papers"  # the edition is the campaign


def test_without_a_bounce_address_the_envelope_sender_is_the_from_address() -> None:
    assert build().sender == "papers@example.org"


def test_with_a_bounce_address_each_digest_has_its_own_envelope_sender() -> None:
    returns = Returns(bounce_address="bounces@mail.example.org", secret=SECRET)
    sender = build(returns).sender
    assert sender.startswith("bounces+42.2026-11-23.") and sender.endswith("@mail.example.org")
    assert len(sender.partition("@")[0]) <= 64  # RFC 5321's limit on a local part
    assert read_bounce_address(SECRET, sender) == (42, "2026-11-23")
    weekly = build(returns, digest(7, "2026-W48")).sender
    assert read_bounce_address(SECRET, weekly.lower()) == (7, "2026-W48")  # a lower-casing MTA
    assert build(returns, digest(None)).sender == "bounces@mail.example.org"


@pytest.mark.parametrize("address", [
    "bounces@mail.example.org",  # no token
    bounce_address("other-secret", "bounces@mail.example.org", 42, "2026-11-23"),
    bounce_address(SECRET, "b@x.org", 42, "2026-11-23").replace("+42.", "+43."),  # forged
])
def test_a_bounce_address_we_did_not_make_names_nobody(address: str) -> None:
    assert read_bounce_address(SECRET, address) is None


def test_a_signed_digest_verifies_with_dkimpy(key) -> None:
    data = build(Returns(signer=signer(key), reply_to="r@example.org", feedback_id="p")).data
    assert data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
    assert verify(data, key)
    tags = dict(part.strip().split("=", 1) for part in message_from_bytes(data)[
        "DKIM-Signature"].replace("\r\n", "").split(";"))
    signed = [name.strip() for name in tags["h"].split(":")]
    for name in ("from", "subject", "date", "message-id", "list-id", "list-unsubscribe",
                 "list-unsubscribe-post", "reply-to", "feedback-id", "auto-submitted"):
        assert name in signed
    assert signed.count("from") == 2 and signed.count("list-unsubscribe") == 2  # oversigned
    assert tags["t"] == str(int(NOW.timestamp()))


def test_tampering_with_list_unsubscribe_breaks_the_signature(key) -> None:
    data = build(Returns(signer=signer(key))).data
    assert verify(data, key)
    assert not verify(data.replace(b"/unsubscribe/T0k3n.abc>", b"/unsubscribe/EVIL.abc>", 1), key)
    added = data.replace(b"\r\nMIME-Version:", b"\r\nList-Unsubscribe: <https://evil.example>"
                                               b"\r\nMIME-Version:", 1)
    assert not verify(added, key)  # oversigned: a second List-Unsubscribe is not tolerated
    assert not verify(data.replace(b"Hi Zo", b"Hi Yo", 1), key)


def test_the_signature_survives_refolding_and_trailing_whitespace_on_the_way(key) -> None:
    data = build(Returns(signer=signer(key))).data
    refolded = data.replace(b"Subject: ", b"Subject:\t  ", 1).replace(b"\r\n\r\n", b"  \r\n\r\n", 1)
    assert verify(refolded, key)


def test_the_signature_verifies_with_another_key_published_no_more(key) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert not verify(build(Returns(signer=signer(key))).data, other)


def test_relaxed_canonicalization_follows_rfc_6376_examples() -> None:
    # RFC 6376 3.4.6, example 1, relaxed/relaxed
    assert relaxed_header(b"A: X") == b"a:X\r\n"
    assert relaxed_header(b"B : Y\t\r\n\tZ  ") == b"b:Y Z\r\n"
    assert relaxed_body(b" C \r\nD \t E\r\n\r\n\r\n") == b" C\r\nD E\r\n"
    assert relaxed_body(b"") == b"" and relaxed_body(b"\r\n\r\n") == b""


def test_relaxed_body_equals_the_rfcs_two_rules_on_random_bodies() -> None:
    def by_the_letter(body: bytes) -> bytes:
        body = re.sub(rb"[ \t]+(?=\r\n)", b"", body)  # no whitespace at line ends
        body = re.sub(rb"[ \t]+", b" ", body).rstrip(b"\r\n")  # runs as one; no empty lines
        return body + b"\r\n" if body else b""

    rng = random.Random(6376)
    for _ in range(5000):
        body = b"".join(rng.choice((b" ", b"\t", b"a", b"\r\n")) for _ in range(rng.randrange(30)))
        assert relaxed_body(body) == by_the_letter(body), body


def test_a_key_that_cannot_sign_is_a_configuration_error(tmp_path: Path, key) -> None:
    with pytest.raises(ConfigError, match="NEWSLETTER_DKIM_KEY_FILE"):
        DkimSigner.from_file(tmp_path / "missing.pem", selector="s", domain="example.org",
                             now=NOW)
    with pytest.raises(ConfigError, match="not an unencrypted PEM"):
        DkimSigner(b"garbage", selector="s", domain="example.org", now=NOW)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ConfigError, match="must be an RSA key"):
        DkimSigner(pem(ec_key), selector="s", domain="example.org", now=NOW)
    with pytest.raises(ConfigError, match="selector"):
        signer(key, selector="bad selector")


def test_build_message_rejects_an_unusable_bounce_address() -> None:
    with pytest.raises(ValueError):
        build(Returns(bounce_address="not-an-address"))
    with pytest.raises(ValueError):
        build(Returns(feedback_id="a\r\nBcc: x@evil.example"))


def test_signing_only_adds_the_header(key) -> None:
    plain = build()
    signed = build(Returns(signer=signer(key)))
    head = signed.data.partition(b"\r\n\r\n")[0]
    assert head.count(b"DKIM-Signature:") == 1
    assert all(len(line) <= 78 for line in signed.data.split(b"\r\n")[:12])
    assert len(signed.data) - len(plain.data) < 800  # the header; boundaries vary a little


def test_a_sign_up_confirmation_is_signed_and_bounces_like_a_digest(tmp_path: Path, key) -> None:
    from paths import TEMPLATES

    from newsletter.settings import Settings
    from newsletter.signup import confirmation_message
    from newsletter.web.state import page_environment

    (tmp_path / "dkim.pem").write_bytes(pem(key))
    settings = Settings(from_address="papers@example.org", dkim_key_file=tmp_path / "dkim.pem",
                        dkim_selector="mail2026", bounce_address="bounces@example.org",
                        reply_to="editors@example.org", templates_dir=TEMPLATES)
    out = confirmation_message(settings, page_environment(TEMPLATES), email="new@reader.test",
                               confirm_url="https://x.test/confirm/t", now=NOW)
    assert verify(out.data, key)
    assert out.sender == "bounces@example.org"
    assert message_from_bytes(out.data)["Reply-To"] == "editors@example.org"
