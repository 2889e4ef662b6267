"""A cold index build SIGKILLed while its workers run (a CI job cancelled): the workers do
not outlive it for long, nothing half-built is used, its scratch files do not stay, and the
next command builds the index again and answers exactly what a fresh build answers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from coachctl.store.files import coldbuild
from tests.reliability._helpers import popen, run, start
from tests.store.files.test_index_cold import _session

N = coldbuild.COLD_MIN + 2000


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for whoever reaps orphans here)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(coldbuild.usable_cpus() < 2, reason="workers need two CPUs")
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc")
def test_a_killed_cold_build_leaves_no_worker_and_is_rebuilt(home: Path) -> None:
    start(home, "hello")  # a real session made by the CLI, among the written ones
    folder = home / "sessions"
    for i in range(N):
        data = {**_session(i), "workflow_id": "hello"}
        (folder / f"{data['id']}.json").write_text(json.dumps(data))
    old = time.time_ns() - 10**10
    os.utime(folder, ns=(old, old))
    index = folder / ".index"

    workers: list[int] = []
    for _attempt in range(5):
        shutil.rmtree(index, ignore_errors=True)
        proc = popen(home, "stats", "--format", "json")
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            workers = _children(proc.pid)
            if len(workers) >= 2:
                time.sleep(0.05)  # let them write a batch or two into their scratch files
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        proc.communicate(timeout=30)
        if workers:
            break
    assert workers, "never caught the build with its workers running"

    deadline = time.monotonic() + 15
    while any(_running(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_running(w) for w in workers), "a worker outlived its killed parent"

    after_kill = run(home, "stats", "--format", "json")
    assert after_kill.returncode == 0, after_kill.stderr
    # The killed build's scratch databases were swept by the next one, which left none.
    assert not [p for p in index.iterdir() if p.name.startswith(coldbuild.SCRATCH_PREFIX)]
    shutil.rmtree(index)
    fresh = run(home, "stats", "--format", "json")
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(after_kill.stdout) == json.loads(fresh.stdout)
    counted = {w["workflow_id"]: w["sessions"] for w in json.loads(fresh.stdout)["workflows"]}
    assert counted["hello"] == N + 1
