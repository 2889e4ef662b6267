"""Real processes for the reliability suite: start coachctl, wait bounded, read the home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

#: A worker that runs the real CLI entry point in a loop inside one process: real OS-level
#: concurrency on the real locks and files, without paying interpreter start-up per decision.
#: argv: HOME SESSION_ID COUNT DECISION SEED; prints one JSON line per successful decision.
#: DECISION `mix`: random decisions, accept never runs; `mixexec`: accept usually runs.
LOOP_WORKER = r"""
import json, random, sys
from click.testing import CliRunner
from coachctl.cli import cli

home, sid, decision = sys.argv[1], sys.argv[2], sys.argv[4]
count, seed = int(sys.argv[3]), int(sys.argv[5])
rng = random.Random(seed)
runner = CliRunner()
done = 0
attempts = 0
while done < count:
    attempts += 1
    if attempts > count * 200:
        sys.exit("worker: too many attempts")
    # Readers take no lock: a session file is always whole (atomic replace).
    with open(f"{home}/sessions/{sid}.json", "rb") as fh:
        state = json.loads(fh.read())
    if state["status"] == "paused":
        continue
    if state["cursor"] >= len(state["steps"]):
        sys.exit("worker: session ran out of steps")
    step = state["steps"][state["cursor"]]["id"]
    d = decision
    if decision in ("mix", "mixexec"):
        d = rng.choice(["skip", "reject", "accept", "manual"])
    args = ["--home", home, "--lock-timeout", "30", "decide", sid, d, "--step", step]
    if d == "accept" and (decision != "mixexec" or rng.random() < 0.3):
        args.append("--no-exec")
    res = runner.invoke(cli, args)
    if res.exit_code == 0:
        done += 1
        print(json.dumps({"session": sid, "step": step, "decision": d}), flush=True)
    elif res.exit_code == 3:
        continue
    elif res.exit_code == 2 and "paused" in res.stderr:
        continue
    else:
        sys.exit(f"worker: decide exit {res.exit_code}: {res.stderr!r}")
"""


def coachctl(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "coachctl", "--home", str(home), *args]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["COACHCTL_USER"] = "tester"
    e.pop("COACHCTL_DEBUG", None)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def run(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        coachctl(home, *args), capture_output=True, text=True, timeout=timeout, env=env()
    )


def popen(home: Path, *args: str, own_group: bool = False) -> subprocess.Popen[str]:
    """A coachctl process; `own_group` puts it (and its command) in a process group to kill."""
    return subprocess.Popen(
        coachctl(home, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        start_new_session=own_group,
    )


def popen_python(code: str, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )


def many_steps(home: Path, name: str, n: int, run_cmd: str = "true") -> Path:
    """A workflow of `n` steps s0000…, each running `run_cmd`."""
    (home / "workflows").mkdir(parents=True, exist_ok=True)
    lines = [f"id: {name}", "steps:"]
    lines += [f"  - id: s{i:04d}\n    run: {json.dumps(run_cmd)}" for i in range(n)]
    path = home / "workflows" / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start(home: Path, workflow: str, *extra: str) -> str:
    res = run(home, "coach", workflow, "--no-input", "--format", "json", *extra)
    assert res.returncode == 0, res.stderr
    return str(json.loads(res.stdout)["session_id"])


def session_files(home: Path) -> dict[str, dict[str, Any]]:
    """Every `*.json` the sessions folder holds that is not hidden, parsed (must parse)."""
    out: dict[str, dict[str, Any]] = {}
    folder = home / "sessions"
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json") and not name.startswith("."):
            data = (folder / name).read_bytes()
            out[name[: -len(".json")]] = json.loads(data)
    return out


def finished(procs: Sequence[subprocess.Popen[str]], timeout: float) -> list[tuple[int, str, str]]:
    """Wait for every process (bounded); kill the rest and fail loudly on a hang."""
    results = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise AssertionError(f"process {p.args!r} hung for {timeout}s") from None
        results.append((p.returncode, out, err))
    return results


def successful_cursors(data: dict[str, Any]) -> list[int]:
    """Cursor of every decision that moved the session on (a failed run does not)."""
    return [d["cursor"] for d in data["decisions"] if d.get("outcome") != "failed"]


def wait_until(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    """Poll `predicate` every 20 ms until it is true; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")
