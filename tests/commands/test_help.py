"""Every command answers --help (Click's advice for lazy groups: prove each one loads)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from coachctl.cli import COMMANDS, cli
from tests.conftest import Cli


def test_root_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.stdout
    assert name in result.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert result.exit_code == 2
    assert "No such command" in result.stderr


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert "coachctl" in result.stdout


def test_click_usage_errors_are_one_line() -> None:
    result = CliRunner().invoke(cli, ["decide"])
    assert result.exit_code == 2
    assert result.stderr == (
        "coachctl: Missing argument 'SESSION'. (see 'coachctl decide --help')\n"
    )


def test_control_characters_in_errors_are_escaped(cli: Cli) -> None:
    result = cli("run", "hello", "--var", "a\x1b[31m")
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "\\x1b[31m" in result.stderr
    assert result.stderr.count("\n") == 1
