"""Issue 8, defect 5: session locks, the events lock, the index lock and pack locks live in
their own namespaces: a session (or workflow) named like a store lock blocks nothing else."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.reliability._helpers import popen_python, run, start

#: Holds a session's transaction (its lock) until killed.
HOLD = r"""
import sys, time
from pathlib import Path
from coachctl.engine.stores import file_store
with file_store(Path(sys.argv[1])).transaction(sys.argv[2]):
    print("locked", flush=True)
    time.sleep(120)
"""

WF = "id: w\nsteps:\n  - id: one\n    run: echo one\n  - id: two\n    run: echo two\n"


@pytest.mark.parametrize("name", ["events", "index"])
def test_a_session_named_like_a_store_lock_blocks_no_other_write(tmp_path: Path, name: str) -> None:
    home = tmp_path / "home"
    (home / "workflows").mkdir(parents=True)
    (home / "workflows" / "w.yaml").write_text(WF)
    other = start(home, "w")
    source = home / "sessions" / f"{other}.json"
    data = json.loads(source.read_text())
    data["id"] = name
    (home / "sessions" / f"{name}.json").write_text(json.dumps(data))
    shutil.copymode(source, home / "sessions" / f"{name}.json")
    holder = popen_python(HOLD, str(home), name)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        res = run(home, "--lock-timeout", "1", "decide", other, "skip")
        assert res.returncode == 0, res.stderr
        assert res.stderr == ""  # no "saved, but not its derived state" warning
        events = [json.loads(line) for line in (home / "sessions" / "events.jsonl").open()]
        assert [e["event"] for e in events if e.get("session_id") == other][-1] == "decision"
        stats = run(home, "stats", "w", "--format", "json")
        assert stats.returncode == 0 and stats.stderr == ""
    finally:
        holder.kill()
        holder.wait(10)
