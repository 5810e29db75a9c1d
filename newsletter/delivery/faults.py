"""What to do about a failed send: pure decisions, no I/O, so every rule is tested directly.

``classify`` turns a :class:`SendError` into a verdict: retry it later, give up on this address
for this message, or leave it for a person because the server may already have it. ``backoff``
says how long to wait before the next retry. ``counts_toward_suppression`` is the suppression
policy: which failures say that the address itself cannot receive mail.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from newsletter.errors import SendError

Kind = Literal["retry", "permanent", "uncertain"]


# Where a 5xx speaks about the recipient: its RCPT, or the DATA command and the message
# after it (many servers refuse a recipient only there). "bounce": a report that arrived later.
ADDRESS_STAGES = frozenset({"rcpt", "data", "message", "bounce"})


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    reason: str  # one line for a person reading the run's report
    hard: bool = False  # counts toward suppressing the address (see counts_toward_suppression)


def counts_toward_suppression(code: int | None, stage: str) -> bool:
    """Whether a failure counts toward ``NEWSLETTER_SUPPRESS_AFTER``: only a permanent,
    address-level one, i.e. a 5xx reply to RCPT or DATA (or a hard bounce, ``stage="bounce"``).

    Never: a 4xx or a dropped connection, even when it ran out of attempts (an outage or a
    throttling relay says nothing about the address); a 5xx at the greeting, login or MAIL FROM
    (our set-up or the relay's, the same for every address); a message we could not even
    write (a full outbox disk, an address SMTP cannot carry: no reply code).

    The replies during sending count toward NEWSLETTER_SUPPRESS_AFTER (``ledger.suppress_if_due``);
    a hard bounce reported later suppresses at once (``store/returns.py``). Both are recorded on
    the delivery (``deliveries.hard_failure``), and `subscribers reactivate` forgives both.
    """
    return code is not None and 500 <= code < 600 and stage in ADDRESS_STAGES


def classify(error: SendError) -> Verdict:
    """The verdict for one failed send.

    - a 5xx reply, at any stage (or a message we could not even put on the wire, such as an
      address SMTP cannot carry): permanent for this address;
    - any 4xx reply (421, 450, 451, 452, 454, ...): retry, even after the body, because the
      server said in so many words that it did not take the message;
    - no reply at all (dropped connection, timeout, refused connection) before the body was
      sent: retry, the server cannot have the message;
    - no reply at all once the body was sent: uncertain, the server may have queued it and only
      its answer was lost; resending could deliver it twice.
    """
    code = error.code
    if error.permanent or (code is not None and 500 <= code < 600):
        where = f" at {error.stage}" if error.stage != "connect" else ""
        return Verdict("permanent", f"refused for good{where}: {_reply(error)}",
                       hard=counts_toward_suppression(code, error.stage))
    if error.answered:
        return Verdict("retry", f"the server asked to try again later: {_reply(error)}")
    if error.stage == "message":
        return Verdict("uncertain", "no reply after the message was sent: the server may have "
                                    f"accepted it ({error.reply})")
    return Verdict("retry", f"no reply at {error.stage}, nothing was delivered: {error.reply}")


def _reply(error: SendError) -> str:
    if error.code is not None and not error.reply.startswith(str(error.code)):
        return f"{error.code} {error.reply}"
    return error.reply


def backoff(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait after the ``attempt``-th failed try (1-based), with full jitter:

        delay = uniform(0, min(cap, base * 2 ** (attempt - 1)))

    The ceiling doubles with each attempt up to ``cap``; drawing uniformly below it spreads the
    retries of many messages that failed together (one throttling episode) over the whole
    window instead of sending them back in one burst. Pure given ``rng``.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, not {attempt}")
    if base < 0 or cap < 0:
        raise ValueError(f"base and cap must not be negative (base={base}, cap={cap})")
    # past 2**64 every ceiling is far above any sensible cap; the clamp avoids float overflow
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 64))
    return rng.uniform(0.0, ceiling)
