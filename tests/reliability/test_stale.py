"""State left behind by a killed process: a lock file, a step marked running.

The lock is an OS lock (flock): the kernel drops it with its holder, so the file that stays
behind blocks no one. A step whose process died while running it "may have run": it is shown
as interrupted and waits for a person; nothing runs it again by itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.reliability._helpers import (
    many_steps,
    popen,
    popen_python,
    run,
    session_files,
    start,
    wait_until,
)

HOLD_LOCK = r"""
import sys, time
from pathlib import Path
from coachctl.engine.stores import file_store
with file_store(Path(sys.argv[1])).lock("session", sys.argv[2]):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_a_lock_left_by_a_killed_holder_blocks_no_one(home: Path) -> None:
    many_steps(home, "locky", 3)
    sid = start(home, "locky")
    holder = popen_python(HOLD_LOCK, str(home), sid)
    assert holder.stdout is not None
    assert holder.stdout.readline() == "locked\n"
    # The lock is real while its holder lives: a decide gives up with exit 3.
    blocked = run(home, "--lock-timeout", "0.3", "decide", sid, "skip")
    assert blocked.returncode == 3, blocked.stderr
    assert blocked.stderr.startswith(f"coachctl: session {sid} is locked by another coachctl")
    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate(timeout=10)
    lock_file = home / "sessions" / ".locks" / "session" / f"{sid}.lock"
    assert lock_file.exists(), "the killed holder's lock file is still there"
    began = time.monotonic()
    res = run(home, "--lock-timeout", "10", "decide", sid, "skip", "--format", "json")
    took = time.monotonic() - began
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["progress"]["done"] == 1
    assert took < 3.0, f"a stale lock file made decide wait {took:.1f}s"


def _kill_group(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)


def _running_workflow(home: Path, marker: Path) -> None:
    (home / "workflows").mkdir(exist_ok=True)
    (home / "workflows" / "slow.yaml").write_text(
        "id: slow\nsteps:\n"
        f"  - id: long\n    run: echo ran >> {marker}; sleep 60\n"
        f"  - id: next\n    run: echo next >> {marker}\n"
    )


def test_a_step_running_in_a_killed_process_is_interrupted_and_not_rerun(
    home: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    _running_workflow(home, marker)
    proc = popen(home, "run", "slow", "--mode", "auto", "--force", "--no-input", own_group=True)
    wait_until(lambda: marker.exists())
    (sid,) = session_files(home)
    assert session_files(home)[sid]["running"]["step_id"] == "long"
    # While its process lives, the step is running: another decision is a conflict.
    busy = run(home, "decide", sid, "skip")
    assert busy.returncode == 3, busy.stderr
    assert "is running" in busy.stderr
    _kill_group(proc)

    state = json.loads(run(home, "show", sid, "--format", "json").stdout)
    assert state["step"]["id"] == "long"
    assert state["step"]["status"] == "interrupted"
    text = run(home, "show", sid).stdout
    assert "interrupted while running: it may have run" in text

    # Nothing runs it again by itself: neither resume nor the AUTO loop.
    resumed = run(home, "resume", sid, "--no-input", "--format", "json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["step"]["status"] == "interrupted"
    from coachctl.engine import auto, deciding, persist
    from coachctl.engine.stores import file_store

    store = file_store(home)
    out = auto.run_auto_steps(store, persist.load(store, sid))
    assert out.auto_runs == []
    assert marker.read_text() == "ran\n"
    # Even when the AUTO loop's own look came before the step was marked (a race), the
    # decision it then makes under the lock is refused: "auto" never decides an interrupted step.
    from coachctl.errors import StateError

    with pytest.raises(StateError, match="a person must decide it"):
        deciding.decide(store, sid, "accept", step_guard="long", decided_by="auto")
    assert marker.read_text() == "ran\n"


def test_a_person_may_decide_an_interrupted_step(home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    _running_workflow(home, marker)
    proc = popen(home, "run", "slow", "--mode", "auto", "--force", "--no-input", own_group=True)
    wait_until(lambda: marker.exists())
    (sid,) = session_files(home)
    wait_until(lambda: session_files(home)[sid]["running"] is not None)
    _kill_group(proc)
    res = run(home, "decide", sid, "manual", "--command", "checked by hand", "--step", "long")
    assert res.returncode == 0, res.stderr
    data = session_files(home)[sid]
    assert data["running"] is None
    assert data["decisions"][-1]["decision"] == "manual"
    assert data["decisions"][-1]["after_interrupted"] is True
    assert marker.read_text() == "ran\n"


def test_a_reused_pid_is_not_taken_for_the_runner(home: Path) -> None:
    """The running mark keeps the process start time: a live pid of another process is dead."""
    many_steps(home, "pid", 2)
    sid = start(home, "pid")
    path = home / "sessions" / f"{sid}.json"
    data = json.loads(path.read_text())
    data["running"] = {
        "step_id": "s0000",
        "cursor": 0,
        "decision": "accept",
        "command": "true",
        "pid": os.getpid(),  # alive, but not the process that marked the step
        "pid_start": "1",
        "started_at": "2024-01-01T00:00:00Z",
        "token": "x",
    }
    path.write_text(json.dumps(data))
    state = json.loads(run(home, "show", sid, "--format", "json").stdout)
    assert state["step"]["status"] == "interrupted"


def test_a_slow_decide_is_never_run_twice_by_a_racing_resume(home: Path, tmp_path: Path) -> None:
    """A live runner keeps its step: resume and the AUTO loop leave it alone."""
    marker = tmp_path / "marker"
    _running_workflow(home, marker)
    proc = popen(home, "run", "slow", "--mode", "auto", "--force", "--no-input", own_group=True)
    try:
        wait_until(lambda: marker.exists())
        (sid,) = session_files(home)
        res = run(home, "resume", sid, "--no-input", "--format", "json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["step"]["status"] == "running"
        assert marker.read_text() == "ran\n"
    finally:
        _kill_group(proc)


_ = popen  # re-exported helper used by sibling modules
