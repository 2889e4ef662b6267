"""`run` and `coach` without a terminal: create, run what may run, print how to decide."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cli, write_workflow


def test_coach_no_input_prints_state_and_how_to_decide(cli: Cli, home: Path) -> None:
    result = cli("coach", "hello", "--no-input")
    assert result.exit_code == 0, result.stderr
    sid = next((home / "sessions").glob("*.json")).stem
    out = result.stdout
    assert f"session {sid}" in out
    assert "step 1/3: greet" in out
    assert "suggestion:   echo 'hello from coachctl'" in out
    assert f"coachctl decide {sid} accept --step greet" in out


def test_without_a_terminal_never_waits(cli: Cli) -> None:
    # CliRunner's stdin is not a tty: no --no-input needed, and no key is read.
    result = cli("coach", "hello", input="")
    assert result.exit_code == 0
    assert "coachctl decide" in result.stdout


def test_workflow_by_path(cli: Cli, home: Path) -> None:
    state = cli.json("coach", str(home / "workflows" / "hello.yaml"), "--no-input")
    assert state["workflow_id"] == "hello"


def test_variables_are_filled_and_quoted(cli: Cli) -> None:
    state = cli.json("coach", "hello", "--var", "greeting=hi; touch PWNED")
    assert state["step"]["suggestion"] == "echo 'hi; touch PWNED'"


def test_snapshot_survives_workflow_edits(cli: Cli, home: Path) -> None:
    sid = cli.start()
    wf = home / "workflows" / "hello.yaml"
    wf.write_text(wf.read_text().replace("run: date -u", "run: echo changed"))
    state = json.loads(cli("decide", sid, "skip", "--format", "json").stdout)
    assert state["step"]["suggestion"] == "date -u"


def test_observation_mode_asks_for_reports(cli: Cli, home: Path) -> None:
    result = cli("run", "incident-triage", "--mode", "observation", "--no-input")
    assert result.exit_code == 0
    assert "manual --command" in result.stdout
    sid = next((home / "sessions").glob("*.json")).stem
    refused = cli("decide", sid, "accept")
    assert refused.exit_code == 2 and "observation mode" in refused.stderr
    ok = cli("decide", sid, "manual", "--command", "uptime")
    assert ok.exit_code == 0


def test_manual_step_without_suggestion(cli: Cli, home: Path) -> None:
    sid = cli.start("rotate-certs", "--var", "env=staging")
    for _ in range(2):
        assert cli("decide", sid, "skip").exit_code == 0
    state = json.loads(cli("show", sid, "--format", "json").stdout)
    assert state["step"]["id"] == "verify"
    assert state["step"]["suggestion"] is None
    assert state["step"]["instructions"].startswith("Open https://example.com")
    assert state["step"]["level"] == "OBSERVATION"
    refused = cli("decide", sid, "accept")
    assert refused.exit_code == 2 and "no suggestion" in refused.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope"], "unknown workflow: nope"),
        (["../../etc/passwd"], "unknown workflow"),
        (["rotate-certs"], "missing required variable: env"),
        (["hello", "--var", "nokey"], "expected KEY=VALUE"),
        (["hello", "--var", "typo=1"], "unknown variable: typo"),
        (["hello", "--mode", "turbo"], "Invalid value"),
        (["hello", "--start-at", "nostep"], "unknown step"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    cli: Cli, home: Path, args: list[str], message: str
) -> None:
    result = cli("run", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert not (home / "sessions").exists() or not list((home / "sessions").glob("*.json"))


def test_invalid_workflow_reports_path_and_line(cli: Cli, home: Path) -> None:
    path = write_workflow(home, "broken", "steps:\n  - id: a\n    run: echo\n    colour: red\n")
    result = cli("coach", "broken")
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert line.startswith(f"{path}:4:"), line
    assert "colour" in line


def test_start_at(cli: Cli) -> None:
    state = cli.json("run", "hello", "--start-at", "look", "--mode", "coaching")
    assert state["step"]["id"] == "look" and state["progress"]["done"] == 2


def test_observation_reports_tally_in_the_session_but_not_in_trust(cli: Cli, home: Path) -> None:
    sid = cli.json("run", "incident-triage", "--mode", "observation")["session_id"]
    state = json.loads(
        cli("decide", sid, "manual", "--command", "uptime", "--format", "json").stdout
    )
    assert state["stats"]["manual"] == 1
    stats = cli.json("stats", "incident-triage", "--by", "step")
    uptime = next(s for s in stats["workflows"][0]["steps"] if s["step_id"] == "uptime")
    assert uptime["manual"] == 0 and uptime["suggestions"] == 0
