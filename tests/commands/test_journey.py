"""The whole journey OBSERVATION → COACHING → AUTO, through the CLI only (issue 3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import Cli, write_workflow

WORKFLOW = """\
id: release
name: Ship a release
coaching:
  min_decisions: 3
  strict: false
  min_observations: 2
steps:
  - id: build
    name: Build the artefact
    run: echo building
  - id: announce
    name: Tell the team
    instructions: Post in the team channel that the release is out, then report what you ran.
"""


def readiness(cli: Cli) -> tuple[int, dict[str, Any]]:
    result = cli("readiness", "release", "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    return result.exit_code, json.loads(result.stdout)


def step(report: dict[str, Any], step_id: str) -> dict[str, Any]:
    [wf] = report["workflows"]
    return next(s for s in wf["steps"] if s["step_id"] == step_id)


def plan_command(cli: Cli, step_id: str) -> tuple[str | None, str]:
    plan = cli.json("run", "release", "--dry-run")
    s = next(s for s in plan["steps"] if s["step_id"] == step_id)
    return s["command"], s["level"]


def test_observation_to_coaching_to_auto_and_back(cli: Cli, home: Path) -> None:
    path = write_workflow(home, "release", WORKFLOW)

    # OBSERVATION: the announce step has no command; people do it and report what they ran.
    code, report = readiness(cli)
    assert code == 1
    assert step(report, "announce")["level"] == "OBSERVATION"
    observed = 0
    while plan_command(cli, "announce")[0] is None:
        assert observed < 5, "the announce step never learned its command"
        state = cli.json("run", "release", "--mode", "observation", "--no-input")
        assert (state["mode"], state["step"]["id"]) == ("observation", "build")
        sid = state["session_id"]
        for step_id, ran in (("build", "echo building"), ("announce", "echo release is out")):
            done = cli("decide", sid, "manual", "--command", ran, "--step", step_id)
            assert done.exit_code == 0, done.stderr
        observed += 1
    assert observed == 2  # min_observations
    assert plan_command(cli, "announce") == ("echo release is out", "COACHING")
    learned = cli.json("corrections", "list", "release")["corrections"]
    assert [
        (r["step_id"], r["correction"], r["times"], r["adopted"], r["source"]) for r in learned
    ] == [("announce", "echo release is out", 2, True, "observed")]
    code, report = readiness(cli)
    assert code == 1
    assert step(report, "announce")["suggestions"] == 0  # a learned command starts at zero trust

    # COACHING: every step proposes its command; people accept until the workflow is ready.
    coached = 0
    while True:
        code, report = readiness(cli)
        if code == 0:
            break
        assert coached < 20, f"never ready: {report}"
        sid = cli.start("release")
        for step_id in ("build", "announce"):
            done = cli("decide", sid, "accept", "--step", step_id)
            assert done.exit_code == 0, done.stderr
        coached += 1
    assert coached >= 3  # min_decisions accepts on each step's current suggestion
    assert report["ready"] is True
    assert {s["level"] for s in report["workflows"][0]["steps"]} == {"AUTO"}
    text = cli("readiness", "release")
    assert text.exit_code == 0

    # AUTO: the whole workflow runs without a person.
    result = cli("run", "release", "--mode", "auto", "--no-input")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("[1/2] build … ok ")
    assert lines[1].startswith("[2/2] announce … ok ")
    newest = sorted((home / "sessions").glob("*.json"))[-1]
    session = json.loads(newest.read_text())
    assert (session["mode"], session["status"]) == ("auto", "completed")
    assert [(d["step_id"], d["command"], d["decided_by"]) for d in session["decisions"]] == [
        ("build", "echo building", "auto"),
        ("announce", "echo release is out", "auto"),
    ]
    # mixed (the default) now runs it unasked too.
    mixed = cli.json("run", "release", "--no-input")
    assert (mixed["status"], mixed["step"]) == ("completed", None)

    # Editing the step's command sends it back to COACHING: trust belongs to the exact command.
    path.write_text(WORKFLOW.replace("run: echo building", "run: echo building --release"))
    code, report = readiness(cli)
    assert code == 1
    build = step(report, "build")
    assert (build["level"], build["suggestions"], build["suggestion"]) == (
        "COACHING",
        0,
        "echo building --release",
    )
    assert step(report, "announce")["level"] == "AUTO"
    refused = cli("run", "release", "--mode", "auto")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("coachctl: --mode auto refused: release is not ready: build (")
