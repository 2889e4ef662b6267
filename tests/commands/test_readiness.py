"""`readiness`: the CI gate's exit codes, overrides, explanations, and failing closed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cli, only_workflow, write_workflow

GATE = """
id: gate
coaching:
  min_decisions: 3
  strict: false
steps:
  - id: build
    run: echo build
  - id: ship
    run: echo ship
"""

CEILING = """
id: capped
coaching:
  min_decisions: 1
  strict: false
steps:
  - id: build
    run: echo build
    max_level: COACHING
"""


@pytest.fixture
def gate(home: Path) -> Path:
    return only_workflow(home, "gate", GATE)


def accept_sessions(cli: Cli, n: int, workflow: str = "gate", steps: int = 2) -> None:
    for _ in range(n):
        sid = cli.start(workflow)
        for _ in range(steps):
            r = cli("decide", sid, "accept", "--no-exec")
            assert r.exit_code == 0, r.stderr


def test_not_ready_then_ready(cli: Cli, gate: Path) -> None:
    accept_sessions(cli, 2)
    r = cli("readiness")
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert lines[0] == "NOT READY"
    assert lines[1] == "gate: not ready (level COACHING)"
    assert lines[2] == (
        "  build: rate 1.00, confidence 0.34, 2 decisions; "
        "needs 1 more accept in a row (2 of 3 decisions)"
    )
    accept_sessions(cli, 1)
    r = cli("readiness", "gate")
    assert (r.exit_code, r.stdout.splitlines()) == (0, ["READY", "gate: ready (level AUTO)"])


@pytest.mark.parametrize(("sessions", "code"), [(2, 1), (3, 0)])
def test_json(cli: Cli, gate: Path, sessions: int, code: int) -> None:
    accept_sessions(cli, sessions)
    r = cli("readiness", "--format", "json")
    assert r.exit_code == code
    out = json.loads(r.stdout)
    assert set(out) == {"ready", "workflows"}
    assert out["ready"] is (code == 0)
    stats = cli.json("stats")
    assert out["workflows"] == stats["workflows"]


@pytest.mark.parametrize(
    ("flags", "code"),
    [
        ([], 0),
        (["--min-decisions", "4"], 1),
        (["--threshold", "1.0"], 0),
        (["--strict"], 1),  # 3 of 3: confidence 0.44 < 0.85
        (["--no-strict", "--min-decisions", "0"], 0),
    ],
)
def test_flags_override_the_workflow(cli: Cli, gate: Path, flags: list[str], code: int) -> None:
    accept_sessions(cli, 3)
    assert cli("readiness", "gate", *flags).exit_code == code


def test_accepts_needed_null_for_a_ceiling(cli: Cli, gate: Path) -> None:
    write_workflow(gate, "capped", CEILING)
    accept_sessions(cli, 2, "capped", steps=1)
    r = cli("readiness", "capped", "--format", "json")
    assert r.exit_code == 1
    [step] = json.loads(r.stdout)["workflows"][0]["steps"]
    assert (step["accepts_needed"], step["level"]) == (None, "COACHING")
    text = cli("readiness", "capped").stdout.splitlines()
    assert text[2] == (
        "  build: rate 1.00, confidence 0.34, 2 decisions; "
        "cannot become ready: capped at COACHING by max_level"
    )


def test_min_decisions_beyond_window_cannot_become_ready(cli: Cli, gate: Path) -> None:
    r = cli("readiness", "gate", "--min-decisions", "60")
    assert r.exit_code == 1
    assert "cannot become ready: min_decisions 60 is more than the window 50" in r.stdout


def test_fails_closed_on_an_unreadable_session_of_a_named_workflow(cli: Cli, gate: Path) -> None:
    accept_sessions(cli, 3)
    bad = gate / "sessions" / "zzzz-bad.json"
    bad.write_text("{torn")
    r = cli("readiness", "gate")
    assert r.exit_code == 2
    assert r.stderr.splitlines() == [
        f"coachctl: cannot decide readiness: unreadable session file {bad}: not valid JSON"
    ]


def test_unreadable_session_of_another_workflow_does_not_block(cli: Cli, gate: Path) -> None:
    accept_sessions(cli, 3)
    (gate / "sessions" / "zzzz-bad.json").write_text(
        json.dumps({"id": "zzzz-bad", "workflow_id": "other", "schema_version": 99})
    )
    assert cli("readiness", "gate").exit_code == 0
    assert cli("readiness").exit_code == 0
    (gate / "sessions" / "zzzz-bad.json").write_text(
        json.dumps({"id": "zzzz-bad", "workflow_id": "gate", "schema_version": 99})
    )
    assert cli("readiness", "gate").exit_code == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--threshold", "2"],
            "coachctl: invalid --threshold: 2 (expected a number between 0 and 1)",
        ),
        (
            ["--threshold", "x"],
            "coachctl: invalid --threshold: x (expected a number between 0 and 1)",
        ),
        (
            ["--min-decisions", "-1"],
            "coachctl: invalid --min-decisions: -1 (expected an integer from 0 to 10000)",
        ),
        (
            ["--min-decisions", "1.5"],
            "coachctl: invalid --min-decisions: 1.5 (expected an integer from 0 to 10000)",
        ),
        (
            ["--min-decisions", "9223372036854775808"],
            "coachctl: invalid --min-decisions: 9223372036854775808 (expected an integer from 0 "
            "to 10000)",
        ),
        (["nope"], "coachctl: unknown workflow: nope (no workflow file, and no session of it)"),
        (
            ["--format", "yaml"],
            "coachctl: invalid --format: yaml (expected one of text, json, table, csv)",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(cli: Cli, gate: Path, args: list[str], message: str) -> None:
    r = cli("readiness", *args)
    assert (r.exit_code, r.stderr.splitlines(), r.stdout) == (2, [message], "")


def test_no_workflows_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()  # a home that does not exist is refused (test_home.py)
    r = Cli(tmp_path / "empty")("readiness")
    assert r.exit_code == 2
    assert r.stderr.startswith("coachctl: no workflows to check in ")


def test_invalid_workflow_file_fails_closed(cli: Cli, gate: Path) -> None:
    accept_sessions(cli, 3)
    write_workflow(gate, "broken", "id: broken\nsteps: 3\n")
    r = cli("readiness")
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_table_and_csv_list_steps(cli: Cli, gate: Path, fmt: str) -> None:
    accept_sessions(cli, 1)
    r = cli("readiness", "--format", fmt)
    assert r.exit_code == 1
    assert "build" in r.stdout and "ship" in r.stdout


CHECKLIST = """
id: checklist
coaching:
  min_decisions: 2
  strict: false
steps:
  - id: backup
    run: echo backup
  - id: eyeball
    instructions: Look at the dashboard; report what you saw.
  - id: restart
    run: echo restart
    max_level: COACHING
  - id: notify
    run: echo notify
"""


def test_a_checklist_gates_on_the_steps_that_can_be_auto(cli: Cli, gate: Path) -> None:
    """A human-only step (instructions only, or a max_level ceiling) never lets the whole
    workflow pass; `--step` gates on the steps that can, and `run` (mixed) then runs those
    alone and asks a person for the rest."""
    write_workflow(gate, "checklist", CHECKLIST)
    for _ in range(2):
        sid = cli.start("checklist")
        cli("decide", sid, "accept", "--no-exec")
        cli("decide", sid, "manual", "--command", "looked")
        cli("decide", sid, "accept", "--no-exec")
        cli("decide", sid, "accept", "--no-exec")
    whole = cli("readiness", "checklist")
    assert whole.exit_code == 1
    assert "restart: rate 1.00, confidence 0.34, 2 decisions; cannot become ready: capped" in (
        whole.stdout
    )
    r = cli("readiness", "checklist", "--step", "backup", "--step", "notify")
    assert (r.exit_code, r.stdout.splitlines()) == (
        0,
        ["READY", "checklist (steps backup, notify): ready (level AUTO)"],
    )
    out = json.loads(cli("readiness", "checklist", "--step", "backup", "--format", "json").stdout)
    assert out["ready"] is True and out["steps"] == ["backup"]
    assert out["workflows"][0]["ready"] is False  # the workflow as a whole, unchanged
    r = cli("readiness", "checklist", "--step", "backup", "--step", "restart")
    assert r.exit_code == 1 and "restart:" in r.stdout and "backup:" not in r.stdout
    # the run: AUTO steps go alone, the person is asked at the human step
    state = cli.json("run", "checklist", "--no-input")
    assert state["step"]["id"] == "eyeball" and state["progress"]["done"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["checklist", "--step", "nope"],
            "coachctl: unknown step 'nope' in checklist (its steps: ",
        ),
        (["--step", "backup"], "coachctl: --step needs exactly one WORKFLOW"),
    ],
)
def test_step_gate_errors(cli: Cli, gate: Path, args: list[str], message: str) -> None:
    write_workflow(gate, "checklist", CHECKLIST)
    r = cli("readiness", *args)
    assert r.exit_code == 2 and r.stderr.startswith(message) and r.stderr.count("\n") == 1
