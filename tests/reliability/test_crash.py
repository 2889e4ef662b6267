"""SIGKILL at random moments: every session file still parses and no step is decided twice.

The kills land in single `decide` processes (some running a step's command, so the kill can
fall between "marked running" and "outcome recorded") and in long-running workers that
decide in a loop, so most kills hit a session write, an events append or a derived-state
update in the middle.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

from tests.reliability._helpers import (
    LOOP_WORKER,
    many_steps,
    popen,
    popen_python,
    run,
    session_files,
    start,
    successful_cursors,
)

KILLS = 50


def _check_home(home: Path, sids: list[str]) -> None:
    files = session_files(home)  # json.loads of every session file: raises if torn
    assert sorted(files) == sorted(sids)
    for sid, data in files.items():
        cursors = successful_cursors(data)
        assert len(cursors) == len(set(cursors)), f"{sid}: a step decided twice: {cursors}"
        assert cursors == list(range(len(cursors))), f"{sid}: cursors {cursors}"
        assert data["cursor"] == len(cursors)


def _interrupted_steps(home: Path, sids: list[str]) -> int:
    count = 0
    for sid in sids:
        state = json.loads(run(home, "show", sid, "--format", "json").stdout)
        if state["step"] and state["step"]["status"] == "interrupted":
            count += 1
    return count


def test_fifty_sigkills_leave_every_session_readable(home: Path) -> None:
    many_steps(home, "crash", 400, run_cmd="echo step; sleep 0.01")
    sids = [start(home, "crash") for _ in range(3)]
    rng = random.Random(20240501)
    deadline = time.monotonic() + 150
    killed_while_running = 0
    for n in range(KILLS):
        assert time.monotonic() < deadline, f"crash loop too slow ({n} kills)"
        sid = rng.choice(sids)
        if n % 2 == 0:
            proc = popen_python(LOOP_WORKER, str(home), sid, "1000", "mixexec", str(n))
            delay = rng.uniform(0.25, 0.9)
        else:
            decision = rng.choice(["accept", "accept --no-exec", "skip", "reject"])
            proc = popen(home, "--lock-timeout", "30", "decide", sid, *decision.split())
            delay = rng.uniform(0.0, 0.3)
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        _check_home(home, sids)
        killed_while_running += _interrupted_steps(home, [sid])

    # The sessions listing shows exactly the sessions, whatever temp files a kill left.
    listed = json.loads(run(home, "sessions", "--format", "json").stdout)
    assert sorted(r["session_id"] for r in listed) == sorted(sids)
    # Every session can still be decided by a person, interrupted or not.
    for sid in sids:
        res = run(home, "--lock-timeout", "30", "decide", sid, "skip")
        assert res.returncode == 0, res.stderr
    _check_home(home, sids)

    doctor = run(home, "doctor")
    if doctor.returncode != 0:
        assert doctor.returncode == 1, doctor.stderr
        repaired = run(home, "doctor", "--repair")
        assert repaired.returncode == 0, repaired.stderr
        doctor = run(home, "doctor")
    assert (doctor.returncode, doctor.stderr) == (0, "")


def test_leftover_temp_files_are_never_taken_for_sessions(home: Path, cli: object) -> None:
    many_steps(home, "tmpf", 2)
    sid = start(home, "tmpf")
    folder = home / "sessions"
    (folder / f".tmp-{sid}.json.dead").write_bytes(b'{"id": "half')
    (folder / f".tmp-{sid}.json.beef.json").write_bytes(b"{")
    listed = run(home, "sessions", "--format", "json")
    assert listed.stderr == ""
    assert [r["session_id"] for r in json.loads(listed.stdout)] == [sid]
    assert run(home, "decide", sid, "skip").returncode == 0
    assert sorted(session_files(home)) == [sid]


def test_a_torn_events_line_is_skipped(home: Path) -> None:
    from coachctl.engine.stores import file_store

    many_steps(home, "torn", 3)
    sid = start(home, "torn")
    events = home / "sessions" / "events.jsonl"
    with open(events, "ab") as fh:
        fh.write(b'{"event":"decision","session_id":"' + sid.encode() + b'","ts":"20')  # torn
    assert run(home, "decide", sid, "skip").returncode == 0
    with open(events, "ab") as fh:
        fh.write(b"\x00\xff garbage\n{not json}\n[1, 2]\n")
    assert run(home, "decide", sid, "skip").returncode == 0
    read = [e for e, _ in file_store(home).read_events()]
    assert [e["event"] for e in read] == ["session_started", "decision", "decision"]
    res = run(home, "events", "--format", "json")
    assert res.returncode == 0, res.stderr
    printed = [json.loads(line)["event"] for line in res.stdout.splitlines()]
    assert printed == ["session_started", "decision", "decision"]
