"""A step's outcome is saved, or coachctl says plainly that it is not (issue 10, item 6).

The failures are real: the step's own command takes the sessions folder away, so the write
of its outcome fails in the coachctl process that ran it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import Cli, write_workflow
from tests.reliability._helpers import run, start


def test_a_command_that_ran_but_whose_outcome_was_not_saved_says_so(home: Path) -> None:
    sessions = home / "sessions"
    away = home / "sessions.away"
    takes_the_home = f"mv {sessions} {away} && : > {sessions} && echo deployed"
    write_workflow(
        home,
        "w",
        f"steps:\n  - id: deploy\n    run: {json.dumps(takes_the_home)}\n"
        "  - id: after\n    run: 'true'\n",
    )
    sid = start(home, "w")
    res = run(home, "decide", sid, "accept")
    assert res.returncode == 1
    assert (
        "coachctl: the command ran (exit 0) but its outcome was not recorded: "
        "the step is interrupted; check before deciding again" in res.stderr
    ), res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    # The home comes back: the step shows as interrupted and nothing runs it by itself.
    sessions.unlink()
    shutil.move(str(away), str(sessions))
    state = json.loads(run(home, "show", sid, "--format", "json").stdout)
    assert (state["step"]["id"], state["step"]["status"]) == ("deploy", "interrupted")
    checked = run(home, "decide", sid, "accept", "--step", "deploy", "--no-exec")
    assert checked.returncode == 0, checked.stderr
    data = json.loads((sessions / f"{sid}.json").read_text())
    assert data["decisions"][-1]["after_interrupted"] is True


def test_a_command_that_cannot_start_says_why_everywhere(cli: Cli, home: Path) -> None:
    write_workflow(home, "w", "steps:\n  - id: big\n    run: echo small\n")
    sid = cli.start("w")
    too_long = "echo " + "x" * 200_000  # one argument over the kernel's limit: E2BIG
    res = cli("decide", sid, "correct", "--correction", too_long)
    assert res.exit_code == 1
    assert "cannot start: Argument list too long" in res.stderr
    assert "exit None" not in res.stderr + res.stdout
    shown = cli("show", sid)
    assert "the last attempt failed (cannot start: Argument list too long" in shown.stdout
    assert "exit None" not in shown.stdout
    state = cli.json("show", sid)
    assert state["step"]["status"] == "failed"
    assert state["step"]["last_error"].startswith("cannot start: Argument list too long")
    assert state["decisions"][-1]["error"] == state["step"]["last_error"]
