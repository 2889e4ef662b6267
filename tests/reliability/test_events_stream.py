"""Issue 10 (events item): the events log is read as a stream from a cursor.

`events --session X` on a long log prints its first line at once and stays in bounded
memory; `--follow` starts at the end and reads only what is appended.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.reliability._helpers import coachctl, env, start

#: Runs a command as its child and reports the child's peak RSS (KiB on Linux) on stderr.
MEASURE = r"""
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdout=sys.stdout)
sys.stderr.write(f"maxrss={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\n")
sys.exit(done.returncode)
"""

LINES = 400_000  # about 90 MB of log


def big_log(home: Path) -> str:
    """A real session, then a long log where only its first and last events are its own."""
    (home / "workflows").mkdir(parents=True)
    (home / "workflows" / "w.yaml").write_text("id: w\nsteps:\n  - id: s\n    run: 'true'\n")
    sid = start(home, "w")
    noise = {
        "ts": "2025-01-01T00:00:00Z",
        "event": "decision",
        "workflow_id": "w",
        "step_id": "s",
        "decision": "skip",
        "decided_by": "ci",
        "outcome": None,
        "feedback": "x" * 80,
    }
    mine = dict(noise, session_id=sid, decision="accept")
    with open(home / "sessions" / "events.jsonl", "w") as fh:
        fh.write(json.dumps(mine) + "\n")
        line = json.dumps(dict(noise, session_id="other-0001")) + "\n"
        fh.write(line * LINES)
        fh.write(json.dumps(mine) + "\n")
    return sid


def test_events_of_one_session_on_a_long_log_start_at_once_in_bounded_memory(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    sid = big_log(home)
    cmd = coachctl(home, "events", "--session", sid, "--format", "json")
    began = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", MEASURE, *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    first_after = time.monotonic() - began
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert json.loads(first)["decision"] == "accept"
    assert len(rest.splitlines()) == 1
    assert first_after < 1.0, f"first line after {first_after:.2f}s"
    rss_mb = int(err.rsplit("maxrss=", 1)[1]) / 1024
    assert rss_mb < 100, f"peak RSS {rss_mb:.0f} MB"


def test_follow_on_a_long_log_starts_at_the_end(tmp_path: Path) -> None:
    from coachctl.engine.stores import file_store

    home = tmp_path / "home"
    big_log(home)
    proc = subprocess.Popen(
        coachctl(home, "events", "--follow", "--format", "json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    try:
        assert proc.stdout is not None
        store = file_store(home)
        for n in range(100):  # probe until the follower, started at the end, prints one
            store.append_events([{"event": "probe", "n": n}])
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)
            if ready:
                break
        first = json.loads(proc.stdout.readline())
        assert first["event"] == "probe"  # nothing of the 400,000 events before it
    finally:
        proc.kill()
        proc.wait(10)
