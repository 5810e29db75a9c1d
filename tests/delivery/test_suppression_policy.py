"""The suppression policy: which failures say the address itself cannot receive mail."""

from __future__ import annotations

import pytest

from newsletter.delivery.faults import classify, counts_toward_suppression
from newsletter.errors import SendError


@pytest.mark.parametrize(("code", "stage", "counts"), [
    (550, "rcpt", True),  # no such mailbox
    (554, "data", True),  # refused at the DATA command
    (552, "message", True),  # refused after the body
    (550, "bounce", True),  # a hard bounce reported later
    (550, "connect", False),  # the relay refuses us, whoever the recipient
    (553, "mail", False),  # our MAIL FROM
    (451, "rcpt", False),  # come back later
    (421, "message", False),
    (None, "rcpt", False),  # dropped connection, timeout, refused connection
    (None, "message", False),
    (None, "connect", False),  # a full outbox disk, a relay that is down
])
def test_only_permanent_address_level_failures_count(code: int | None, stage: str,
                                                     counts: bool) -> None:
    assert counts_toward_suppression(code, stage) is counts


def test_a_verdict_carries_the_policy() -> None:
    assert classify(SendError("a@x", "550 5.1.1 no such user", code=550, stage="rcpt")).hard
    assert not classify(SendError("a@x", "451 later", code=451, stage="rcpt")).hard
    # an address SMTP cannot carry is permanent for this message, but says nothing of the box
    refused = classify(SendError("ü@x", "SMTPUTF8 needed", permanent=True, stage="mail"))
    assert refused.kind == "permanent" and not refused.hard
