"""Concurrent coachctl processes on the same home: nothing lost, nothing decided twice.

Every test here starts real processes (the locks are OS locks between processes) and waits
for them with a bound, so a deadlock fails the test instead of hanging CI.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path

from tests.reliability._helpers import (
    LOOP_WORKER,
    finished,
    many_steps,
    popen,
    popen_python,
    run,
    session_files,
    start,
    successful_cursors,
)


def test_eight_processes_on_eight_sessions_lose_nothing(home: Path) -> None:
    """Issue 2: 8 processes, one session each, all deciding at once: every decision lands."""
    many_steps(home, "eight", 4)
    sids = [start(home, "eight") for _ in range(8)]
    # Each process decides its session's four steps in one shell pipeline of real coachctl runs.
    procs = [
        popen(home, "--lock-timeout", "30", "decide", sid, "skip", "--step", "s0000")
        for sid in sids
    ]
    assert [rc for rc, _, _ in finished(procs, 60)] == [0] * 8
    for step in ("s0001", "s0002", "s0003"):
        procs = [
            popen(
                home, "--lock-timeout", "30", "decide", sid, "accept", "--no-exec", f"--step={step}"
            )
            for sid in sids
        ]
        results = finished(procs, 60)
        assert [rc for rc, _, _ in results] == [0] * 8, [err for _, _, err in results]
    files = session_files(home)
    assert sorted(files) == sorted(sids)
    for sid in sids:
        data = files[sid]
        assert data["status"] == "completed"
        assert [(d["step_id"], d["decision"]) for d in data["decisions"]] == [
            ("s0000", "skip"),
            ("s0001", "accept"),
            ("s0002", "accept"),
            ("s0003", "accept"),
        ]


def test_four_racing_on_one_step_exactly_one_wins(home: Path) -> None:
    """Issue 2: 4 processes race `decide --step S` on one step: one wins, three exit 3."""
    many_steps(home, "race", 6)
    sid = start(home, "race")
    for i in range(5):
        step = f"s{i:04d}"
        procs = [
            popen(
                home, "--lock-timeout", "30", "decide", sid, "accept", "--no-exec", f"--step={step}"
            )
            for _ in range(4)
        ]
        results = finished(procs, 60)
        codes = sorted(rc for rc, _, _ in results)
        assert codes == [0, 3, 3, 3], results
        for rc, out, err in results:
            if rc == 3:
                assert out == ""
                assert err.count("\n") == 1 and err.startswith("coachctl: "), err
                assert f"not '{step}'" in err
    data = session_files(home)[sid]
    assert [d["step_id"] for d in data["decisions"]] == [f"s{i:04d}" for i in range(5)]
    assert data["cursor"] == 5


def test_racing_on_a_step_that_runs_a_command_runs_it_once(home: Path, tmp_path: Path) -> None:
    """The lock is not held while the command runs; a racer meanwhile is a conflict (exit 3)."""
    marker = tmp_path / "ran"
    (home / "workflows").mkdir(exist_ok=True)
    (home / "workflows" / "once.yaml").write_text(
        f"id: once\nsteps:\n  - id: slow\n    run: echo x >> {marker}; sleep 0.5\n"
        "  - id: after\n    run: 'true'\n"
    )
    sid = start(home, "once")
    procs = [
        popen(home, "--lock-timeout", "30", "decide", sid, "accept", "--step", "slow")
        for _ in range(4)
    ]
    results = finished(procs, 60)
    assert sorted(rc for rc, _, _ in results) == [0, 3, 3, 3], results
    assert marker.read_text() == "x\n"
    data = session_files(home)[sid]
    assert [(d["step_id"], d["exit_code"]) for d in data["decisions"]] == [("slow", 0)]
    assert data["running"] is None


def test_sixteen_workers_fifty_decisions_four_sessions(home: Path) -> None:
    """Issue 5: 16 processes x 50 decisions over 4 sessions, with pause/resume and stats
    running meanwhile: every successful decision is in a session file exactly once."""
    many_steps(home, "busy", 210)
    sids = [start(home, "busy") for _ in range(4)]
    workers = [
        popen_python(LOOP_WORKER, str(home), sids[i % 4], "50", "mix", str(i)) for i in range(16)
    ]
    rng = random.Random(5)
    side_codes: Counter[tuple[str, int]] = Counter()
    deadline = time.monotonic() + 150
    while any(w.poll() is None for w in workers) and time.monotonic() < deadline:
        sid = rng.choice(sids)
        paused = run(home, "--lock-timeout", "30", "pause", sid, "--reason", "meanwhile")
        side_codes["pause", paused.returncode] += 1
        resumed = run(home, "--lock-timeout", "30", "resume", sid, "--no-input")
        side_codes["resume", resumed.returncode] += 1
        assert resumed.returncode == 0, resumed.stderr
        stats = run(home, "stats", "--format", "json")
        side_codes["stats", stats.returncode] += 1
        assert stats.returncode == 0, stats.stderr
        json.loads(stats.stdout)
        time.sleep(0.3)  # meanwhile, not instead: leave the CPUs to the deciders
    # a session left paused by the loop above is resumed so nobody waits forever
    for sid in sids:
        assert run(home, "--lock-timeout", "30", "resume", sid, "--no-input").returncode == 0
    results = finished(workers, max(1.0, deadline - time.monotonic()))
    assert [rc for rc, _, _ in results] == [0] * 16, [err[-500:] for _, _, err in results]
    assert side_codes["pause", 0] >= 1, side_codes

    claimed: Counter[tuple[str, str]] = Counter()
    for _, out, _ in results:
        for line in out.splitlines():
            rec = json.loads(line)
            claimed[rec["session"], rec["step"]] += 1
    assert sum(claimed.values()) == 16 * 50
    assert max(claimed.values()) == 1, "a step was reported decided twice"

    files = session_files(home)
    recorded: Counter[tuple[str, str]] = Counter()
    for sid in sids:
        data = files[sid]
        cursors = successful_cursors(data)
        assert cursors == list(range(len(cursors))), "a step decided twice, or one skipped"
        assert data["cursor"] == len(data["decisions"]) == 200
        recorded.update((sid, d["step_id"]) for d in data["decisions"])
    assert recorded == claimed

    doctor = run(home, "doctor")
    assert (doctor.returncode, doctor.stderr) == (0, "")
