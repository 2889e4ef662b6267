"""Every command answers --help (Click's advice for lazy groups: prove each one loads)."""

from __future__ import annotations

import shlex

import click
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


def _all_commands() -> list[tuple[str, ...]]:
    """Every command path: ("run",), ("corrections", "list"), …"""
    root = click.Context(cli)
    out: list[tuple[str, ...]] = []
    for name in COMMANDS:
        cmd = cli.get_command(root, name)
        assert cmd is not None
        out.append((name,))
        if isinstance(cmd, click.Group):
            out.extend((name, sub) for sub in cmd.list_commands(root))
    return out


def _examples(path: tuple[str, ...]) -> list[list[str]]:
    text = CliRunner().invoke(cli, [*path, "--help"]).stdout
    _, _, tail = text.partition("Examples:\n")
    lines = [ln.split("#")[0].split("|")[0].split("||")[0].strip() for ln in tail.splitlines()]
    return [shlex.split(ln)[1:] for ln in lines if ln.startswith("coachctl ")]


def _parse(cmd: click.Command, name: str, args: list[str], parent: click.Context | None) -> None:
    """Parse a command line exactly as Click would run it, down to the leaf command, without
    running anything (no callbacks): unknown options, bad choices, missing arguments raise."""
    ctx = cmd.make_context(name, args, parent=parent)
    if isinstance(cmd, click.Group):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        sub = cmd.get_command(ctx, rest[0])
        assert sub is not None, rest
        _parse(sub, rest[0], rest[1:], ctx)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_examples_that_parse(name: str) -> None:
    examples = _examples((name,))
    assert examples, f"coachctl {name} --help has no examples"
    for args in examples:
        assert args[0] == name, args
        _parse(cli, "coachctl", args, None)


@pytest.mark.parametrize("path", _all_commands(), ids=" ".join)
def test_help_is_whole_and_choices_read_alike(path: tuple[str, ...]) -> None:
    """No short help cut with "...", and every choice shows as [a|b] (Click's notation)."""
    text = CliRunner().invoke(cli, [*path, "--help"], env={"COLUMNS": "80"}).stdout
    assert "..." not in text.replace("[ARGS]...", "").replace("[WORKFLOWS]...", "").replace(
        "WORKFLOWS...", ""
    )
    root = click.Context(cli)
    cmd: click.Command | None = cli
    for part in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.get_command(root, part)
    assert cmd is not None
    for param in cmd.params:
        metavar = getattr(param, "metavar", None)
        if metavar and "|" in metavar:
            assert metavar.startswith("[") and metavar.endswith("]"), (param.name, metavar)


def test_doctor_help_mentions_correction_packs() -> None:
    text = CliRunner().invoke(cli, ["doctor", "--help"]).stdout
    assert "correction packs" in " ".join(text.split())


def test_coach_takes_dry_run_and_start_at(cli: Cli) -> None:
    r = cli("coach", "hello", "--dry-run", "--start-at", "clock")
    assert r.exit_code == 0, r.stderr
    assert "plan for hello" in r.stdout and "mode coaching" in r.stdout
    assert "1. greet [COACHING] skipped (before --start-at)" in r.stdout
    assert not (cli.home / "sessions").exists() or not list((cli.home / "sessions").glob("*.json"))
    state = cli.json("coach", "hello", "--no-input", "--start-at", "look")
    assert state["step"]["id"] == "look" and state["mode"] == "coaching"
