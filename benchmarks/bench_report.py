#!/usr/bin/env python3
"""Benchmark: `coachctl report` over a big home (issue 13: 100,000 sessions in <= 5 s).

Builds a home of N sessions (default 100,000, ten decisions each) the way bench_stats.py
does (session files copied from one real session), plus an events log of the size such a
home has (session_started, one `decision` per decision, session_completed, and a
level_changed now and then: about 12 lines per session). Then measures, as real processes:

- `report -o FILE` cold (no index yet: the report builds it, as the first `stats` would);
- `report -o FILE` warm (median of --repeat runs; the index exists, as after any `decide`);
- `report --since 7d` warm (median);
- `stats --format json` warm, for comparison.

Target: warm report <= 5 s.

    .venv/bin/python benchmarks/bench_report.py                  # full size
    .venv/bin/python benchmarks/bench_report.py --sessions 2000  # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_stats import fill, new_home, run, template, timed


def events_log(home: Path) -> int:
    """An events log matching the sessions: what coachctl would have written for them."""
    lines = 0
    with open(home / "sessions" / "events.jsonl", "w", encoding="utf-8") as out:
        for i, path in enumerate(sorted((home / "sessions").glob("*.json"))):
            data = json.loads(path.read_text())
            base = {"session_id": data["id"], "workflow_id": data["workflow_id"]}
            rows = [{"ts": data["created_at"], "event": "session_started", "mode": "coaching"}]
            for d in data["decisions"]:
                rows.append(
                    {
                        "ts": d["decided_at"],
                        "event": "decision",
                        "step_id": d["step_id"],
                        "decision": d["decision"],
                        "decided_by": d["decided_by"],
                        "outcome": d.get("outcome"),
                    }
                )
            if i % 1000 == 999:
                rows.append(
                    {
                        "ts": data["updated_at"],
                        "event": "level_changed",
                        "step_id": "s1",
                        "from": "COACHING" if i % 2000 == 999 else "AUTO",
                        "to": "AUTO" if i % 2000 == 999 else "COACHING",
                    }
                )
            rows.append({"ts": data["updated_at"], "event": "session_completed"})
            for r in rows:
                out.write(json.dumps({**base, **r}, sort_keys=True, separators=(",", ":")) + "\n")
            lines += len(rows)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sessions", type=int, default=100_000, help="sessions in the home")
    ap.add_argument("--repeat", type=int, default=5, help="runs per median")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="coachctl-bench-report-"))
    try:
        t = time.perf_counter()
        tmpl = template(root)
        home = new_home(root, "big")
        fill(home, tmpl, args.sessions)
        lines = events_log(home)
        size = (home / "sessions" / "events.jsonl").stat().st_size
        print(
            f"built {args.sessions} sessions and {lines} event lines ({size / 1e6:.0f} MB) "
            f"in {time.perf_counter() - t:.0f}s",
            file=sys.stderr,
        )
        time.sleep(1.1)  # let the folder's mtime age past the racy window
        out = root / "report.html"
        cold = timed(home, "report", "-o", str(out))
        warm = statistics.median(timed(home, "report", "-o", str(out)) for _ in range(args.repeat))
        since = statistics.median(
            timed(home, "report", "--since", "7d", "-o", str(out)) for _ in range(args.repeat)
        )
        stats = statistics.median(
            timed(home, "stats", "--format", "json") for _ in range(args.repeat)
        )
        check = run(home, "report", "-o", str(out))
        assert check.returncode == 0, check.stderr
        rows = [
            ("report, cold (builds the index)", cold, ""),
            (
                f"report, warm (median of {args.repeat})",
                warm,
                f"target <= 5 s: {'ok' if warm <= 5 else 'MISSED'}",
            ),
            (f"report --since 7d, warm (median of {args.repeat})", since, ""),
            (f"stats --format json, warm (median of {args.repeat})", stats, ""),
        ]
        print(f"\n{'measurement':<48} {'seconds':>9}  note")
        for name, secs, note in rows:
            print(f"{name:<48} {secs:>9.3f}  {note}")
        print(f"\nreport size: {out.stat().st_size / 1e3:.0f} kB")
        print(
            f"machine: {os.cpu_count()} CPUs (nproc), Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}"
        )
        print(
            f"reproduce: {Path(sys.executable).name} benchmarks/bench_report.py "
            f"--sessions {args.sessions} --repeat {args.repeat}"
        )
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
