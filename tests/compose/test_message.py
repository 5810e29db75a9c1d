from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.parser import BytesParser
from email.utils import format_datetime, parsedate_to_datetime

import pytest

from newsletter.compose import message
from newsletter.compose.message import build_message
from newsletter.models import (
    Digest,
    DigestItem,
    Paper,
    RenderedDigest,
    Section,
    Subscriber,
    SubscriberLinks,
)

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


# -- RFC 2047 encoded words, quoted-printable, round trips ---------------------------------------

LONG_TEXTS = [
    "10 new papers on 深度学习と強化学習の理論, 大規模言語モデルのアラインメント and more — week of 23 Nov",
    "Émilie 👩‍🔬🧪🔬 " * 12 + "🇩🇪🇯🇵",  # emoji: 4-byte characters, ZWJ sequences, flags
    "Zoe\u0308 Ång\u030astro\u0308m, Nguye\u0302\u0303n Va\u0306n A\u0301nh " * 6,  # combining marks
    "Физика конденсированного состояния и машинное обучение — " * 4,
    "a" * 200 + "é",  # a long ASCII run, then one character that needs encoding
    "x" * 950,  # long ASCII: folded as encoded words rather than one 950-character line
    "Papers on =?utf-8?q?not_an_encoded_word?= — and _under_scores_",
]
ENCODED_WORD = re.compile(r"=\?utf-8\?([bq])\?([^?]*)\?=")


def header_lines(data: bytes, name: str) -> list[str]:
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    field = re.search(rf"^{name}: .*?(?=\r\n\S)", head + "\r\nX", re.S | re.M).group(0)
    return field.split("\r\n")


def decode_word(kind: str, payload: str) -> str:
    import base64
    import quopri
    raw = (base64.b64decode(payload, validate=True) if kind == "b"
           else quopri.decodestring(payload.encode("ascii"), header=True))
    return raw.decode("utf-8")  # strict: a word must not end inside a character


@pytest.mark.parametrize("text", LONG_TEXTS)
def test_long_non_ascii_subjects_and_names_round_trip(text: str) -> None:
    names = {"Subject": text, "To": text[:300], "From": text[:120], "List-Id": text[:120]}
    out = build(digest(name=names["To"]), replace(RENDERED, subject=text), from_name=names["From"])
    msg = BytesParser(policy=policy.default).parsebytes(out.data)
    assert msg["Subject"] == text
    assert msg["To"].addresses[0].addr_spec == "ada@example.org"
    assert msg["From"].addresses[0].addr_spec == "papers@example.org"
    assert msg["List-Id"].endswith(" <papers.example.org>")
    # CPython's address parser puts a space between adjacent encoded words of a display name,
    # against RFC 2047 6.2 (its own generator's long names do not round-trip either); mail
    # clients join them. So names are compared as an RFC 2047 reader decodes them, and the
    # library's reading differs from them by those spaces at most.
    for field, parsed in (("To", msg["To"].addresses[0].display_name),
                          ("From", msg["From"].addresses[0].display_name)):
        assert parsed.replace(" ", "") == names[field].replace(" ", "")
    assert [p.get_content().replace("\r\n", "\n") for p in msg.iter_parts()] == \
        [RENDERED.text, RENDERED.html + "\n"]
    for name, value in names.items():
        lines = header_lines(out.data, name)
        # ASCII names and subjects are left as they are, like before: within 998, not 78
        assert all(len(line) <= (998 if value.isascii() else 78) for line in lines), lines
        assert all(line.startswith(" ") for line in lines[1:])
        words = ENCODED_WORD.findall("\r\n".join(lines))
        assert all(len(f"=?utf-8?{k}?{p}?=") <= 75 for k, p in words)
        if words or not value.isascii():
            assert "".join(decode_word(k, p) for k, p in words) == value, name


def test_encoded_words_fuzz_round_trip_and_limits() -> None:
    import random
    rng = random.Random(5)
    alphabet = ("abcXYZ019 ,.;:_=?!*+/-\"()<>@\t" + "éÅßø—…’" + "深度学习強化" + "😀👩‍🔬🇯🇵"
                + "\u0301\u0308\u200d")
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 260)))
        first = rng.randint(24, 74)
        folded = message.encoded_words(text, first)
        lines = folded.split("\r\n")
        assert len(lines[0]) <= first and all(len(line) <= 78 for line in lines)
        assert all(line.startswith(" =?") for line in lines[1:])
        words = ENCODED_WORD.findall(folded)
        assert "".join(f" =?utf-8?{k}?{p}?=" for k, p in words).strip() == " ".join(
            line.strip() for line in lines)
        assert all(len(p) + 12 <= 75 for _, p in words)
        assert "".join(decode_word(k, p) for k, p in words) == text
        assert str(make_header(decode_header(folded))) == text


def test_ascii_subjects_take_the_fast_path_unchanged() -> None:
    subject = "3 new papers on GNN, PINNs and more - Mon 23 Nov"
    out = build(rendered=replace(RENDERED, subject=subject))
    assert f"\r\nSubject: {subject}\r\n".encode() in out.data
    assert message.encoded_words("", 60) == ""


def test_the_golden_subject_is_one_q_word_as_the_email_package_made_it() -> None:
    from email.header import Header
    subject = "4 new papers on GNN and PINNs — Mon 23 Nov"
    assert message.encoded_words(subject, 78 - len("Subject: ")) == \
        Header(subject, "utf-8", header_name="Subject").encode(linesep="\r\n") == \
        "=?utf-8?q?4_new_papers_on_GNN_and_PINNs_=E2=80=94_Mon_23_Nov?="


def test_a_long_name_puts_the_address_on_its_own_line() -> None:
    name = "山田 太郎 " * 8
    out = build(digest(name=name, email="a.rather.long.address.for.testing@subdomain.example.org"))
    lines = header_lines(out.data, "To")
    assert lines[-1] == " <a.rather.long.address.for.testing@subdomain.example.org>"
    assert all(len(line) <= 78 for line in lines)
    assert "".join(decode_word(k, p) for k, p in ENCODED_WORD.findall("".join(lines))) == name
    assert parse(out.data)["To"].addresses[0].addr_spec == \
        "a.rather.long.address.for.testing@subdomain.example.org"


@pytest.mark.parametrize("evil", [
    "深度学习 " * 20 + "\r\nBcc: victim@example.org",
    "Zoë\x85Bcc: victim@example.org",
    "Zoë\u2029Bcc: victim@example.org",
    "Zoë\tTab",
])
def test_line_breaks_deep_inside_non_ascii_text_are_refused(evil: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        build(digest(name=evil, email="eve@example.org"))
    with pytest.raises(ValueError, match="line break"):
        build(digest(email="eve@example.org"), replace(RENDERED, subject=evil))


def old_quoted_printable(text: str) -> bytes:
    """What message.py did before encoding one line at a time (whole body, one b2a_qp call)."""
    import binascii
    text = text.replace("\r\n", "\n")
    if not text.endswith("\n"):
        text += "\n"
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


def test_line_at_a_time_quoted_printable_equals_the_whole_body_at_once() -> None:
    import random
    rng = random.Random(9)
    pieces = ["word", " ", "  ", "\t", "=", ".", "..", "é", "—", "深", "😀", "=3D", "x" * 90,
              "\x00", "\x7f", "_", "?", "\r\n", "\n", "\n\n"]
    letterhead = message.Letterhead(from_address="p@example.org", from_name="P",
                                    list_id="p.example.org", now=NOW)
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 60))) for _ in range(3000)]
    for text in texts + ["", "\n", ".", ".\n", " ", "a \n", "a\t", "\n.\n", "x" * 75 + " \n"]:
        old = old_quoted_printable(text)
        assert letterhead._quoted_printable_by_line(text) == old, repr(text)
        assert message.quoted_printable(text) == old, repr(text)


def test_bodies_with_bare_cr_and_lf_become_crlf_lines() -> None:
    rendered = replace(RENDERED, text="one\rtwo\nthree\r\n.four\n.\n", html="<p>a</p>\r<p>b</p>")
    out = build(rendered=rendered)
    assert b"\n" not in out.data.replace(b"\r\n", b"") and b"\r" not in out.data.replace(b"\r\n", b"")
    text, html = (p.get_content().replace("\r\n", "\n") for p in
                  BytesParser(policy=policy.default).parsebytes(out.data).iter_parts())
    assert text == "one\ntwo\nthree\n.four\n.\n"
    assert html == "<p>a</p>\n<p>b</p>\n"


@pytest.mark.parametrize("address", ["ada@example.org", "a.b+c-d@sub-domain.example.org",
                                     "UP.per@Example.ORG", "o'neil@example.co.uk",
                                     "zoe@bücher.example", '"a b"@example.org', "x@[127.0.0.1]"])
def test_the_plain_address_fast_path_agrees_with_the_library(address: str) -> None:
    assert message._mailbox("To", "Ada", address) == message.make_address("To", "Ada", address).addr_spec
