"""A team on one PostgreSQL store: two homes ("two laptops"), real processes, SIGKILL,
`events --follow` across processes, and an unreachable database failing closed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.store.conftest import proc, run


@pytest.fixture
def laptops(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Two homes with the same workflows, one shared store named in each coachctl.yaml."""
    monkeypatch.delenv("COACHCTL_STORE", raising=False)
    homes = []
    for name in ("alice", "bob"):
        h = tmp_path / name
        shutil.copytree(EXAMPLES, h / "workflows")
        (h / "coachctl.yaml").write_text(f"store: {pg_url}\n")
        homes.append(h)
    return homes[0], homes[1]


def start(home: Path, workflow: str = "hello") -> str:
    done = run(home, "coach", workflow, "--no-input", "--format", "json")
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["session_id"])


def test_two_homes_one_store_share_sessions_and_readiness(laptops: tuple[Path, Path]) -> None:
    alice, bob = laptops
    sids = [start(alice) for _ in range(5)]
    for sid in sids:
        for step in ("greet", "clock", "look"):
            done = run(bob, "decide", sid, "accept", "--no-exec", "--step", step)
            assert done.returncode == 0, done.stderr
    listed = run(bob, "sessions", "--format", "json")
    assert sorted(r["session_id"] for r in json.loads(listed.stdout)) == sorted(sids)
    assert not (alice / "sessions").exists() and not (bob / "sessions").exists()
    ready = [run(h, "readiness", "hello", "--format", "json") for h in (alice, bob)]
    assert [r.returncode for r in ready] == [0, 0], [r.stderr for r in ready]
    assert json.loads(ready[0].stdout) == json.loads(ready[1].stdout)
    stats = [run(h, "stats", "--format", "json").stdout for h in (alice, bob)]
    assert stats[0] == stats[1]


def test_sigkill_of_a_runner_leaves_the_step_interrupted_never_rerun(
    laptops: tuple[Path, Path], tmp_path: Path
) -> None:
    alice, bob = laptops
    marker = tmp_path / "ran"
    for h in laptops:
        (h / "workflows" / "slow.yaml").write_text(
            f"id: slow\nsteps:\n  - id: work\n    run: echo x >> {marker}; sleep 30\n"
            "  - id: after\n    run: 'true'\n"
        )
    sid = start(alice, "slow")
    runner = proc(alice, "decide", sid, "accept", start_new_session=True)
    deadline = time.monotonic() + 20
    while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "x\n"
    busy = run(bob, "--lock-timeout", "1", "decide", sid, "accept")
    assert busy.returncode == 3, busy.stderr  # it runs on the other laptop
    os.killpg(runner.pid, signal.SIGKILL)
    runner.wait(10)
    state = json.loads(run(bob, "show", sid, "--format", "json").stdout)
    assert state["step"]["status"] == "interrupted", state["step"]
    resumed = run(bob, "resume", sid, "--no-input", "--format", "json")
    assert resumed.returncode == 0, resumed.stderr
    time.sleep(0.3)
    assert marker.read_text() == "x\n"  # never run again by itself
    assert run(bob, "decide", sid, "skip", "--step", "work").returncode == 0


def test_a_follower_sees_another_process_decision_within_a_second(
    laptops: tuple[Path, Path],
) -> None:
    alice, bob = laptops
    sid = start(alice)
    follower = proc(bob, "events", "--follow", "--format", "json")
    try:
        time.sleep(2.0)  # let it start and catch up
        began = time.monotonic()
        assert run(alice, "decide", sid, "skip").returncode == 0
        decided = time.monotonic()
        assert follower.stdout is not None
        os.set_blocking(follower.stdout.fileno(), True)
        seen = None
        while time.monotonic() - began < 10:
            line = follower.stdout.readline()
            if not line:
                break
            event = json.loads(line)
            if event.get("event") == "decision" and event.get("session_id") == sid:
                seen = time.monotonic()
                break
        assert seen is not None, "the follower never saw the decision"
        assert seen - decided < 1.0, seen - decided
    finally:
        follower.kill()
        follower.wait(10)


def test_an_unreachable_database_fails_readiness_closed_within_the_timeout(
    tmp_path: Path,
) -> None:
    home = tmp_path / "h"
    shutil.copytree(EXAMPLES, home / "workflows")
    with socket.socket() as silent:  # accepts, never answers: a hung server
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        url = f"postgresql://ci@127.0.0.1:{port}/team?connect_timeout=2"
        began = time.monotonic()
        done = run(home, "--store", url, "readiness", "hello")
        took = time.monotonic() - began
    assert done.returncode == 2, done.stderr
    assert "cannot reach the postgres store" in done.stderr
    assert done.stderr.count("\n") == 1
    assert took < 6, took
