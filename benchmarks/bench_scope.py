#!/usr/bin/env python3
"""Benchmark: `stats` and `readiness` of a workflow with a trust_scope, at size.

Writes N session files (default 10,000) of a `trust_scope: [env]` workflow spread over three
envs, as `run` records them, then times real processes: cold `stats --format json` (builds the
index), warm `stats` (median of --repeat), `readiness ship --var env=prod`, and the same warm
`stats` on an unscoped copy of the workflow for comparison, and warm `stats` and `readiness`
on a home whose sessions were all recorded before the workflow had its trust_scope (they count
toward the env in their variables: the index matches them at query time). Prints each number.

    .venv/bin/python benchmarks/bench_scope.py                    # 10,000 sessions
    .venv/bin/python benchmarks/bench_scope.py --sessions 2000    # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.engine.test_scope import WORKFLOW, _session  # noqa: E402  (the tests' own shapes)

ENVS = ("staging", "prod", "dev")


def home(root: Path, n: int, scoped: bool, legacy: bool = False) -> Path:
    h = root / ("legacy" if legacy else "scoped" if scoped else "plain")
    (h / "workflows").mkdir(parents=True)
    (h / "sessions").mkdir(mode=0o700)
    scope = "  trust_scope: [env]\n" if scoped else ""
    text = WORKFLOW.format(scope=scope, window=50, strict="true")
    (h / "workflows" / "ship.yaml").write_text(text)
    for i in range(n):
        data = _session(i, ENVS[i % 3], ["accept"] * 10, "full" if scoped and not legacy else "")
        (h / "sessions" / f"{data['id']}.json").write_text(json.dumps(data))
    return h


def timed(h: Path, *args: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(COACHCTL_HOME=str(h), COACHCTL_USER="bench")
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "coachctl", *args], env=env, capture_output=True)
    took = time.perf_counter() - began
    if done.returncode not in (0, 1):
        raise SystemExit(f"coachctl {' '.join(args)}: exit {done.returncode}: {done.stderr!r}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="coachctl-bench-scope."))
    try:
        scoped, plain = home(root, args.sessions, True), home(root, args.sessions, False)
        print(f"{args.sessions} sessions of a workflow with trust_scope [env] over 3 envs")
        print(
            f"cold stats (builds the index)     {timed(scoped, 'stats', '--format', 'json'):.3f} s"
        )
        warm = [timed(scoped, "stats", "--format", "json") for _ in range(args.repeat)]
        print(f"warm stats, 3 scopes (median)     {statistics.median(warm):.3f} s")
        ready = [
            timed(scoped, "readiness", "ship", "--var", "env=prod") for _ in range(args.repeat)
        ]
        print(f"readiness --var env=prod (median) {statistics.median(ready):.3f} s")
        timed(plain, "stats", "--format", "json")
        flat = [timed(plain, "stats", "--format", "json") for _ in range(args.repeat)]
        print(f"warm stats, unscoped (median)     {statistics.median(flat):.3f} s")
        shutil.rmtree(plain)
        old = home(root, args.sessions, True, legacy=True)
        timed(old, "stats", "--format", "json")
        warm = [timed(old, "stats", "--format", "json") for _ in range(args.repeat)]
        print(f"warm stats, sessions before trust_scope     {statistics.median(warm):.3f} s")
        ready = [timed(old, "readiness", "ship", "--var", "env=prod") for _ in range(args.repeat)]
        print(f"readiness --var env=prod, same home         {statistics.median(ready):.3f} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
