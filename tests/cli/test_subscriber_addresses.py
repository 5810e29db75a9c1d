"""`subscribers check` refuses what composing would refuse later, with the file and line."""

from __future__ import annotations

from pathlib import Path

from commands import process_env, run


def test_a_non_ascii_local_part_is_refused_by_check_and_never_queued(tmp_path: Path) -> None:
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "list.toml").write_text(
        '[[subscriber]]\nemail = "ada@example.org"\ntopics = ["GNN"]\n\n'
        '[[subscriber]]\nemail = "josé@example.org"\ntopics = ["GNN"]\n')
    env = process_env(tmp_path, NEWSLETTER_SUBSCRIBERS_DIR=str(folder))
    check = run(env, "subscribers", "check")
    assert check.returncode == 1
    assert "list.toml:5: email: invalid address 'josé@example.org'" in check.stderr
    assert "1 valid subscribers" in check.stdout
    sent = run(env, "send")
    assert sent.returncode == 0, sent.stderr  # not "failed" every day from now on
    assert "Sent 1 digests" in " ".join(sent.stdout.split())
