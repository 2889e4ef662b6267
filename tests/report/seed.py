"""Seeded homes for the report's tests: weeks of history plus a real journey.

The history is written the way a synced home looks (bench_stats does the same): session
files copied from one real session made with the CLI, with older ids, times, modes and
decisions. The journey at the end goes through the real CLI, so level changes, the
correction pack and the hostile strings are what coachctl itself recorded.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.conftest import Cli, write_workflow

B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
HOSTILE_FEEDBACK = '<script>alert("feedback")</script>'
HOSTILE_CORRECTION = "date -u +%s # <b>bold</b> & <img src=http://evil.example/x.png>"
HOSTILE_NAME = "<img src=x onerror=alert(1)> & friends"
HOSTILE_WORKFLOW = f"""
id: odd
name: "{HOSTILE_NAME}"
coaching:
  min_decisions: 3
  strict: false
steps:
  - id: fetch
    run: echo '<a href="http://evil.example/">click</a>'
  - id: note
    instructions: "<style>body{{display:none}}</style> write it down"
"""


def base36(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = B36[r] + out
    return out.rjust(width, "0")


def session_id(at: datetime, rng: random.Random) -> str:
    return base36(int(at.timestamp() * 1000), 8) + "-" + base36(rng.randrange(36**4), 4)


def stamp(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def template(cli: Cli, workflow: str = "hello") -> dict[str, Any]:
    """One real, completed session made with the CLI (then removed from the home)."""
    sid = cli.start(workflow)
    for _ in range(10):
        r = cli("decide", sid, "accept", "--no-exec")
        assert r.exit_code == 0, r.stderr
        if "status completed" in r.stdout:
            break
    path = cli.home / "sessions" / f"{sid}.json"
    data: dict[str, Any] = json.loads(path.read_text())
    path.unlink()
    return data


def write_session(
    home: Path,
    tmpl: dict[str, Any],
    at: datetime,
    mode: str,
    decisions: Sequence[tuple[str, str | None]],
    rng: random.Random,
    *,
    by: str = "alice",
    feedback: str | None = None,
) -> str:
    """A copy of `tmpl` started at `at`; decisions are (decision, outcome) per step in order."""
    sid = session_id(at, rng)
    data = dict(tmpl, id=sid, mode=mode, created_at=stamp(at))
    out = []
    for j, (kind, outcome) in enumerate(decisions):
        base = dict(tmpl["decisions"][j % len(tmpl["decisions"])])
        step = tmpl["steps"][j % len(tmpl["steps"])]
        base.update(
            step_id=step["id"],
            suggestion=step["suggestion"],
            decision=kind,
            outcome=outcome,
            mode=mode,
            decided_by="auto" if mode == "auto" else by,
            decided_at=stamp(at + timedelta(seconds=30 * (j + 1))),
            feedback=feedback if kind == "reject" else None,
            command=step["command"] if kind == "accept" else base.get("command"),
        )
        out.append(base)
    data["decisions"] = out
    data["updated_at"] = out[-1]["decided_at"] if out else data["created_at"]
    data["status"] = "completed"
    data["cursor"] = len(tmpl["steps"])
    text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    (home / "sessions" / f"{sid}.json").write_text(text)
    return sid


def history(
    cli: Cli, now: datetime, *, weeks: int = 8, per_week: int = 4, seed: int = 7
) -> list[str]:
    """`weeks` of `hello` sessions: people first, then coaching with rising acceptance,
    then mixed and auto runs, so the learning curve and the shift to automation show."""
    rng = random.Random(seed)
    tmpl = template(cli)
    nsteps = len(tmpl["steps"])
    ids = []
    for w in range(weeks):
        for j in range(per_week):
            at = now - timedelta(weeks=weeks - w) + timedelta(days=j * 7 / per_week, hours=9)
            phase = w / max(weeks - 1, 1)
            mode = (
                "observation"
                if phase < 0.2
                else "coaching"
                if phase < 0.6
                else "auto"
                if j % 2
                else "mixed"
            )
            p = 0.55 + 0.45 * phase
            decisions: list[tuple[str, str | None]] = []
            for _ in range(nsteps):
                if mode == "observation":
                    decisions.append(("manual", None))
                elif mode == "auto" or rng.random() < p:
                    decisions.append(("accept", "ok"))
                else:
                    decisions.append(rng.choice([("reject", None), ("correct", "ok")]))
            ids.append(write_session(cli.home, tmpl, at, mode, decisions, rng, by="alice"))
    return ids


def journey(cli: Cli) -> str:
    """Real sessions through the CLI: hostile feedback, a correction, a hostile workflow."""
    sid = cli.start("hello")
    assert cli("decide", sid, "accept", "--no-exec").exit_code == 0
    r = cli("decide", sid, "correct", "--correction", HOSTILE_CORRECTION, "--no-exec")
    assert r.exit_code == 0, r.stderr
    r = cli("decide", sid, "reject", "--feedback", HOSTILE_FEEDBACK)
    assert r.exit_code == 0, r.stderr
    write_workflow(cli.home, "odd", HOSTILE_WORKFLOW)
    odd = cli.start("odd")
    assert cli("decide", odd, "reject", "--feedback", HOSTILE_FEEDBACK).exit_code == 0
    assert cli("decide", odd, "skip").exit_code == 0
    return sid


def seeded(cli: Cli, now: datetime | None = None) -> Path:
    """The report tests' home: history, then the real journey."""
    (cli.home / "sessions").mkdir(exist_ok=True)
    history(cli, now or datetime.now(timezone.utc))
    journey(cli)
    return cli.home
