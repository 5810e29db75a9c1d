"""The commands added for faults explain themselves with --help, as every command does."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from newsletter.cli import app


@pytest.mark.parametrize("command", [
    ["deliveries"], ["deliveries", "resolve"], ["subscribers", "reactivate"],
    ["subscribers", "forget"]])
def test_every_new_command_explains_itself_with_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output) > 300


def test_resolve_needs_a_verdict() -> None:
    result = CliRunner().invoke(app, ["deliveries", "resolve", "1"])
    assert result.exit_code == 2
    assert "--sent or --requeue" in result.output
