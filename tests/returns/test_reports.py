"""Reading returns: each sample says what it reports and on whom, and only what we signed or
made unguessable names anybody."""

from __future__ import annotations

import pytest
from itsdangerous import URLSafeSerializer
from samples import sample

from newsletter.compose.tokens import bounce_address, make
from newsletter.returns.reports import Unreadable, bounce_kind, read_report

SECRET = "s3cret"
VERP = bounce_address(SECRET, "bounces@newsletter.test", 42, "2026-11-23")
DIGEST_ID = "<0123456789abcdef01234567.2026-11-23@newsletter.test>"
TOKEN = make(SECRET, "unsubscribe", "SofiaLink123", "sofia-key")
VALUES = {"VERP": VERP, "RECIPIENT": "ada@reader.test", "MESSAGE_ID": DIGEST_ID,
          "TOKEN": TOKEN}


def legacy(secret: str, purpose: str, email: str) -> str:
    """A link token as the version before per-subscriber keys signed it."""
    return URLSafeSerializer(secret, salt=f"newsletter/{purpose}").dumps(email)


def read(name: str, **values: str):
    return read_report(sample(name, **{**VALUES, **values}), secret=SECRET)


def test_a_user_unknown_bounce_is_hard_and_names_the_digest_two_ways() -> None:
    report = read("dsn_hard")
    assert (report.kind, report.status) == ("hard-bounce", "5.1.1")
    assert report.verp == (42, "2026-11-23") and report.message_id == DIGEST_ID
    assert report.key == "<20261123070112.9A1B2C3D4E@mail.relay.test>"
    assert report.detail.startswith("ada@reader.test: smtp; 550 5.1.1")


def test_a_full_mailbox_given_up_on_is_soft_and_found_by_the_attached_message_id() -> None:
    report = read("dsn_soft")
    assert (report.kind, report.status, report.verp) == ("soft-bounce", "4.2.2", None)
    assert report.message_id == DIGEST_ID  # from the message/rfc822 part


def test_a_delay_warning_and_a_policy_block_count_for_nothing() -> None:
    assert (read("dsn_delayed").kind, read("dsn_delayed").status) == ("delayed", "4.4.1")
    policy = read("dsn_policy")
    assert (policy.kind, policy.status, policy.verp) == ("refused", "5.7.1", (42, "2026-11-23"))


def test_a_feedback_loop_complaint_names_the_reader_by_the_original_envelope() -> None:
    report = read("arf_abuse")
    assert (report.kind, report.verp, report.message_id) == ("complaint", (42, "2026-11-23"),
                                                             DIGEST_ID)
    assert "Feedback-Type abuse" in report.detail


def test_a_not_spam_report_is_no_complaint() -> None:
    raw = sample("arf_abuse", **VALUES).replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")
    assert read_report(raw, secret=SECRET).kind == "not-spam"


def test_a_mailto_unsubscribe_carries_the_link_token() -> None:
    report = read("mailto_unsubscribe")
    assert (report.kind, report.token) == ("unsubscribe", TOKEN)  # whose: process.locate
    replied = sample("mailto_unsubscribe", **VALUES).replace(b"Subject: unsub",
                                                            b"Subject: Re: unsub")
    assert read_report(replied, secret=SECRET).token == TOKEN
    old = legacy(SECRET, "unsubscribe", "sofia@reader.test")  # signed before the upgrade
    assert read("mailto_unsubscribe", TOKEN=old).token == old


@pytest.mark.parametrize(("name", "values", "why"), [
    ("not_a_report", {}, "neither a bounce"),
    ("mailto_unsubscribe", {"TOKEN": legacy("other", "unsubscribe", "x@reader.test")},
     "not ours"),
    ("mailto_unsubscribe", {"TOKEN": legacy(SECRET, "preferences", "x@reader.test")},
     "not ours"),
    ("mailto_unsubscribe", {"TOKEN": "garbage"}, "not ours"),
])
def test_what_is_no_report_of_ours_is_unreadable(name: str, values: dict, why: str) -> None:
    with pytest.raises(Unreadable, match=why):
        read(name, **values)


def test_a_report_without_its_machine_readable_part_is_unreadable() -> None:
    raw = sample("dsn_hard", **VALUES).replace(b"message/delivery-status", b"text/plain")
    with pytest.raises(Unreadable, match="delivery-status part"):
        read_report(raw, secret=SECRET)


def test_a_forged_verp_address_names_nobody() -> None:
    forged = VERP.replace("+42.", "+43.")
    report = read("dsn_hard", VERP=forged, MESSAGE_ID="<unknown@elsewhere.test>")
    assert report.verp is None and report.kind == "hard-bounce"


def test_a_message_without_a_message_id_gets_a_key_from_its_bytes() -> None:
    raw = b"\r\n".join(line for line in sample("dsn_hard", **VALUES).split(b"\r\n")
                       if not line.startswith(b"Message-Id:"))
    assert read_report(raw, secret=SECRET).key.startswith("sha256:")


@pytest.mark.parametrize(("action", "status", "kind"), [
    ("failed", "5.1.1", "hard-bounce"), ("failed", "5.1.10", "hard-bounce"),
    ("failed", "5.2.1", "hard-bounce"), ("failed", "5.2.2", "soft-bounce"),
    ("failed", "4.2.2", "soft-bounce"), ("failed", "4.4.7", "soft-bounce"),
    ("failed", None, "soft-bounce"), ("failed", "5.7.1", "refused"),
    ("failed", "5.4.4", "refused"), ("failed", "5.3.0", "refused"),
    ("delayed", "4.4.1", "delayed"), ("delivered", "2.0.0", "delivered"),
    ("Failed", "5.1.1", "hard-bounce"),
])
def test_only_a_permanent_failure_of_the_address_is_hard(action, status, kind) -> None:
    assert bounce_kind(action, status) == kind
