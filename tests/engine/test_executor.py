"""The executor: exit codes, live streaming with a bounded tail, timeouts, groups, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from coachctl.engine.executor import TAIL_BYTES, run_command


def test_success_and_output() -> None:
    chunks: list[bytes] = []
    r = run_command("echo hi; echo err >&2", stream=chunks.append)
    assert r.ok and r.exit_code == 0
    assert b"".join(chunks) == b"hi\nerr\n"
    assert r.output_tail == "hi\nerr\n"
    assert r.duration >= 0


def test_failure_exit_code_is_kept() -> None:
    r = run_command("exit 7")
    assert not r.ok and r.exit_code == 7


def test_tail_is_bounded_and_decoded_with_replacement() -> None:
    r = run_command("head -c 20000 /dev/zero | tr '\\0' x; printf '\\377'")
    assert len(r.output_tail.encode("utf-8")) <= TAIL_BYTES + 3
    assert r.output_tail.endswith("\ufffd")


def test_timeout_is_a_failure_and_ends_the_command() -> None:
    start = time.monotonic()
    r = run_command("sleep 30", timeout=0.5)
    assert r.timed_out and not r.ok
    assert time.monotonic() - start < 5


def test_env_and_cwd(tmp_path: object) -> None:
    r = run_command(
        'printf %s "$X"; pwd', env={"X": "v", "PATH": "/usr/bin:/bin"}, cwd=str(tmp_path)
    )
    assert r.output_tail == f"v{tmp_path}\n"


def test_unstartable_cwd_is_reported_not_raised(tmp_path: object) -> None:
    r = run_command("true", cwd="/nonexistent/dir/xyz")
    assert not r.ok and r.error is not None


def test_the_deadline_is_on_the_process_not_the_pipe(tmp_path: object) -> None:
    # The command closes its output at once and keeps running: still stopped at the timeout.
    start = time.monotonic()
    r = run_command(f"exec >{tmp_path}/log 2>&1; sleep 15", timeout=1.5)
    took = time.monotonic() - start
    assert r.timed_out and not r.ok
    assert 1.4 < took < 3.5, took


def test_a_background_child_holding_the_pipe_does_not_make_it_a_timeout() -> None:
    start = time.monotonic()
    r = run_command("sleep 31 & echo $!; echo started", timeout=10)
    took = time.monotonic() - start
    try:
        assert (r.exit_code, r.timed_out, r.ok) == (0, False, True)
        assert r.output_tail.endswith("started\n")
        assert took < 2, took
    finally:
        os.kill(int(r.output_tail.split()[0]), signal.SIGKILL)


def test_stdin_is_dev_null_without_a_terminal() -> None:
    r = run_command("readlink /proc/self/fd/0; cat; echo rc=$?")
    assert r.output_tail == "/dev/null\nrc=0\n"


def test_the_command_leads_its_own_process_group() -> None:
    r = run_command("ps -o pid=,pgid=,sid= -p $$")
    pid, pgid, sid = r.output_tail.split()
    assert pid == pgid == sid and int(pgid) != os.getpgrp()


def test_a_command_too_long_to_start_says_why() -> None:
    r = run_command("echo " + "x" * 200_000)
    assert r.exit_code is None and not r.ok
    assert r.error is not None and "Argument list too long" in r.error


def test_sigterm_to_coachctl_stops_the_group_and_is_reported() -> None:
    # In a child interpreter: the executor's handlers are per process (main thread).
    code = (
        "import json, sys\n"
        "from coachctl.engine.executor import run_command\n"
        "r = run_command('echo $$; sleep 40', stream=lambda b: (sys.stdout.buffer.write(b),"
        " sys.stdout.flush()))\n"
        "print(json.dumps([r.interrupted, r.signal, r.exit_code]))\n"
    )
    repo = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": repo + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    group = int(proc.stdout.readline())
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=15)
    assert json.loads(out.splitlines()[-1]) == [True, signal.SIGTERM, -signal.SIGTERM]
    assert running_in_group(group) == []


def running_in_group(pgid: int) -> list[int]:
    """Live (non-zombie) members of a process group, from the real process table."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes() if entry.isdigit() else b""
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            found.append(int(entry))
    return found
