"""The runner's lease decides before the running mark: a step whose runner holds its lease is
running, whatever the mark says (a runner in a container writes a pid from another pid
namespace, which this process cannot check); once the runner is gone it is interrupted."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from tests.reliability._helpers import popen, run, start, wait_until


def _as_if_from_a_container(path: Path) -> None:
    """Rewrite the running mark as a runner in another pid namespace would have written it
    (same token; a pid this process cannot check)."""
    data = json.loads(path.read_text())
    data["running"]["pid_ns"] = "pid:[4026530000]"
    data["running"]["pid"] = 1
    tmp = path.with_name(".tmp-test")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def test_a_leased_step_is_running_even_when_its_mark_cannot_be_checked(
    home: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    (home / "workflows").mkdir(exist_ok=True)
    (home / "workflows" / "deploy.yaml").write_text(
        f"id: deploy\nsteps:\n  - id: push\n    run: echo ran >> {marker}; sleep 30\n"
    )
    sid = start(home, "deploy")
    runner = popen(home, "decide", sid, "accept", own_group=True)
    path = home / "sessions" / f"{sid}.json"
    try:
        wait_until(lambda: marker.exists() and json.loads(path.read_text()).get("running"))
        _as_if_from_a_container(path)
        again = run(home, "--lock-timeout", "2", "decide", sid, "accept")
        assert again.returncode == 3, again.stderr
        assert "is running" in again.stderr
        shown = run(home, "show", sid, "--format", "json")
        assert json.loads(shown.stdout)["step"]["status"] == "running"
    finally:
        os.killpg(runner.pid, signal.SIGKILL)
        runner.communicate(timeout=10)
    # The runner is gone: its lease with it. The step may have run: a person decides, and
    # nothing runs it again by itself.
    shown = run(home, "show", sid, "--format", "json")
    assert json.loads(shown.stdout)["step"]["status"] == "interrupted"
    assert marker.read_text() == "ran\n"
