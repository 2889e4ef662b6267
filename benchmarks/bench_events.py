"""`coachctl events` on a long log, as users run it: time to the first line and peak RSS.

Writes a log of `--mb` megabytes (one real session's events first and last, the rest other
sessions' decisions), then measures in real `python -m coachctl` processes:

- `events --session SID --format json`: seconds to its first line, total seconds, peak RSS;
- `events --follow --format json`: seconds until an event appended after it started is
  printed (it starts at the end: nothing of the log before is read), peak RSS.

    .venv/bin/python benchmarks/bench_events.py [--mb 1024]

Targets (issue 10): first line < 1 s, RSS < 100 MB, flat in the log's size.
"""

from __future__ import annotations

import argparse
import json
import platform
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
MEASURE = r"""
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdout=sys.stdout)
sys.stderr.write(f"maxrss={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\n")
sys.exit(done.returncode)
"""


def coachctl(home: Path, *args: str) -> list[str]:
    return [PY, "-m", "coachctl", "--home", str(home), *args]


def build(home: Path, mb: int) -> str:
    (home / "workflows").mkdir(parents=True)
    (home / "workflows" / "w.yaml").write_text("id: w\nsteps:\n  - id: s\n    run: 'true'\n")
    out = subprocess.run(
        coachctl(home, "coach", "w", "--no-input", "--format", "json"),
        capture_output=True,
        text=True,
        check=True,
    )
    sid = str(json.loads(out.stdout)["session_id"])
    noise = {
        "ts": "2025-01-01T00:00:00Z",
        "event": "decision",
        "workflow_id": "w",
        "step_id": "s",
        "decision": "skip",
        "decided_by": "ci",
        "outcome": None,
        "session_id": "other-0001",
        "feedback": "x" * 80,
    }
    line = (json.dumps(noise) + "\n").encode()
    chunk = line * (4 * 1024 * 1024 // len(line))
    mine = (json.dumps(dict(noise, session_id=sid, decision="accept")) + "\n").encode()
    with open(home / "sessions" / "events.jsonl", "ab") as fh:
        fh.write(mine)
        for _ in range(mb // 4):
            fh.write(chunk)
        fh.write(mine)
    return sid


def measure_session(home: Path, sid: str) -> tuple[float, float, float]:
    began = time.monotonic()
    proc = subprocess.Popen(
        [PY, "-c", MEASURE, *coachctl(home, "events", "--session", sid, "--format", "json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    first = time.monotonic() - began
    _, err = proc.communicate()
    total = time.monotonic() - began
    return first, total, int(err.rsplit("maxrss=", 1)[1]) / 1024


def measure_follow(home: Path) -> float:
    from coachctl.engine.stores import file_store

    proc = subprocess.Popen(
        coachctl(home, "events", "--follow", "--format", "json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    began = time.monotonic()
    try:
        store = file_store(home)
        while True:
            store.append_events([{"event": "probe"}])
            if select.select([proc.stdout], [], [], 0.1)[0]:
                proc.stdout.readline()
                return time.monotonic() - began
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=1024, help="log size in MB (default 1024)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        sid = build(home, args.mb)
        size = (home / "sessions" / "events.jsonl").stat().st_size / 2**20
        first, total, rss = measure_session(home, sid)
        follow = measure_follow(home)
    print(f"log: {size:.0f} MB; machine: {platform.python_version()}, {platform.system()}")
    print(
        f"events --session: first line {first:.3f} s (target < 1 s), all {total:.1f} s, "
        f"peak RSS {rss:.0f} MB (target < 100 MB)"
    )
    print(
        f"events --follow: an appended event printed {follow:.3f} s after start "
        f"(including interpreter start-up)"
    )
    print(f"reproduce: {Path(PY).name} benchmarks/bench_events.py --mb {args.mb}")


if __name__ == "__main__":
    main()
