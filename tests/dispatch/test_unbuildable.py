"""A digest that can never be built (an address composing refuses, stored by an older
version) ends `failed` after its attempts: it neither loops nor comes back every day."""

from __future__ import annotations

from pathlib import Path

from commands import database, deliveries, people, process_env, run, write_people

from newsletter.models import Subscriber
from newsletter.store.subscribers import sync_subscribers

ODD = "josé@example.org"  # a non-ASCII local part: the message builder refuses it


def test_a_digest_that_cannot_be_built_fails_after_its_attempts_with_a_tiny_retry_cap(
        tmp_path: Path) -> None:
    env = process_env(tmp_path, NEWSLETTER_SUBSCRIBERS_DIR=str(write_people(tmp_path / "subs",
                                                                          people(2))),
                    NEWSLETTER_RETRY_BASE_SECONDS="0.05", NEWSLETTER_RETRY_CAP_SECONDS="0.1",
                    NEWSLETTER_MAX_ATTEMPTS="3")
    assert run(env, "subscribers", "list").returncode == 0
    engine = database(env)
    listed = [Subscriber(email=e, name="", topics=("neural networks",)) for e in people(2)]
    sync_subscribers(engine, [*listed, Subscriber(email=ODD, name="", topics=("neural networks",),
                                                  origin="web")])
    engine.dispose()
    result = run(env, "send", "--date", "2026-11-23", timeout=90)
    assert result.returncode == 1
    assert f"failed {ODD}: gave up after 3 attempts: could not build the digest" in result.stderr
    assert sorted(state for email, _, state in deliveries(env)) == ["failed", "sent", "sent"]
    rerun = run(env, "send", "--date", "2026-11-23", timeout=90)
    assert rerun.returncode == 0 and "Nothing to send" in rerun.stdout
