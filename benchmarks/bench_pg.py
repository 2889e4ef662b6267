"""The PostgreSQL store, measured: decide vs the file store, stats at scale, and both with
20 ms of added round-trip latency (issue 9).

One run, on a throwaway cluster this script starts (tests/store/pg.py) or the server in
COACHCTL_TEST_PG:

- `decide SID accept --no-exec` on PostgreSQL vs on the file store, alternated (target
  <= 2.5x), medians of --runs real processes;
- `stats --format json` over --sessions sessions with 10 decisions each, seeded in SQL
  (target <= 0.3 s at 100,000 sessions / 1,000,000 decisions);
- both through a TCP proxy adding 10 ms each way (benchmarks/delayproxy.py): decide
  <= 0.5 s, stats <= 0.6 s; the proxy counts each command's round trips.

    .venv/bin/python benchmarks/bench_pg.py [--runs 15] [--sessions 100000]
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
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from delayproxy import DelayProxy  # noqa: E402

from tests.store.pg import Cluster  # noqa: E402

PY = sys.executable
STEPS = 10
WORKFLOW = "id: bench\nsteps:\n" + "".join(
    f"  - id: s{i}\n    run: echo step {i}\n" for i in range(STEPS)
)


def env(store: str | None) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("COACHCTL_STORE", "COACHCTL_DEBUG")}
    e.pop("PYTHONDONTWRITEBYTECODE", None)
    e["COACHCTL_USER"] = "bench"
    if store:
        e["COACHCTL_STORE"] = store
    return e


def coachctl(home: Path, store: str | None, *args: str) -> tuple[float, str]:
    began = time.perf_counter()
    done = subprocess.run(
        [PY, "-m", "coachctl", "--home", str(home), *args],
        capture_output=True,
        text=True,
        env=env(store),
        check=False,
    )
    took = time.perf_counter() - began
    if done.returncode not in (0, 1):
        raise SystemExit(f"coachctl {' '.join(args)}: exit {done.returncode}: {done.stderr}")
    return took, done.stdout


def new_home(root: Path, name: str) -> Path:
    home = root / name
    (home / "workflows").mkdir(parents=True)
    (home / "workflows" / "bench.yaml").write_text(WORKFLOW)
    return home


def start(home: Path, store: str | None) -> str:
    _, out = coachctl(home, store, "coach", "bench", "--no-input", "--format", "json")
    return str(json.loads(out)["session_id"])


def seed(url: str, sessions: int) -> float:
    """`sessions` completed sessions of `bench`, 10 decisions each (8 in 10 accepted)."""
    import psycopg2

    began = time.perf_counter()
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "BEGIN;"
            " INSERT INTO coachctl_sessions (id, workflow_id, status, mode, accepted,"
            "  suggestions, body, summary)"
            " SELECT 'seed' || lpad(g::text, 8, '0'), 'bench', 'completed', 'coaching', 8, 10,"
            "  json_build_object('id', 'seed' || lpad(g::text, 8, '0'), 'workflow_id', 'bench',"
            "   'status', 'completed', 'mode', 'coaching', 'cursor', 10, 'decisions', '[]'::json,"
            "   'steps', '[]'::json)::jsonb, '{}'::jsonb"
            " FROM generate_series(1, %(n)s) g;"
            " INSERT INTO coachctl_decisions (session_id, pos, seq, workflow_id, step_id,"
            "  suggestion, scope, kind)"
            " SELECT 'seed' || lpad(g::text, 8, '0'), p, g * 10 + p, 'bench', 's' || p,"
            "  'echo step ' || p, '', CASE WHEN (g + p) %% 10 < 8 THEN 'accepted' ELSE"
            "  'rejected' END"
            " FROM generate_series(1, %(n)s) g, generate_series(0, 9) p;"
            " SELECT setval('coachctl_decision_seq', %(n)s * 10 + 10);"
            " INSERT INTO coachctl_workflows VALUES ('bench', %(n)s) ON CONFLICT (workflow_id)"
            "  DO UPDATE SET sessions = coachctl_workflows.sessions + %(n)s;"
            " COMMIT;",
            {"n": sessions},
        )
        # What autovacuum does to a database that lives: index-only scans can count.
        cur.execute("VACUUM ANALYZE")
    conn.close()
    return time.perf_counter() - began


def new_home_once(root: Path) -> Path:
    """The floor of `stats`: the same command on a file store with no sessions."""
    home = root / "floor"
    if not home.exists():
        new_home(root, "floor")
    return home


def metrics_query_time(url: str) -> float:
    """The one metrics query `stats` sends, timed on its own (median of 5)."""
    import psycopg2

    from coachctl.store.postgres.metrics import metrics_query

    query = {
        "windows": [("bench", f"s{i}", f"echo step {i}", "", 50) for i in range(STEPS)],
        "workflows": ["bench"],
        "trend": 20,
    }
    conn = psycopg2.connect(url)
    took = []
    with conn.cursor() as cur:
        sql = metrics_query(cur, query)  # type: ignore[arg-type]
        for _ in range(5):
            began = time.perf_counter()
            cur.execute(sql)
            cur.fetchone()
            took.append(time.perf_counter() - began)
    conn.close()
    return median(took)


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--sessions", type=int, default=100_000)
    ap.add_argument("--one-way-ms", type=float, default=10.0)
    args = ap.parse_args()

    cluster = Cluster.from_env() or Cluster.start()
    root = Path(tempfile.mkdtemp(prefix="coachctl-bench-pg-"))
    try:
        url = cluster.create_database("bench")
        subprocess.run(
            [PY, "-m", "coachctl", "--store", url, "store", "upgrade"],
            check=True,
            capture_output=True,
            env=env(None),
        )
        file_home, pg_home = new_home(root, "files"), new_home(root, "pg")
        results: dict[str, Any] = {"runs": args.runs, "sessions": args.sessions}

        # decide --no-exec, alternated so both see the same machine state
        file_sid, pg_sid = start(file_home, None), start(pg_home, url)
        t_file: list[float] = []
        t_pg: list[float] = []
        for i in range(args.runs):
            if i % STEPS == STEPS - 1:  # keep a session with steps left to decide
                file_sid, pg_sid = start(file_home, None), start(pg_home, url)
            t_file.append(coachctl(file_home, None, "decide", file_sid, "accept", "--no-exec")[0])
            t_pg.append(coachctl(pg_home, url, "decide", pg_sid, "accept", "--no-exec")[0])
        results["decide_file_s"] = median(t_file)
        results["decide_pg_s"] = median(t_pg)
        results["decide_ratio"] = median(t_pg) / median(t_file)

        # stats at scale
        results["seed_s"] = seed(url, args.sessions)
        t_stats: list[float] = []
        t_floor: list[float] = []
        for _ in range(5):
            t_stats.append(coachctl(pg_home, url, "stats", "--format", "json")[0])
            t_floor.append(coachctl(new_home_once(root), None, "stats", "--format", "json")[0])
        results["stats_pg_s"] = median(t_stats)
        results["stats_floor_s"] = median(t_floor)
        results["metrics_query_s"] = metrics_query_time(url)

        # with added latency, counting round trips
        host, port = url.split("@", 1)[1].split("/", 1)[0].split(":")
        with DelayProxy((host, int(port)), one_way=args.one_way_ms / 1000) as proxy:
            slow = url.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}")
            sid = start(pg_home, slow)
            t_d: list[float] = []
            rt_d: list[int] = []
            t_s: list[float] = []
            rt_s: list[int] = []
            for i in range(min(args.runs, 9)):
                if i and i % (STEPS - 1) == 0:
                    sid = start(pg_home, slow)
                proxy.reset_count()
                t_d.append(coachctl(pg_home, slow, "decide", sid, "accept", "--no-exec")[0])
                rt_d.append(proxy.reset_count())
            for _ in range(5):
                proxy.reset_count()
                t_s.append(coachctl(pg_home, slow, "stats", "--format", "json")[0])
                rt_s.append(proxy.reset_count())
        results["rtt_ms"] = 2 * args.one_way_ms
        results["decide_rtt_s"] = median(t_d)
        results["decide_round_trips"] = int(median(rt_d))
        results["stats_rtt_s"] = median(t_s)
        results["stats_round_trips"] = int(median(rt_s))
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)

    rows = [
        ("decide --no-exec, file store", results["decide_file_s"], ""),
        ("decide --no-exec, PostgreSQL", results["decide_pg_s"],
         f"{results['decide_ratio']:.2f}x the file store (target <= 2.5x)"),
        (f"stats --format json, {args.sessions:,} sessions / {args.sessions * 10:,} decisions",
         results["stats_pg_s"], "target <= 0.3 s"),
        ("  its floor: stats on a file store with no sessions", results["stats_floor_s"], ""),
        ("  its one metrics query, on its own", results["metrics_query_s"], ""),
        (f"decide --no-exec, +{results['rtt_ms']:g} ms RTT", results["decide_rtt_s"],
         f"{results['decide_round_trips']} round trips (target <= 0.5 s)"),
        (f"stats --format json, +{results['rtt_ms']:g} ms RTT", results["stats_rtt_s"],
         f"{results['stats_round_trips']} round trips (target <= 0.6 s)"),
    ]  # fmt: skip
    print(f"seeding {args.sessions:,} sessions took {results['seed_s']:.1f} s")
    for what, secs, note in rows:
        print(f"{what:<62} {secs:7.3f} s  {note}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
