"""How much a coachctl command costs over the Python floor, as scripts run it.

One run measures, alternating each command with its floor so both see the same machine state:

- `coachctl --help` against `python -c "import click"` (target <= 1.2x);
- `coachctl decide SID accept --no-exec` against `python -c "import click, filelock, json"`
  (target <= 1.2x), and against the stricter `python -c "import click, json"` (decide no
  longer imports filelock);
- 8 concurrent writers (8 shell-style loops of `coachctl decide`, one session each):
  decisions per second over the wall time.

Every number is a median of `--runs` (>= 10) real processes of this interpreter.

    .venv/bin/python benchmarks/bench_cli.py [--runs 15] [--writer-decisions 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
REPO = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - began


def coachctl(home: Path, *args: str) -> list[str]:
    return [PY, "-m", "coachctl", "--home", str(home), *args]


def make_home(steps: int) -> Path:
    home = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    (home / "workflows").mkdir()
    body = "".join(f"  - id: s{i:04d}\n    run: echo {i}\n" for i in range(steps))
    (home / "workflows" / "bench.yaml").write_text(f"id: bench\nsteps:\n{body}")
    shutil.copy(REPO / "workflows" / "hello.yaml", home / "workflows" / "hello.yaml")
    return home


def start(home: Path, env: dict[str, str]) -> str:
    out = subprocess.run(
        coachctl(home, "coach", "bench", "--no-input", "--format", "json"),
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return str(json.loads(out.stdout)["session_id"])


def pair(a: list[str], b: list[str], runs: int, env: dict[str, str]) -> tuple[float, float]:
    """Medians of `a` and `b`, run alternately (one warm-up each, not counted)."""
    timed(a, env)
    timed(b, env)
    ta, tb = [], []
    for _ in range(runs):
        ta.append(timed(a, env))
        tb.append(timed(b, env))
    return statistics.median(ta), statistics.median(tb)


def decide_pair(
    home: Path, runs: int, env: dict[str, str], floor_imports: str
) -> tuple[float, float]:
    sid = start(home, env)
    floor = [PY, "-c", f"import {floor_imports}"]
    timed(coachctl(home, "decide", sid, "accept", "--no-exec"), env)
    timed(floor, env)
    td, tf = [], []
    for _ in range(runs):
        td.append(timed(coachctl(home, "decide", sid, "accept", "--no-exec"), env))
        tf.append(timed(floor, env))
    return statistics.median(td), statistics.median(tf)


def writers(home: Path, n: int, each: int, env: dict[str, str]) -> tuple[float, int]:
    sids = [start(home, env) for _ in range(n)]
    loop = (
        "import subprocess, sys\n"
        "for _ in range(int(sys.argv[3])):\n"
        "    subprocess.run([sys.executable, '-m', 'coachctl', '--home', sys.argv[1], 'decide',"
        " sys.argv[2], 'accept', '--no-exec'], check=True, stdout=subprocess.DEVNULL)\n"
    )
    began = time.perf_counter()
    procs = [subprocess.Popen([PY, "-c", loop, str(home), sid, str(each)], env=env) for sid in sids]
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - began
    assert codes == [0] * n, codes
    recorded = 0
    for sid in sids:
        data = json.loads((home / "sessions" / f"{sid}.json").read_bytes())
        recorded += len(data["decisions"])
    assert recorded == n * each, (recorded, n * each)
    return wall, recorded


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="runs per median (>= 10)")
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--writer-decisions", type=int, default=10, help="decisions per writer")
    args = ap.parse_args()
    runs = max(10, args.runs)
    env = dict(os.environ, COACHCTL_USER="bench")
    env.pop("COACHCTL_DEBUG", None)
    # Users run compiled modules (pip writes .pyc); without them every run recompiles coachctl.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    home = make_home(steps=max(2 * runs + 5, args.writer_decisions + 5))
    try:
        help_t, click_t = pair(coachctl(home, "--help"), [PY, "-c", "import click"], runs, env)
        decide_t, floor_t = decide_pair(home, runs, env, "click, filelock, json")
        # decide no longer imports filelock (Store.lock takes flock itself), so the floor
        # above is generous: also against the stricter floor, without it.
        decide2_t, floor2_t = decide_pair(home, runs, env, "click, json")
        wall, count = writers(home, args.writers, args.writer_decisions, env)
    finally:
        shutil.rmtree(home, ignore_errors=True)

    rows = [
        ("coachctl --help", help_t, 'python -c "import click"', click_t, 1.2),
        (
            "coachctl decide --no-exec",
            decide_t,
            'python -c "import click, filelock, json"',
            floor_t,
            1.2,
        ),
        ("coachctl decide --no-exec", decide2_t, 'python -c "import click, json"', floor2_t, 1.2),
    ]
    print(
        f"machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
    print(f"medians of {runs} runs, alternated with the floor in the same run\n")
    print("| command | median s | floor | floor s | ratio | target |")
    print("|---|---|---|---|---|---|")
    for name, t, fname, f, target in rows:
        ok = "ok" if t / f <= target else "MISSED"
        print(f"| `{name}` | {t:.3f} | `{fname}` | {f:.3f} | {t / f:.2f}x | <= {target}x {ok} |")
    print(
        f"| {args.writers} concurrent writers ({count} decides) | {wall:.2f} wall | | | "
        f"{count / wall:.1f} decisions/s | |"
    )
    print(
        f"\nreproduce: {Path(PY).relative_to(REPO) if PY.startswith(str(REPO)) else PY} "
        f"benchmarks/bench_cli.py --runs {runs}"
    )


if __name__ == "__main__":
    main()
