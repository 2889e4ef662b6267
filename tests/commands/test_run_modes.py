"""`run` modes: auto (refused / forced / ceilings / failure), mixed, --dry-run, --start-at."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import Cli, write_workflow

# b fails (printing "boom") once a file named FAIL exists in the working folder.
WF = """\
id: ci
variables:
  target: all
coaching:
  min_decisions: 2
  strict: false
steps:
  - id: a
    run: echo building {{ target }}
  - id: b
    run: sh -c 'if [ -e FAIL ]; then echo boom; exit 3; fi'
  - id: c
    run: touch ran-c
"""

PROGRESS = re.compile(r"^\[(\d)/(\d)\] (\w+) … (ok|FAILED \(exit \d+\)) \d+\.\ds$")


@pytest.fixture
def wf(home: Path) -> Path:
    return write_workflow(home, "ci", WF)


def coach(cli: Cli, decisions: dict[str, str], times: int = 2) -> None:
    """`times` coaching sessions deciding each step as given (accept by default)."""
    for _ in range(times):
        sid = cli.start("ci")
        for step in ("a", "b", "c"):
            result = cli("decide", sid, decisions.get(step, "accept"), "--step", step)
            assert result.exit_code == 0, result.stderr


def sessions(home: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted((home / "sessions").glob("*.json"))]


def progress_lines(text: str) -> list[tuple[str, str, str, str]]:
    return [m.groups() for m in map(PROGRESS.match, text.splitlines()) if m]  # type: ignore[misc]


# -- auto ----------------------------------------------------------------------------------


def test_auto_refuses_a_workflow_that_is_not_ready(cli: Cli, home: Path, wf: Path) -> None:
    coach(cli, {"b": "reject"})
    result = cli("run", "ci", "--mode", "auto", "--no-input")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "coachctl: --mode auto refused: ci is not ready: b (rate 0.00 < 0.85) "
        "(--force runs steps that are merely not ready yet)\n"
    )
    assert len(sessions(home)) == 2  # nothing started


def test_auto_names_every_blocking_step_and_why(cli: Cli, wf: Path) -> None:
    result = cli("run", "ci", "--mode", "auto")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "coachctl: --mode auto refused: ci is not ready: a (0 of 2 decisions); "
        "b (0 of 2 decisions); c (0 of 2 decisions)"
    )


def test_auto_runs_a_ready_workflow_unasked(cli: Cli, home: Path, wf: Path) -> None:
    coach(cli, {})
    result = cli("run", "ci", "--mode", "auto", "--no-input")
    assert result.exit_code == 0, result.stderr
    assert progress_lines(result.stdout) == [
        ("1", "3", "a", "ok"),
        ("2", "3", "b", "ok"),
        ("3", "3", "c", "ok"),
    ]
    assert "building" not in result.stdout  # a step's output is kept in the session, not shown
    last = sessions(home)[-1]
    assert (last["mode"], last["status"]) == ("auto", "completed")
    assert {d["decided_by"] for d in last["decisions"]} == {"auto"}  # type: ignore[union-attr]


def test_auto_json_keeps_stdout_for_the_state(cli: Cli, wf: Path) -> None:
    coach(cli, {})
    result = cli("run", "ci", "--mode", "auto", "--format", "json")
    assert result.exit_code == 0
    state = json.loads(result.stdout)
    assert (state["status"], state["step"], state["progress"]) == (
        "completed",
        None,
        {"done": 3, "total": 3},
    )
    assert [g[2] for g in progress_lines(result.stderr)] == ["a", "b", "c"]


def test_force_runs_a_workflow_that_is_not_ready(cli: Cli, home: Path, wf: Path) -> None:
    result = cli("run", "ci", "--mode", "auto", "--force", "--no-input")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "coachctl: --force: running steps that are not ready: a, b, c\n"
    assert len(progress_lines(result.stdout)) == 3
    assert sessions(home)[-1]["status"] == "completed"


def test_force_never_beats_a_max_level_ceiling(cli: Cli, home: Path) -> None:
    write_workflow(home, "capped", WF.replace("id: ci", "id: capped") + "    max_level: COACHING\n")
    for _ in range(3):
        sid = cli.start("capped")
        for step in ("a", "b", "c"):
            assert cli("decide", sid, "accept", "--step", step).exit_code == 0
    for extra in ([], ["--force"]):
        result = cli("run", "capped", "--mode", "auto", *extra)
        assert result.exit_code == 1
        assert result.stderr == (
            "coachctl: --mode auto refused: capped is not ready: "
            "c (capped at COACHING by max_level; --force cannot lift it)\n"
        )
    assert len(sessions(home)) == 3


def test_a_step_with_nothing_to_run_blocks_auto_even_forced(cli: Cli, home: Path) -> None:
    result = cli("run", "incident-triage", "--mode", "auto", "--force")
    assert result.exit_code == 1
    assert "notify (no command to run yet: a person does it)" in result.stderr
    assert not (home / "sessions").exists()


def test_auto_stops_at_the_first_failure(cli: Cli, home: Path, wf: Path, tmp_path: Path) -> None:
    coach(cli, {})
    (tmp_path / "cwd" / "ran-c").unlink()
    (tmp_path / "cwd" / "FAIL").write_text("")
    result = cli("run", "ci", "--mode", "auto", "--no-input")
    assert result.exit_code == 1
    assert progress_lines(result.stdout) == [
        ("1", "3", "a", "ok"),
        ("2", "3", "b", "FAILED (exit 3)"),
    ]
    assert "    | boom" in result.stdout.splitlines()
    sid = sessions(home)[-1]["id"]
    assert result.stderr == f"coachctl: step 'b' failed (exit 3): session {sid} failed\n"
    last = sessions(home)[-1]
    assert (last["status"], last["cursor"]) == ("failed", 1)
    assert not (tmp_path / "cwd" / "ran-c").exists()
    # Resuming never retries the failed step by itself: a person decides it.
    resumed = cli("resume", str(sid), "--no-input")
    assert resumed.exit_code == 0, resumed.stderr
    assert "the last attempt failed" in resumed.stdout
    assert progress_lines(resumed.stdout) == []
    assert len(sessions(home)[-1]["decisions"]) == 2  # type: ignore[arg-type]


# -- mixed ---------------------------------------------------------------------------------


def test_mixed_runs_auto_steps_and_stops_at_a_coaching_step(cli: Cli, home: Path, wf: Path) -> None:
    coach(cli, {"b": "reject", "c": "skip"})  # a is ready; b is not; c has no decisions
    result = cli("run", "ci", "--no-input")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert PROGRESS.match(lines[0]) and lines[0].startswith("[1/3] a … ok ")
    sid = sessions(home)[-1]["id"]
    assert lines[1] == f"session {sid}  workflow ci  mode mixed  status active"
    assert lines[2] == "step 2/3: b — b  [COACHING]"
    assert f"  accept:  coachctl decide {sid} accept --step b" in lines
    state = cli.json("show", str(sid))
    assert (state["status"], state["step"]["id"]) == ("active", "b")


def test_mixed_failure_keeps_the_session_active(
    cli: Cli, home: Path, wf: Path, tmp_path: Path
) -> None:
    coach(cli, {})
    (tmp_path / "cwd" / "FAIL").write_text("")
    result = cli("run", "ci", "--no-input")
    assert result.exit_code == 1
    assert progress_lines(result.stdout)[-1] == ("2", "3", "b", "FAILED (exit 3)")
    last = sessions(home)[-1]
    assert (last["status"], last["cursor"]) == ("active", 1)
    assert result.stderr.startswith("coachctl: step 'b' failed (exit 3)\n")


def test_mixed_with_nothing_ready_asks_at_the_first_step(cli: Cli, wf: Path) -> None:
    result = cli("run", "ci", "--no-input")
    assert result.exit_code == 0
    assert progress_lines(result.stdout) == []
    assert "step 1/3: a — a  [COACHING]" in result.stdout


def test_force_goes_with_auto_only(cli: Cli, home: Path, wf: Path) -> None:
    result = cli("run", "ci", "--force")
    assert (result.exit_code, result.stderr) == (
        2,
        "coachctl: --force goes with --mode auto only\n",
    )
    assert not (home / "sessions").exists()


# -- dry run -------------------------------------------------------------------------------


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and ".index" not in p.parts
        and ".index" not in p.name
        and p.suffix != ".lock"
    }  # the derived index is a cache the index refreshes; every other byte must stay


def test_dry_run_in_a_new_home_creates_nothing(cli: Cli, home: Path, wf: Path) -> None:
    result = cli("run", "ci", "--dry-run", "--var", "target=x; rm -rf /")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "plan for ci (ci), mode mixed — nothing will run",
        "  1. a [COACHING] asks a person",
        "       $ echo building 'x; rm -rf /'",
        "  2. b [COACHING] asks a person",
        "       $ sh -c 'if [ -e FAIL ]; then echo boom; exit 3; fi'",
        "  3. c [COACHING] asks a person",
        "       $ touch ran-c",
    ]
    assert not (home / "sessions").exists()


def test_dry_run_writes_nothing_in_a_used_home(
    cli: Cli, home: Path, wf: Path, tmp_path: Path
) -> None:
    coach(cli, {"b": "reject"})
    (tmp_path / "cwd" / "ran-c").unlink()
    before = _tree(home / "sessions")
    names_before = sorted(p.name for p in (home / "sessions").rglob("*"))
    for mode in ("mixed", "auto", "coaching", "observation"):
        result = cli(
            "run", "ci", "--dry-run", "--mode", mode, "--force" if mode == "auto" else "--no-input"
        )
        assert result.exit_code == 0, (mode, result.stderr)
    assert _tree(home / "sessions") == before
    assert sorted(p.name for p in (home / "sessions").rglob("*")) == names_before
    assert not (tmp_path / "cwd" / "ran-c").exists()


def test_dry_run_json_shows_levels_and_commands(cli: Cli, wf: Path) -> None:
    coach(cli, {"b": "reject", "c": "skip"})
    plan = cli.json("run", "ci", "--dry-run", "--start-at", "b")
    assert (plan["workflow_id"], plan["mode"], plan["dry_run"], plan["start_at"]) == (
        "ci",
        "mixed",
        True,
        "b",
    )
    assert [(s["step_id"], s["level"], s["runs"]) for s in plan["steps"]] == [
        ("a", "AUTO", "skipped (before --start-at)"),
        ("b", "COACHING", "asks a person"),
        ("c", "COACHING", "asks a person"),
    ]
    assert plan["steps"][0]["command"] == "echo building all"


def test_dry_run_of_a_refused_auto_prints_the_plan_then_refuses(
    cli: Cli, home: Path, wf: Path
) -> None:
    result = cli("run", "ci", "--dry-run", "--mode", "auto")
    assert result.exit_code == 1
    assert result.stdout.startswith(
        "plan for ci (ci), mode auto — nothing will run\n  1. a [COACHING] runs alone"
    )
    assert result.stderr.startswith(
        "coachctl: --mode auto refused: ci is not ready: a (0 of 2 decisions)"
    )
    assert not (home / "sessions").exists()


# -- start at ------------------------------------------------------------------------------


def test_start_at_skips_steps_that_are_not_ready(cli: Cli, home: Path, wf: Path) -> None:
    coach(cli, {"a": "reject"})
    assert cli("run", "ci", "--mode", "auto").exit_code == 1
    result = cli("run", "ci", "--mode", "auto", "--start-at", "b", "--no-input")
    assert result.exit_code == 0, result.stderr
    assert progress_lines(result.stdout) == [("2", "3", "b", "ok"), ("3", "3", "c", "ok")]
    last = sessions(home)[-1]
    assert [d["step_id"] for d in last["decisions"]] == ["b", "c"]  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", ["auto", "mixed", "coaching"])
def test_unknown_start_at_is_exit_2(cli: Cli, home: Path, wf: Path, mode: str) -> None:
    result = cli("run", "ci", "--mode", mode, "--start-at", "zz")
    assert result.exit_code == 2
    assert result.stderr == "coachctl: unknown step for --start-at: zz (steps: a, b, c)\n"
    assert not (home / "sessions").exists()
