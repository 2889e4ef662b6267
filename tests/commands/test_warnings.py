"""Warnings echo file names and values too: they are escaped exactly as errors are."""

from __future__ import annotations

from pathlib import Path

import pytest

from coachctl.engine import persist
from coachctl.errors import one_line
from tests.conftest import Cli, write_workflow

HOSTILE = "evil\x1b]0;pwned\x07\x9b31m\r\nname"


@pytest.mark.parametrize("command", ["stats", "workflows"])
def test_a_warning_about_a_hostile_file_name_is_escaped(cli: Cli, home: Path, command: str) -> None:
    write_workflow(home, HOSTILE, "steps: [oops\n")
    res = cli(command)
    assert res.exit_code == 0, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("coachctl: warning:"), res.stderr
    assert lines[0] == one_line(lines[0])  # nothing left to escape
    assert "evil\\x1b]0;pwned\\x07\\x9b31m  name" in lines[0]


def test_the_warning_and_the_error_show_a_name_the_same_way(cli: Cli, home: Path) -> None:
    path = write_workflow(home, HOSTILE, "steps: [oops\n")
    error = cli("validate", str(path)).stderr.splitlines()[0]
    warning = cli("stats").stderr.splitlines()[0]
    assert one_line(str(path)) in error
    assert one_line(str(path)) in warning


def test_the_engine_warning_channel_escapes_too(capsys: pytest.CaptureFixture[str]) -> None:
    persist.warn(f"coachctl: warning: {HOSTILE}")
    err = capsys.readouterr().err
    assert err == "coachctl: warning: evil\\x1b]0;pwned\\x07\\x9b31m  name\n"


def test_one_line_escapes_c0_del_and_c1_and_keeps_text() -> None:
    assert one_line("a\tb\nc") == "a b c"
    assert one_line("\x00\x1b\x7f\x85\x9f") == "\\x00\\x1b\\x7f\\x85\\x9f"
    assert one_line("café ✓ 日本") == "café ✓ 日本"


def test_the_panel_warning_escapes_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from typing import Any

    from coachctl.commands.panel import Panel

    monkeypatch.setenv("NO_COLOR", "1")
    store: Any = None
    Panel(store, "s").warn(f"coachctl: {HOSTILE}")
    assert capsys.readouterr().err == "coachctl: evil\\x1b]0;pwned\\x07\\x9b31m  name\n"
