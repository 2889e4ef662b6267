"""Issue 8, defect 3: the window is a step's latest decisions in the order they were
*recorded*, whatever the wall clock of the machine that recorded them said."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.reliability._helpers import env, run

#: The real CLI in a process whose clock is a day behind (time.time and time.time_ns).
BEHIND = r"""
import sys, time
real, real_ns = time.time, time.time_ns
time.time = lambda: real() - 86400
time.time_ns = lambda: real_ns() - 86400 * 10**9
from coachctl.cli import main
sys.argv = ["coachctl", *sys.argv[1:]]
main()
"""

WF = """\
id: clock
coaching:
  window: 5
  min_decisions: 5
  threshold: 0.5
  strict: false
steps:
  - id: ship
    run: echo ship
"""


def coachctl(home: Path, *args: str, behind: bool) -> subprocess.CompletedProcess[str]:
    head = [sys.executable, "-c", BEHIND] if behind else [sys.executable, "-m", "coachctl"]
    cmd = [*head, "--home", str(home), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env())


def decide_once(home: Path, decision: str, *, behind: bool = False) -> None:
    """One session of the one-step workflow, one decision: both in the same clock."""
    started = coachctl(home, "coach", "clock", "--no-input", "--format", "json", behind=behind)
    assert started.returncode == 0, started.stderr
    sid = json.loads(started.stdout)["session_id"]
    done = coachctl(home, "decide", sid, decision, "--no-exec", behind=behind)
    assert done.returncode == 0, done.stderr


def test_rejects_recorded_with_a_clock_a_day_behind_stay_in_the_window(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "workflows").mkdir(parents=True)
    (home / "workflows" / "clock.yaml").write_text(WF)
    for _ in range(7):
        decide_once(home, "accept")
    for _ in range(3):  # the three latest decisions, on a machine whose clock is behind
        decide_once(home, "reject", behind=True)

    ready = run(home, "readiness", "clock", "--format", "json")
    assert ready.returncode == 1, ready.stdout  # 2 accepts, 3 rejects: not ready
    step = json.loads(ready.stdout)["workflows"][0]["steps"][0]
    assert (step["accepted"], step["rejected"]) == (2, 3)
    assert run(home, "doctor").returncode == 0

    shutil.rmtree(home / "sessions" / ".index")  # the order survives a rebuild of the index
    again = run(home, "readiness", "clock", "--format", "json")
    assert again.returncode == 1, again.stdout
    assert json.loads(again.stdout)["workflows"][0]["steps"][0]["rejected"] == 3
