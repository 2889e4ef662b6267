"""`pause`, `resume` and `cancel` from scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cli


def test_pause_then_resume_returns_to_the_same_step(cli: Cli, home: Path) -> None:
    sid = cli.start()
    cli("decide", sid, "skip")
    paused = json.loads(cli("pause", sid, "--reason", "lunch", "--format", "json").stdout)
    assert paused["status"] == "paused" and paused["pause_reason"] == "lunch"
    text = cli("show", sid).stdout
    assert f"coachctl resume {sid}" in text
    resumed = cli("resume", sid, "--no-input", "--format", "json")
    assert resumed.exit_code == 0
    state = json.loads(resumed.stdout)
    assert state["status"] == "active" and state["step"]["id"] == "clock"
    events = [
        json.loads(line)["event"]
        for line in (home / "sessions" / "events.jsonl").read_text().splitlines()
    ]
    assert "session_paused" in events and "session_resumed" in events


def test_resume_without_terminal_prints_how_to_decide(cli: Cli) -> None:
    sid = cli.start()
    cli("pause", sid)
    result = cli("resume", sid)
    assert result.exit_code == 0
    assert f"coachctl decide {sid} accept --step greet" in result.stdout


def test_cancel_is_final(cli: Cli) -> None:
    sid = cli.start()
    state = json.loads(cli("cancel", sid, "--format", "json").stdout)
    assert state["status"] == "cancelled" and state["step"] is None
    for cmd in ("pause", "resume", "cancel"):
        result = cli(cmd, sid)
        assert result.exit_code == 2, cmd
        assert "cancelled" in result.stderr


def test_pause_twice_is_refused(cli: Cli) -> None:
    sid = cli.start()
    cli("pause", sid)
    result = cli("pause", sid)
    assert result.exit_code == 2 and "paused" in result.stderr


@pytest.mark.parametrize("cmd", ["pause", "resume", "cancel"])
def test_unknown_session(cli: Cli, cmd: str) -> None:
    result = cli(cmd, "nothere")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"coachctl: unknown session: nothere in file store {cli.home / 'sessions'}"
    )


def test_lock_timeout_is_a_conflict(cli: Cli, home: Path) -> None:
    from coachctl.engine.stores import file_store

    sid = cli.start()
    with file_store(home).transaction(sid):
        result = cli("--lock-timeout", "0.2", "pause", sid)
    assert result.exit_code == 3
    assert "locked" in result.stderr
