"""What `coachctl report` shows, gathered as plain dicts (no HTML here: see coachctl/report/).

This is the one module that knows where the report's data comes from, all of it through the
Store interface, so it works on every store: today's metrics (`history.report`), one summary
row per session (`list_sessions`), `level_changed` events (`read_events`), the correction
packs, and the newest sessions (`load`) for recent decisions with their commands. Whole
sessions are loaded only for those and for the two weeks the AUTO-run comparison looks at.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from coachctl.engine import metrics

if TYPE_CHECKING:
    from coachctl.store.base import Store

MAX_POINTS = 60  # one point per session up to this many, else this many equal time buckets
RECENT_SESSIONS = 30  # newest sessions of a workflow read for "recent decisions"
RECENT_PER_STEP = 5
CLOSEST = 5  # steps listed as closest to AUTO
MODES = ("observation", "coaching", "mixed", "auto")
WEEK = timedelta(days=7)
# The ids coachctl makes: 8 base-36 digits of the start time in ms, '-', 4 random ones. A
# session file someone named by hand has no start time to chart.
TIMED_ID = re.compile(r"[0-9a-z]{8}-[0-9a-z]{4}\Z")

# (id, mode, accepted, suggestions): what the report needs of each session
Row = tuple[str, "str | None", int, int]


def wilson_interval(successes: int, n: int) -> tuple[float, float] | None:
    """The 95% Wilson score interval; the upper bound is the lower bound of the failures."""
    low = metrics.wilson_lower_bound(successes, n)
    high = metrics.wilson_lower_bound(n - successes, n)
    if low is None or high is None:
        return None
    return low, 1.0 - high


def started_at(session_id: str) -> datetime:
    """A session id starts with its start time: 8 base-36 digits of milliseconds."""
    return datetime.fromtimestamp(int(session_id[:8], 36) / 1000, tz=timezone.utc)


def _at(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def id_floor(when: datetime) -> str:
    """The smallest session id started at or after `when` (ids sort by start time)."""
    ms = max(0, int(when.timestamp() * 1000))
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while ms:
        ms, r = divmod(ms, 36)
        out = digits[r] + out
    return out.rjust(8, "0")


def iso(when: datetime, timespec: str = "seconds") -> str:
    """UTC ISO-8601 with Z; charts use milliseconds (sessions a second apart stay apart)."""
    return when.astimezone(timezone.utc).isoformat(timespec=timespec).replace("+00:00", "Z")


# -- sources ---------------------------------------------------------------------------------


def session_rows(store: Store, workflow_id: str) -> list[Row]:
    """One row per readable session of the workflow, oldest first."""
    summaries, _ = store.list_sessions(workflow_id)
    return [(s["session_id"], s["mode"], s["accepted"], s["suggestions"]) for s in summaries]


def _load(store: Store, ids: Iterable[str]) -> Iterable[dict[str, Any]]:
    from coachctl.errors import CoachctlError

    for sid in ids:
        try:
            yield store.load(sid)
        except CoachctlError:
            continue  # gone or unreadable since it was listed: the warnings name it


def auto_runs(store: Store, rows: Sequence[Row], lo: datetime, hi: datetime) -> int:
    """Step runs no person decided (`decided_by: auto`) in sessions started in [lo, hi).
    Only `auto` and `mixed` sessions can hold them, so only those are loaded."""
    a, b = id_floor(lo), id_floor(hi)
    ids = [r[0] for r in rows if a <= r[0] < b and r[1] in ("auto", "mixed")]
    return sum(
        1
        for data in _load(store, ids)
        for d in data.get("decisions") or []
        if isinstance(d, dict) and d.get("decided_by") == "auto"
    )


def level_changes(store: Store, since: datetime | None) -> dict[str, list[dict[str, Any]]]:
    """`level_changed` events per workflow, oldest first (the store streams its log)."""
    from coachctl.engine.events import parse_time

    out: dict[str, list[dict[str, Any]]] = {}
    for event, _ in store.read_events("", ("level_changed",)):
        ts = event.get("ts")
        when = parse_time(ts) if isinstance(ts, str) else None
        wf = event.get("workflow_id")
        if when is None or not isinstance(wf, str) or (since is not None and when < since):
            continue
        step = event.get("step_id")
        out.setdefault(wf, []).append(
            {
                "ts": iso(when, "milliseconds"),
                "step_id": step if isinstance(step, str) and step else None,
                "from": str(event.get("from")),
                "to": str(event.get("to")),
            }
        )
    return out


def recent_decisions(
    store: Store, ids: Iterable[str], since: datetime | None
) -> dict[str, list[dict[str, Any]]]:
    """The newest decisions per step from these sessions, newest first (who, what, outcome)."""
    found: list[dict[str, Any]] = []
    for data in _load(store, ids):
        sid = str(data.get("id"))
        for d in data.get("decisions") or []:
            if not isinstance(d, dict) or not isinstance(d.get("step_id"), str):
                continue
            found.append(
                {
                    "session_id": sid,
                    "step_id": d["step_id"],
                    "decided_at": str(d.get("decided_at") or ""),
                    "decided_by": str(d.get("decided_by") or ""),
                    "decision": str(d.get("decision") or ""),
                    "outcome": d.get("outcome"),
                    "exit_code": d.get("exit_code"),
                    "command": d.get("command"),
                    "feedback": d.get("feedback"),
                }
            )
    floor = iso(since) if since is not None else ""
    found.sort(key=lambda d: (d["decided_at"], d["session_id"]), reverse=True)
    out: dict[str, list[dict[str, Any]]] = {}
    for d in found:
        if d["decided_at"] < floor:
            continue
        rows = out.setdefault(d["step_id"], [])
        if len(rows) < RECENT_PER_STEP:
            rows.append(d)
    return out


def corrections(store: Store, workflow_id: str) -> list[dict[str, Any]]:
    """The workflow's correction pack as `corrections list` rows (learned, adopted, corrected)."""
    from coachctl.engine import pack_share
    from coachctl.engine.corrections import load_pack
    from coachctl.engine.workflow_files import resolve_workflow_path
    from coachctl.engine.workflow_load import load_workflow
    from coachctl.errors import CoachctlError

    try:
        pack = load_pack(store, workflow_id)
    except CoachctlError:
        return []
    try:
        workflow = load_workflow(resolve_workflow_path(workflow_id, store.home))
    except CoachctlError:
        workflow = None
    return pack_share.rows(pack, workflow)


# -- shaping ---------------------------------------------------------------------------------


def series(rows: Sequence[Row], start: datetime | None, end: datetime) -> list[dict[str, Any]]:
    """Points for the charts: one per session when few, else equal time buckets, each with
    its pooled acceptance rate, Wilson interval and sessions by mode."""
    if not rows:
        return []
    # Milliseconds from the ids: no datetime per session (100,000 of them are a real cost).
    ms = [int(r[0][:8], 36) for r in rows]
    groups: list[tuple[Sequence[Row], datetime, datetime]]
    if len(rows) <= MAX_POINTS:
        groups = [([r], _at(m), _at(m)) for r, m in zip(rows, ms, strict=True)]
    else:
        lo = int(start.timestamp() * 1000) if start is not None else ms[0]
        width = max(max(int(end.timestamp() * 1000), ms[-1]) - lo, 1000) / MAX_POINTS
        buckets: list[list[Row]] = [[] for _ in range(MAX_POINTS)]
        for r, m in zip(rows, ms, strict=True):
            buckets[min(max(int((m - lo) / width), 0), MAX_POINTS - 1)].append(r)
        groups = [
            (b, _at(lo + i * width), _at(lo + (i + 1) * width)) for i, b in enumerate(buckets) if b
        ]
    out = []
    for group, t0, t1 in groups:
        accepted = sum(r[2] for r in group)
        suggestions = sum(r[3] for r in group)
        interval = wilson_interval(accepted, suggestions)
        modes = dict.fromkeys(MODES, 0)
        for r in group:
            key = r[1] if r[1] in modes else "mixed"
            modes[key] = modes.get(key, 0) + 1
        out.append(
            {
                "start": iso(t0, "milliseconds"),
                "end": iso(t1, "milliseconds"),
                "sessions": len(group),
                "session_id": group[0][0] if len(group) == 1 else None,
                "accepted": accepted,
                "suggestions": suggestions,
                "rate": metrics.round_metric(accepted / suggestions if suggestions else None),
                "low": metrics.round_metric(interval[0]) if interval else None,
                "high": metrics.round_metric(interval[1]) if interval else None,
                "modes": modes,
            }
        )
    return out


def _closest(workflows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    steps = [
        {"workflow_id": w["workflow_id"], **s}
        for w in workflows
        for s in w["steps"]
        if not s["ready"] and s.get("accepts_needed") is not None
    ]
    steps.sort(key=lambda s: (s["accepts_needed"], -(s["confidence"] or 0.0)))
    keys = ("workflow_id", "step_id", "accepts_needed", "acceptance_rate", "confidence", "level")
    return [{k: s.get(k) for k in keys} | {"scope": s.get("scope")} for s in steps[:CLOSEST]]


def gather(
    store: Store,
    refs: Sequence[str] = (),
    *,
    since: datetime | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Everything the report shows, for the named workflows (default: all), as plain data.

    `since` limits the history shown (sessions, level changes, recent decisions); levels,
    readiness and metrics are always today's, as `stats` shows them.
    """
    from coachctl.engine import history

    now = now or datetime.now(timezone.utc)
    rep = history.report(store, refs)
    changes = level_changes(store, since)
    four_weeks = now - 4 * WEEK
    since_id = id_floor(since) if since is not None else ""
    workflows: list[dict[str, Any]] = []
    auto_last = auto_before = 0
    for w in rep.workflows:
        wf = str(w["workflow_id"])
        every = session_rows(store, wf)
        rows = [r for r in every if TIMED_ID.match(r[0])]
        auto_last += auto_runs(store, rows, now - WEEK, now + timedelta(days=1))
        auto_before += auto_runs(store, rows, four_weeks, four_weeks + WEEK)
        shown = [r for r in rows if r[0] >= since_id]
        item = dict(w)
        item["series"] = series(shown, since, now)
        item["sessions_shown"] = len(shown)
        item["untimed_sessions"] = len(every) - len(rows)
        item["level_changes"] = changes.get(wf, [])
        # A scope's object shows its own entries and those for every scope (scope null).
        item["corrections"] = [
            r
            for r in corrections(store, wf)
            if not w.get("scope") or r["scope"] in (None, w["scope"])
        ]
        newest = [r[0] for r in reversed(every[-RECENT_SESSIONS:])]
        item["recent"] = recent_decisions(store, newest, since)
        workflows.append(item)
    levels = dict.fromkeys(metrics.LEVELS, 0)
    for w in workflows:
        levels[w["level"]] = levels.get(w["level"], 0) + 1
    warnings = list(rep.warnings) + [f"left out {b.reason}" for b in rep.bad]
    return {
        "generated_at": iso(now),
        "since": iso(since) if since is not None else None,
        "home": str(store.home),
        "warnings": warnings,
        "summary": {
            **rep.global_,
            "levels": levels,
            "auto_runs_last_week": auto_last,
            "auto_runs_four_weeks_ago": auto_before,
            "closest": _closest(rep.workflows),
        },
        "workflows": workflows,
    }
