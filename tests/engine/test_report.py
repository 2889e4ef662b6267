"""engine/report.py: what the report shows, gathered from the index, events, packs, files."""

from __future__ import annotations

import json
import os
import random
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from coachctl.engine import metrics
from coachctl.engine import report as rp
from coachctl.engine.stores import file_store
from tests.conftest import Cli
from tests.report import seed

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def gather(home: Path, *refs: str, **kw: Any) -> dict[str, Any]:
    store = file_store(home, use_index=kw.pop("use_index", True))
    return rp.gather(store, refs, now=kw.pop("now", NOW), **kw)


def hello(data: dict[str, Any]) -> dict[str, Any]:
    return next(w for w in data["workflows"] if w["workflow_id"] == "hello")


@pytest.fixture
def tmpl(cli: Cli) -> dict[str, Any]:
    (cli.home / "sessions").mkdir(exist_ok=True)
    return seed.template(cli)


def test_wilson_interval_brackets_the_rate_and_mirrors_the_lower_bound() -> None:
    assert rp.wilson_interval(0, 0) is None
    for k, n in [(0, 5), (3, 5), (5, 5), (17, 20), (1, 1)]:
        interval = rp.wilson_interval(k, n)
        assert interval is not None
        low, high = interval
        assert low == metrics.wilson_lower_bound(k, n)
        assert low <= k / n <= high <= 1.0
    low, high = rp.wilson_interval(8, 10) or (0.0, 0.0)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)  # the textbook 95% interval


def test_ids_sort_by_start_and_the_floor_finds_them() -> None:
    rng = random.Random(1)
    at = datetime(2026, 3, 1, 8, 30, tzinfo=timezone.utc)
    sid = seed.session_id(at, rng)
    assert rp.started_at(sid) == at
    assert rp.id_floor(at) <= sid < rp.id_floor(at + timedelta(milliseconds=1))


def test_one_point_per_session_with_its_interval_and_mode(cli: Cli, tmpl: dict[str, Any]) -> None:
    rng = random.Random(2)
    a = seed.write_session(cli.home, tmpl, NOW - timedelta(days=3), "coaching",
                           [("accept", "ok"), ("reject", None), ("accept", "ok")], rng)  # fmt: skip
    b = seed.write_session(cli.home, tmpl, NOW - timedelta(days=2), "observation",
                           [("manual", None)] * 3, rng)  # fmt: skip
    c = seed.write_session(cli.home, tmpl, NOW - timedelta(days=1), "auto",
                           [("accept", "ok")] * 3, rng)  # fmt: skip
    w = hello(gather(cli.home))
    assert [p["session_id"] for p in w["series"]] == [a, b, c]
    first, second, third = w["series"]
    assert (first["accepted"], first["suggestions"], first["rate"]) == (2, 3, 0.667)
    low, high = rp.wilson_interval(2, 3) or (0, 0)
    assert (first["low"], first["high"]) == (metrics.round_metric(low), metrics.round_metric(high))
    assert first["modes"] == {"observation": 0, "coaching": 1, "mixed": 0, "auto": 0}
    # Observation reports and clean AUTO runs judge nothing: no rate, but they are sessions.
    assert second["rate"] is None and second["modes"]["observation"] == 1
    assert third["rate"] is None and third["modes"]["auto"] == 1


def test_many_sessions_become_time_buckets_that_keep_every_count(
    cli: Cli, tmpl: dict[str, Any]
) -> None:
    rng = random.Random(3)
    n = rp.MAX_POINTS * 3
    for i in range(n):
        kinds = [("accept", "ok"), ("reject", None), ("accept", "ok")]
        seed.write_session(cli.home, tmpl, NOW - timedelta(hours=n - i), "coaching", kinds, rng)
    w = hello(gather(cli.home))
    assert 1 < len(w["series"]) <= rp.MAX_POINTS
    assert sum(p["sessions"] for p in w["series"]) == n == w["sessions_shown"]
    assert sum(p["accepted"] for p in w["series"]) == 2 * n
    starts = [p["start"] for p in w["series"]]
    assert starts == sorted(starts)
    assert all(p["session_id"] is None for p in w["series"] if p["sessions"] > 1)


def test_since_limits_the_history_not_todays_metrics(cli: Cli, tmpl: dict[str, Any]) -> None:
    rng = random.Random(4)
    for days in (20, 10, 2):
        seed.write_session(cli.home, tmpl, NOW - timedelta(days=days), "coaching",
                           [("accept", "ok")] * 3, rng)  # fmt: skip
    everything = hello(gather(cli.home))
    recent = hello(gather(cli.home, since=NOW - timedelta(days=5)))
    assert (everything["sessions_shown"], recent["sessions_shown"]) == (3, 1)
    assert recent["sessions"] == everything["sessions"] == 3
    assert recent["steps"] == everything["steps"]
    assert all(d["decided_at"] >= "2026-11-25" for ds in recent["recent"].values() for d in ds)


def test_auto_runs_last_week_against_the_week_four_weeks_ago(
    cli: Cli, tmpl: dict[str, Any]
) -> None:
    rng = random.Random(5)
    auto = [("accept", "ok")] * 3
    for days in (1, 3, 6):  # last week: 3 sessions x 3 AUTO runs
        seed.write_session(cli.home, tmpl, NOW - timedelta(days=days), "auto", auto, rng)
    seed.write_session(cli.home, tmpl, NOW - timedelta(days=24), "auto", auto, rng)  # 4 wk ago
    seed.write_session(cli.home, tmpl, NOW - timedelta(days=12), "auto", auto, rng)  # neither
    seed.write_session(cli.home, tmpl, NOW - timedelta(days=40), "auto", auto, rng)  # neither
    s = gather(cli.home)["summary"]
    assert (s["auto_runs_last_week"], s["auto_runs_four_weeks_ago"]) == (9, 3)
    # --since shortens what is shown, never the comparison
    s = gather(cli.home, since=NOW - timedelta(days=2))["summary"]
    assert (s["auto_runs_last_week"], s["auto_runs_four_weeks_ago"]) == (9, 3)


def test_index_and_files_agree(cli: Cli) -> None:
    """The file store answers from its index; answering from the session files gives the
    same report."""
    seed.seeded(cli, NOW - timedelta(days=1))
    fast = gather(cli.home)
    slow = gather(cli.home, use_index=False)
    assert json.dumps(fast, sort_keys=True) == json.dumps(slow, sort_keys=True)
    assert sum(p["sessions"] for p in hello(fast)["series"]) == hello(fast)["sessions"]


def test_whole_sessions_are_loaded_only_for_recent_decisions_and_auto_weeks(
    cli: Cli, tmpl: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from coachctl.store.files.store import FileStore

    rng = random.Random(6)
    n = rp.RECENT_SESSIONS * 4
    for i in range(n):  # one a day, every fourth an auto run (4, 8, 12, … days ago)
        mode = "auto" if i % 4 == 0 else "coaching"
        seed.write_session(cli.home, tmpl, NOW - timedelta(days=n - i), mode,
                           [("accept", "ok")] * 3, rng)  # fmt: skip
    loads: list[str] = []
    real = FileStore.load

    def counting(self: FileStore, session_id: str) -> dict[str, Any]:
        loads.append(session_id)
        return real(self, session_id)

    monkeypatch.setattr(FileStore, "load", counting)
    data = gather(cli.home, "hello")
    assert hello(data)["sessions_shown"] == n
    # 30 newest, plus the auto sessions of the last week and of the week four weeks ago
    assert len(set(loads)) <= rp.RECENT_SESSIONS + 2 * 2
    s = data["summary"]
    # auto sessions 4 days ago (last week) and 28 and 24 days ago (four weeks ago)
    assert (s["auto_runs_last_week"], s["auto_runs_four_weeks_ago"]) == (3, 6)


def test_a_warm_report_reads_no_session_file_beyond_the_ones_it_loads(
    cli: Cli, tmpl: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Summaries come from the index (no full scan of the sessions folder), level changes
    from the events of that kind only."""
    from coachctl.store.files import events as log
    from coachctl.store.files import full

    rng = random.Random(7)
    n = rp.RECENT_SESSIONS * 3
    for i in range(n):
        seed.write_session(cli.home, tmpl, NOW - timedelta(days=n - i), "coaching",
                           [("accept", "ok")] * 2, rng)  # fmt: skip
    old = time.time_ns() - 10**10  # files older than the index's racy second: not re-read
    for path in [*(cli.home / "sessions").glob("*.json"), cli.home / "sessions"]:
        os.utime(path, ns=(old, old))
    assert cli("stats").exit_code in (0, 1)  # the index exists, as after any `decide`
    scans: list[int] = []
    real_scan = full.FullScan.__init__

    def scanning(self: Any, *args: Any, **kw: Any) -> None:
        scans.append(1)
        real_scan(self, *args, **kw)

    kinds: list[object] = []
    real_read = log.read

    def reading(*args: Any) -> Any:
        kinds.append(args[2:])
        return real_read(*args)

    monkeypatch.setattr(full.FullScan, "__init__", scanning)
    monkeypatch.setattr(log, "read", reading)
    store = file_store(cli.home)
    data = rp.gather(store, ["hello"], now=NOW)
    assert hello(data)["sessions_shown"] == n
    assert scans == []
    idx = store.index()
    assert idx is not None and idx.reads == 0
    assert kinds == [(("level_changed",),)]


def test_level_changes_come_from_the_event_log(cli: Cli) -> None:
    seed.seeded(cli, NOW)
    out = cli("events", "--workflow", "hello", "--format", "json")
    logged = [json.loads(line) for line in out.stdout.splitlines()]
    logged = [e for e in logged if e["event"] == "level_changed"]
    assert logged, "the journey should have moved a level"
    log = cli.home / "sessions" / "events.jsonl"
    with open(log, "ab") as fh:  # garbage and a torn last line are skipped
        fh.write(b'not json "level_changed"\n{"event": "level_changed", "ts": "2026-1')
    w = hello(gather(cli.home, now=datetime.now(timezone.utc)))
    assert [(c["step_id"], c["from"], c["to"]) for c in w["level_changes"]] == [
        (e["step_id"], e["from"], e["to"]) for e in logged
    ]
    later = gather(cli.home, since=datetime.now(timezone.utc) + timedelta(minutes=1))
    assert hello(later)["level_changes"] == []


def test_recent_decisions_carry_who_outcome_and_feedback(cli: Cli) -> None:
    seed.seeded(cli, NOW - timedelta(days=1))
    w = hello(gather(cli.home, now=datetime.now(timezone.utc)))
    look = w["recent"]["look"]
    assert len(look) == rp.RECENT_PER_STEP
    newest = look[0]
    assert (newest["decision"], newest["decided_by"]) == ("reject", "tester")
    assert newest["feedback"] == seed.HOSTILE_FEEDBACK
    assert [d["decided_at"] for d in look] == sorted((d["decided_at"] for d in look), reverse=True)
    assert w["recent"]["clock"][0]["command"] == seed.HOSTILE_CORRECTION
    assert any(r["correction"] == seed.HOSTILE_CORRECTION for r in w["corrections"])


def test_summary_levels_and_the_steps_closest_to_auto(cli: Cli) -> None:
    seed.seeded(cli, NOW - timedelta(days=1))
    data = gather(cli.home, now=datetime.now(timezone.utc))
    s = data["summary"]
    assert sum(s["levels"].values()) == s["workflows"] == len(data["workflows"])
    needed = [c["accepts_needed"] for c in s["closest"]]
    assert needed == sorted(needed) and len(needed) <= rp.CLOSEST
    steps = {(w["workflow_id"], x["step_id"]): x for w in data["workflows"] for x in w["steps"]}
    for c in s["closest"]:
        step = steps[(c["workflow_id"], c["step_id"])]
        assert not step["ready"] and step["accepts_needed"] == c["accepts_needed"]


def test_named_workflows_only_and_unknown_is_a_usage_error(cli: Cli) -> None:
    from coachctl.errors import UsageError

    seed.seeded(cli, NOW - timedelta(days=1))
    data = gather(cli.home, "odd")
    assert [w["workflow_id"] for w in data["workflows"]] == ["odd"]
    with pytest.raises(UsageError):
        gather(cli.home, "nope")


def test_a_hand_named_session_is_counted_but_not_charted(cli: Cli, tmpl: dict[str, Any]) -> None:
    rng = random.Random(8)
    seed.write_session(cli.home, tmpl, NOW - timedelta(days=1), "coaching",
                       [("accept", "ok")] * 3, rng)  # fmt: skip
    data = dict(tmpl, id="my-old_run.1")
    (cli.home / "sessions" / "my-old_run.1.json").write_text(json.dumps(data))
    w = hello(gather(cli.home, since=NOW - timedelta(days=3)))
    assert w["sessions"] == 2
    assert (w["sessions_shown"], w["untimed_sessions"]) == (1, 1)
    assert len(w["series"]) == 1


def test_sessions_within_one_second_keep_their_own_place(cli: Cli, tmpl: dict[str, Any]) -> None:
    """The README's journey makes sessions a fraction of a second apart: each keeps its x."""
    from coachctl.report import svg

    rng = random.Random(9)
    for ms in (0, 300, 600):
        seed.write_session(cli.home, tmpl, NOW + timedelta(milliseconds=ms), "coaching",
                           [("accept", "ok")] * 3, rng)  # fmt: skip
    w = hello(gather(cli.home, now=NOW + timedelta(seconds=1)))
    assert len({p["start"] for p in w["series"]}) == 3
    chart = svg.trust_chart(w)
    dots = [part.split('"')[0] for part in chart.split('class="dot" cx="')[1:]]
    assert len(set(dots)) == 3, dots
