"""Stopping a step from outside: SIGTERM, SIGHUP and kill -INT on a real coachctl process.

Each test finds the step's processes by the session id in their environment (every step
runs with COACHCTL_SESSION), so "nothing left running" is checked on the real process table.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.reliability._helpers import popen, run, start


def step_processes(sid: str) -> list[int]:
    """Live (non-zombie) processes running for session `sid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        mine = f"COACHCTL_SESSION={sid}".encode() in environ.split(b"\0")
        if mine and stat[stat.rfind(b")") + 2 :].split()[0] not in (b"Z", b"X"):
            found.append(int(entry))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b"(gone)"


def wait_for(path: Path, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.02)


def workflow(home: Path, command: str) -> None:
    (home / "workflows").mkdir(parents=True, exist_ok=True)
    (home / "workflows" / "w.yaml").write_text(
        f"id: w\nsteps:\n  - id: one\n    run: {json.dumps(command)}\n"
        "  - id: two\n    run: 'true'\n"
    )


def session(home: Path, sid: str) -> dict:  # type: ignore[type-arg]
    data: dict = json.loads((home / "sessions" / f"{sid}.json").read_text())  # type: ignore[type-arg]
    return data


def kill_leftovers(sid: str) -> None:
    for pid in step_processes(sid):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)]
)
def test_a_stop_signal_reaches_the_group_records_interrupted_and_pauses(
    home: Path, tmp_path: Path, signum: int, status: int
) -> None:
    # The sleep runs in the foreground of the step's shell; a second one in the background.
    marker = tmp_path / "started"
    workflow(home, f"sleep 41 & echo up > {marker}; sleep 42; echo done")
    sid = start(home, "w")
    proc = popen(home, "decide", sid, "accept")
    try:
        wait_for(marker)
        assert len(step_processes(sid)) >= 2
        os.kill(proc.pid, signum)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == status, err
        assert "paused" in err and f"coachctl resume {sid}" in err
        deadline = time.monotonic() + 2
        while step_processes(sid) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = {p: _cmdline(p) for p in step_processes(sid)}
        assert left == {}, f"the step left processes running: {left}; stderr: {err}"
    finally:
        kill_leftovers(sid)
    data = session(home, sid)
    assert (data["status"], data["cursor"], data["running"]) == ("paused", 0, None)
    rec = data["decisions"][-1]
    assert rec["outcome"] == "interrupted"
    assert rec["stopped_by"] == signal.Signals(signum).name
    # Neutral for trust: nothing accepted, nothing failed.
    stats = json.loads(run(home, "stats", "--by", "step", "--format", "json").stdout)
    step = stats["workflows"][0]["steps"][0]
    assert (step["accepted"], step["failed"], step["suggestions"]) == (0, 0, 0)


def test_a_second_sigterm_kills_a_step_that_ignores_the_first(home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    workflow(
        home,
        f"trap 'echo got-term >> {marker}.log' TERM; echo up > {marker}; "
        "while :; do sleep 0.1; done",
    )
    sid = start(home, "w")
    proc = popen(home, "decide", sid, "accept")
    try:
        wait_for(marker)
        os.kill(proc.pid, signal.SIGTERM)
        wait_for(Path(f"{marker}.log"))
        assert proc.poll() is None  # the step chose to ignore TERM: still in its grace
        second = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=20)
        assert time.monotonic() - second < 1.5, "the second signal did not escalate"
        assert proc.returncode == 143
        assert step_processes(sid) == []
    finally:
        kill_leftovers(sid)
    rec = session(home, sid)["decisions"][-1]
    assert (rec["outcome"], rec["exit_code"]) == ("interrupted", -9)


def test_a_step_that_ignores_sigterm_is_killed_after_the_grace(home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    workflow(home, f"trap '' TERM; echo up > {marker}; while :; do sleep 0.1; done")
    sid = start(home, "w")
    proc = popen(home, "decide", sid, "accept")
    try:
        wait_for(marker)
        os.kill(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=20)
        assert proc.returncode == 143
        assert step_processes(sid) == []
    finally:
        kill_leftovers(sid)


def test_a_timed_out_step_leaves_nothing_running(home: Path) -> None:
    (home / "workflows").mkdir(parents=True, exist_ok=True)
    (home / "workflows" / "w.yaml").write_text(
        "id: w\nsteps:\n  - id: one\n    run: sleep 37; echo done\n    timeout: 1\n"
    )
    sid = start(home, "w")
    began = time.monotonic()
    res = run(home, "decide", sid, "accept")
    assert res.returncode == 1 and "timed out" in res.stderr
    assert time.monotonic() - began < 8
    try:
        assert step_processes(sid) == [], "a timed-out step left its sleep behind"
    finally:
        kill_leftovers(sid)
    rec = session(home, sid)["decisions"][-1]
    assert (rec["outcome"], rec["timed_out"]) == ("failed", True)


def test_a_step_that_starts_a_daemon_returns(home: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "daemon.pid"
    workflow(home, f"sleep 31 & echo $! > {pidfile}; echo started")
    sid = start(home, "w")
    began = time.monotonic()
    try:
        res = run(home, "decide", sid, "accept", timeout=30)
        took = time.monotonic() - began
        assert res.returncode == 0, res.stderr
        assert took < 5, f"decide waited {took:.1f}s for a pipe a daemon kept open"
        daemon = int(pidfile.read_text())
        assert Path(f"/proc/{daemon}").exists()  # a daemon is left alone when the step is ok
    finally:
        kill_leftovers(sid)
    rec = session(home, sid)["decisions"][-1]
    assert (rec["outcome"], rec["exit_code"], rec["output_tail"]) == ("ok", 0, "started\n")


def test_a_step_does_not_read_the_callers_stdin(home: Path) -> None:
    workflow(home, "cat; echo read-done")
    sid = start(home, "w")
    import subprocess

    from tests.reliability._helpers import coachctl, env

    script = f"{' '.join(coachctl(home, 'decide', sid, 'accept'))} >/dev/null; cat"
    res = subprocess.run(
        ["sh", "-c", script],
        input="the rest of my input\n",
        capture_output=True,
        text=True,
        env=env(),
        timeout=30,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "the rest of my input\n"
    rec = session(home, sid)["decisions"][-1]
    assert rec["output_tail"] == "read-done\n"


def test_output_without_a_final_newline_is_not_glued(home: Path) -> None:
    workflow(home, "printf no-newline")
    sid = start(home, "w")
    res = run(home, "decide", sid, "accept")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("no-newline\nsession ")
