from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.utils import format_datetime, parsedate_to_datetime

import pytest

from newsletter.message import build_message
from newsletter.models import Digest, DigestItem, Paper, RenderedDigest, Section, Subscriber, SubscriberLinks

NOW = datetime(2026, 11, 23, 8, 30, tzinfo=timezone(timedelta(hours=1)))
LINKS = SubscriberLinks(
    unsubscribe_url="https://papers.example.org/unsubscribe/" + "T0k3n.abc_-" * 8,
    preferences_url="https://papers.example.org/preferences/PrEfS.xyz",
    unsubscribe_mailto="mailto:unsubscribe@example.org?subject=unsubscribe%20" + "T0k3n.abc_-" * 8,
)
RENDERED = RenderedDigest(
    subject="2 new papers on GNN — Mon 23 Nov",
    preheader="Forward Learning of Graph Neural Networks · and 1 more",
    html="<!DOCTYPE html>\n<html><body><p style=\"color:#111\">Hi Zoë,</p>"
         + "<p>" + "long line of words " * 40 + "</p></body></html>",
    text="Hi Zoë,\n\nSome papers → here…\n",
)


def digest(name: str = "Ada Lovelace", email: str = "ada@example.org") -> Digest:
    paper = Paper(id="p1", title="Forward Learning", abstract="a")
    section = Section("GNN", (DigestItem(paper, 1.0, "GNN", "matches"),))
    return Digest(Subscriber(email=email, name=name, topics=("GNN",)), "2026-11-23", (section,), NOW)


def build(d: Digest | None = None, rendered: RenderedDigest = RENDERED, **overrides):
    options = dict(from_address="papers@example.org", from_name="Trending Papers",
                   list_id="papers.example.org", now=NOW)
    options.update(overrides)
    return build_message(d or digest(), rendered, LINKS, **options)


def parse(data: bytes):
    return message_from_bytes(data, policy=policy.default)


def test_headers_and_envelope() -> None:
    out = build()
    msg = parse(out.data)
    assert msg["From"] == "Trending Papers <papers@example.org>"
    assert msg["To"] == "Ada Lovelace <ada@example.org>"
    assert msg["Subject"] == RENDERED.subject
    assert msg["Date"] == format_datetime(NOW) == "Mon, 23 Nov 2026 08:30:00 +0100"
    assert parsedate_to_datetime(msg["Date"]) == NOW
    assert msg["Message-ID"] == out.message_id
    assert re.fullmatch(r"<[^<>@\s]+@example\.org>", out.message_id)
    assert msg["List-Id"] == "Trending Papers <papers.example.org>"
    assert msg["List-Unsubscribe"] == f"<{LINKS.unsubscribe_url}>, <{LINKS.unsubscribe_mailto}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["MIME-Version"] == "1.0"
    assert (out.sender, out.recipient, out.edition) == ("papers@example.org", "ada@example.org", "2026-11-23")


def test_parts_text_first_html_last() -> None:
    msg = parse(build().data)
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert all("MIME-Version" not in p for p in parts)
    assert parts[0].get_content().replace("\r\n", "\n") == RENDERED.text
    assert parts[1].get_content().replace("\r\n", "\n") == RENDERED.html + "\n"  # one is added


def test_bytes_are_crlf_ascii_and_short_lines() -> None:
    data = build(digest(name="Zoë Ångström")).data
    assert data.isascii()  # every non-ASCII byte is encoded (RFC 2047 headers, quoted-printable)
    assert b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in data.replace(b"\r\n", b"")
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    body = data.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 78


def test_message_ids_are_unique() -> None:
    ids = {build().message_id for _ in range(200)}
    assert len(ids) == 200


@pytest.mark.parametrize("name", ["Zoë Ångström", "Łukasz Kaiser, PhD", "山田 太郎", 'Ada "the" Lovelace'])
def test_non_ascii_and_special_names_round_trip(name: str) -> None:
    subject = f"3 new papers on Физика and 深度学习 — Mon 23 Nov ({name})"
    out = build(digest(name=name), replace(RENDERED, subject=subject), from_name=f"Papers für {name}")
    msg = parse(out.data)
    assert msg["To"].addresses[0].display_name == name
    assert msg["To"].addresses[0].addr_spec == "ada@example.org"
    assert msg["From"].addresses[0].display_name == f"Papers für {name}"
    assert msg["Subject"] == subject
    assert "=?utf-8?" in out.data.decode("ascii")


def test_list_headers_are_never_encoded_words() -> None:
    out = build(from_name="Trénding Papers, Inc.")
    head = out.data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    unsubscribe = re.search(r"^List-Unsubscribe: (.*?)\r\n(?=\S)", head, re.S | re.M).group(1)
    assert "=?" not in unsubscribe and LINKS.unsubscribe_url in unsubscribe
    assert re.search(r"^List-Id: =\?utf-8\?\S+\?= <papers\.example\.org>\r$", head + "\r", re.M)
    assert parse(out.data)["List-Id"] == "Trénding Papers, Inc. <papers.example.org>"
    plain = build(from_name="Papers, Inc.")
    assert parse(plain.data)["List-Id"] == '"Papers, Inc." <papers.example.org>'


def test_subscriber_without_a_name() -> None:
    out = build(digest(name=""))
    assert b"\r\nTo: ada@example.org\r\n" in out.data


def test_idn_domain_is_punycoded() -> None:
    out = build(digest(email="zoe@bücher.example"))
    assert out.recipient == "zoe@xn--bcher-kva.example"
    assert parse(out.data)["To"].addresses[0].addr_spec == "zoe@xn--bcher-kva.example"


@pytest.mark.parametrize("evil", [
    "Eve\r\nBcc: victim@example.org",
    "Eve\nBcc: victim@example.org",
    "Eve\rBcc: victim@example.org",
    "Eve\u2028Bcc: victim@example.org",
    "Eve\x00",
])
def test_header_injection_is_refused(evil: str) -> None:
    with pytest.raises(ValueError, match="eve@example.org.*line break"):
        build(digest(name=evil, email="eve@example.org"))
    with pytest.raises(ValueError, match="papers@example.org.*line break"):
        build(from_name=evil)
    with pytest.raises(ValueError, match="eve@example.org.*line break"):
        build(digest(email="eve@example.org"), replace(RENDERED, subject=f"Hi {evil}"))


@pytest.mark.parametrize("address", ["not-an-address", "@example.org", "a b@example.org",
                                     "ü@example.org", "a@b@c\r\nBcc: x@y.z"])
def test_bad_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValueError, match="address"):
        build(digest(email=address))


def test_bad_list_id_and_naive_now_are_refused() -> None:
    with pytest.raises(ValueError, match="List-Id"):
        build(list_id="not a list id")
    with pytest.raises(ValueError, match="timezone"):
        build(now=datetime(2026, 11, 23, 7, 0))
    with pytest.raises(ValueError, match="List-Unsubscribe"):
        build_message(digest(), RENDERED, replace(LINKS, unsubscribe_url="https://x.example/a, <b>"),
                      from_address="papers@example.org", from_name="P", list_id="p.example.org", now=NOW)
