"""`coachctl decide`: every decision, every exit code, the state object's shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cli, write_workflow

STATE_KEYS = {"session_id", "workflow_id", "mode", "status", "step", "progress", "stats"}
STEP_KEYS = {"index", "id", "name", "suggestion", "instructions", "level"}
STATS_KEYS = {
    "suggestions",
    "accepted",
    "rejected",
    "corrected",
    "manual",
    "skipped",
    "failed",
    "acceptance_rate",
}


def session_file(home: Path, sid: str) -> dict:
    return json.loads((home / "sessions" / f"{sid}.json").read_text())


def test_state_object_shape(cli: Cli) -> None:
    state = cli.json("coach", "hello", "--no-input")
    assert set(state) >= STATE_KEYS
    assert set(state["step"]) >= STEP_KEYS
    assert set(state["stats"]) >= STATS_KEYS
    assert state["mode"] == "coaching" and state["status"] == "active"
    assert state["step"]["suggestion"] == "echo 'hello from coachctl'"
    assert state["progress"] == {"done": 0, "total": 3}
    assert state["stats"]["acceptance_rate"] is None


@pytest.mark.parametrize(
    "decision, extra, counter, command",
    [
        ("accept", [], "accepted", "echo 'hello from coachctl'"),
        ("correct", ["--correction", "echo fixed"], "corrected", "echo fixed"),
        ("reject", ["--feedback", "not today"], "rejected", None),
        ("manual", ["--command", "echo by hand"], "manual", "echo by hand"),
        ("skip", [], "skipped", None),
    ],
)
def test_each_decision(
    cli: Cli, home: Path, decision: str, extra: list[str], counter: str, command: str | None
) -> None:
    sid = cli.start()
    result = cli("decide", sid, decision, *extra, "--format", "json")
    assert result.exit_code == 0, result.stderr
    state = json.loads(result.stdout)
    assert state["step"]["id"] == "clock"
    assert state["stats"][counter] == 1
    rec = session_file(home, sid)["decisions"][0]
    assert rec["decision"] == decision and rec["step_id"] == "greet"
    assert rec["suggestion"] == "echo {{ greeting }}"
    assert rec["command"] == command
    assert rec["decided_by"] == "tester"
    if decision in ("accept", "correct"):
        assert rec["exit_code"] == 0 and rec["outcome"] == "ok" and "duration" in rec
    if decision == "reject":
        assert rec["feedback"] == "not today"


def test_accept_runs_and_text_output_streams(cli: Cli) -> None:
    sid = cli.start()
    result = cli("decide", sid, "accept")
    assert result.exit_code == 0
    assert result.stdout.startswith("hello from coachctl\n")
    assert "step 2/3: clock" in result.stdout


def test_json_output_keeps_command_output_off_stdout(cli: Cli) -> None:
    sid = cli.start()
    result = cli("decide", sid, "accept", "--format", "json")
    json.loads(result.stdout)
    assert "hello from coachctl" in result.stderr


def test_failed_command_exits_1_and_keeps_the_step(cli: Cli, home: Path) -> None:
    sid = cli.start()
    result = cli("decide", sid, "correct", "--correction", "exit 4", "--format", "json")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == "coachctl: step 'greet' failed: exit 4"
    state = json.loads(result.stdout)
    assert state["step"]["id"] == "greet" and state["step"]["status"] == "failed"
    assert state["status"] == "active"
    retry = cli("decide", sid, "accept", "--step", "greet")
    assert retry.exit_code == 0
    recs = session_file(home, sid)["decisions"]
    assert [(r["outcome"], r["exit_code"]) for r in recs] == [("failed", 4), ("ok", 0)]


def test_timeout_is_a_failure(cli: Cli, home: Path) -> None:
    write_workflow(home, "slow", "steps:\n  - id: nap\n    run: sleep 20\n    timeout: 0.5\n")
    sid = cli.start("slow")
    result = cli("decide", sid, "accept")
    assert result.exit_code == 1
    assert "timed out" in result.stderr
    assert session_file(home, sid)["decisions"][0]["timed_out"] is True


def test_no_exec_records_without_running(cli: Cli, home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    write_workflow(home, "touchy", f"steps:\n  - id: t\n    run: touch {marker}\n")
    sid = cli.start("touchy")
    result = cli("decide", sid, "accept", "--no-exec", "--format", "json")
    assert result.exit_code == 0
    assert not marker.exists()
    rec = session_file(home, sid)["decisions"][0]
    assert rec["exit_code"] is None and rec["executed"] is False
    assert json.loads(result.stdout)["status"] == "completed"


def test_step_guard_mismatch_exits_3_and_changes_nothing(cli: Cli, home: Path) -> None:
    sid = cli.start()
    before = session_file(home, sid)
    result = cli("decide", sid, "skip", "--step", "clock")
    assert result.exit_code == 3
    assert "not 'clock'" in result.stderr
    assert session_file(home, sid) == before


def test_prefix_reference(cli: Cli) -> None:
    sid = cli.start()
    assert cli("decide", sid[:6], "skip").exit_code == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["correct"], "needs --correction"),
        (["accept", "--correction", "x"], "--correction goes with 'correct' only"),
        (["skip", "--command", "x"], "--command goes with 'manual' only"),
        (["explode"], "Invalid value"),
    ],
)
def test_bad_arguments_exit_2(cli: Cli, args: list[str], message: str) -> None:
    sid = cli.start()
    result = cli("decide", sid, *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("ref", ["nope-0000", "../../etc", "abc"])
def test_unknown_session_exits_2(cli: Cli, ref: str) -> None:
    cli.start()
    result = cli("decide", ref, "skip")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_ambiguous_prefix_exits_2(cli: Cli, home: Path) -> None:
    sid = cli.start()
    data = session_file(home, sid)
    for twin in ("zzzz1111-aaaa", "zzzz2222-bbbb"):
        data["id"] = twin
        (home / "sessions" / f"{twin}.json").write_text(json.dumps(data))
    result = cli("decide", "zzzz", "skip")
    assert result.exit_code == 2 and "ambiguous" in result.stderr
    assert cli("decide", "zzzz1", "skip").exit_code == 0


@pytest.mark.parametrize("status_cmd", ["pause", "cancel"])
def test_decisions_refused_by_status(cli: Cli, status_cmd: str) -> None:
    sid = cli.start()
    assert cli(status_cmd, sid).exit_code == 0
    result = cli("decide", sid, "skip")
    assert result.exit_code == 2
    assert ("paused" if status_cmd == "pause" else "cancelled") in result.stderr


def test_completed_session_refuses(cli: Cli) -> None:
    sid = cli.start()
    for _ in range(3):
        assert cli("decide", sid, "skip").exit_code == 0
    result = cli("decide", sid, "skip")
    assert result.exit_code == 2 and "completed" in result.stderr


def test_unreadable_session_exits_2(cli: Cli, home: Path) -> None:
    sid = cli.start()
    (home / "sessions" / f"{sid}.json").write_text("{truncated")
    result = cli("decide", sid, "skip")
    assert result.exit_code == 2
    assert "not valid JSON" in result.stderr


def test_decided_by_default_is_login_name(cli: Cli, home: Path) -> None:
    sid = cli.start()
    cli("decide", sid, "skip", env={"COACHCTL_USER": "", "LOGNAME": "carol"})
    assert session_file(home, sid)["decisions"][0]["decided_by"] == "carol"


def test_events_are_logged(cli: Cli, home: Path) -> None:
    sid = cli.start()
    cli("decide", sid, "accept")
    names = [
        json.loads(line)["event"]
        for line in (home / "sessions" / "events.jsonl").read_text().splitlines()
    ]
    assert names[:3] == ["session_started", "decision", "step_executed"]


def test_reject_feedback_reaches_the_event_log(cli: Cli, home: Path) -> None:
    sid = cli.start()
    cli("decide", sid, "reject", "--feedback", "wrong host")
    events = [
        json.loads(line) for line in (home / "sessions" / "events.jsonl").read_text().splitlines()
    ]
    decision = next(e for e in events if e["event"] == "decision")
    assert decision["feedback"] == "wrong host"
