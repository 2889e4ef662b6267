"""A shared home can hold what no coachctl wrote: a FIFO (or a device) named like a session
file, a pack, the events log or a lease. Opening one for reading blocked forever, so every
command on the home hung (a CI job until its timeout). Each is refused as "not a regular
file", named like any unreadable file, and nothing waits on it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.reliability._helpers import run

WF = "id: w\nsteps:\n  - id: one\n    run: echo one\n"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "workflows").mkdir(parents=True)
    (home / "workflows" / "w.yaml").write_text(WF)
    res = run(home, "coach", "w", "--no-input", "--format", "json")
    assert res.returncode == 0, res.stderr
    return home


@pytest.mark.parametrize("cold", [False, True], ids=["warm", "cold"])
def test_a_fifo_named_like_a_session_is_refused_not_waited_on(home: Path, cold: bool) -> None:
    fifo = home / "sessions" / "zz-fifo.json"
    os.mkfifo(fifo)
    if cold:
        for f in (home / "sessions" / ".index").iterdir():
            f.unlink()
    for args in (("stats",), ("sessions",), ("readiness", "w"), ("show", "zz-fifo")):
        res = run(home, *args, timeout=20)  # hung before: TimeoutExpired
        assert "not a regular file" in res.stderr, (args, res.stderr)
        assert res.returncode == (2 if args[0] in ("readiness", "show") else 0), args
    doctor = run(home, "doctor", timeout=20)
    assert doctor.returncode == 1 and "not a regular file" in doctor.stdout + doctor.stderr
    assert json.loads(run(home, "stats", "--format", "json").stdout)["global"]["sessions"] == 1


def test_a_fifo_for_the_events_log_or_a_pack_is_refused(home: Path) -> None:
    log = home / "sessions" / "events.jsonl"
    log.unlink()
    os.mkfifo(log)
    res = run(home, "events", timeout=20)
    assert res.returncode == 2 and "not a regular file" in res.stderr, res.stderr
    log.unlink()
    packs = home / "sessions" / "packs"
    packs.mkdir(exist_ok=True)
    os.mkfifo(packs / "w.json")
    assert run(home, "corrections", "list", timeout=20).returncode == 0  # derived: rebuilt
    sid = json.loads(run(home, "sessions", "--format", "json").stdout)[0]["session_id"]
    res = run(home, "decide", sid, "correct", "--correction", "echo fixed", "--no-exec")
    assert res.returncode == 0, res.stderr
    assert stat.S_ISREG(os.lstat(packs / "w.json").st_mode)  # replaced, never written into
    assert "echo fixed" in run(home, "corrections", "list", timeout=20).stdout
