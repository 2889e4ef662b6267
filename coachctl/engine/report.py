"""What `coachctl report` shows, gathered as plain dicts (no HTML here: see coachctl/report/).

This is the one module that knows where the report's data comes from: today's metrics
(`history.report`), the derived index for per-session rows, the events log for level changes,
the correction packs, and the newest session files for recent decisions. Nothing here reads
every session file unless the index cannot be used (a read-only home): 100,000 sessions must
stay a few indexed queries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from coachctl.engine import metrics

if TYPE_CHECKING:
    from coachctl.engine.store import Store

MAX_POINTS = 60  # one point per session up to this many, else this many equal time buckets
RECENT_SESSIONS = 30  # newest sessions of a workflow read for "recent decisions"
RECENT_PER_STEP = 5
CLOSEST = 5  # steps listed as closest to AUTO
MODES = ("observation", "coaching", "mixed", "auto")
WEEK = timedelta(days=7)
_CHUNK = 1 << 22
# The ids coachctl makes: 8 base-36 digits of the start time in ms, '-', 4 random ones. A
# session file someone named by hand has no start time to chart.
TIMED_ID = re.compile(r"[0-9a-z]{8}-[0-9a-z]{4}\Z")

# (id, mode, accepted, suggestions, auto_runs): what the index keeps per session
Row = tuple[str, "str | None", int, int, int]


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


class _Sessions:
    """Per-session rows and newest session ids: the index, else one pass over the files."""

    def __init__(self, store: Store) -> None:
        from coachctl.engine import history

        self.store = store
        self.index = history.open_index(store)
        self._rows: dict[str, list[Row]] | None = None
        if self.index is not None:
            try:
                if not self.index.complete:
                    self.index.refresh()
            except Exception:  # the index is a speed-up only: fall back to the files
                history.forget_index(store)
                self.index = None
        if self.index is None:
            self._rows = self._read_all()

    def _read_all(self) -> dict[str, list[Row]]:
        from coachctl.engine import history
        from coachctl.engine.index import extract

        out: dict[str, list[Row]] = {}
        for data in history.iter_sessions(self.store):
            srow, _ = extract(data)
            out.setdefault(srow[1], []).append((srow[0], srow[5], srow[3], srow[4], srow[6]))
        for rows in out.values():
            rows.sort()
        return out

    def rows(self, workflow_id: str, since_id: str) -> list[Row]:
        if self.index is not None:
            return self.index.session_series(workflow_id, since_id)
        assert self._rows is not None
        return [r for r in self._rows.get(workflow_id, []) if r[0] >= since_id]

    def newest_ids(self, workflow_id: str, n: int) -> list[str]:
        if self.index is not None:
            return self.index.latest_ids(workflow_id, n)
        assert self._rows is not None
        return [r[0] for r in reversed(self._rows.get(workflow_id, [])[-n:])]


def level_changes(store: Store, since: datetime | None) -> dict[str, list[dict[str, Any]]]:
    """`level_changed` events per workflow, oldest first.

    The log holds every event of every session; only lines naming the event are parsed, so
    a log of millions of lines costs one read, not millions of JSON parses.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    needle = b'"level_changed"'
    try:
        fh = open(store.events_path, "rb")  # noqa: SIM115 - closed below, read in chunks
    except OSError:
        return out
    with fh:
        rest = b""
        while True:
            chunk = fh.read(_CHUNK)
            if not chunk:
                break
            data = rest + chunk if rest else chunk
            end = data.rfind(b"\n") + 1
            hit = data.find(needle, 0, end)
            while hit >= 0:  # only the lines around a hit are cut out and parsed
                start = data.rfind(b"\n", 0, hit) + 1
                stop = data.find(b"\n", hit, end)
                _add_change(out, data[start:stop], since)
                hit = data.find(needle, stop, end)
            rest = data[end:]
    return out


def _add_change(out: dict[str, list[dict[str, Any]]], line: bytes, since: datetime | None) -> None:
    from coachctl.engine.events import parse_time

    try:
        event = json.loads(line)
    except ValueError:
        return  # a torn line left by a killed writer
    if not isinstance(event, dict) or event.get("event") != "level_changed":
        return
    ts = event.get("ts")
    when = parse_time(ts) if isinstance(ts, str) else None
    wf = event.get("workflow_id")
    if when is None or not isinstance(wf, str) or (since is not None and when < since):
        return
    step = event.get("step_id")
    out.setdefault(wf, []).append(
        {
            "ts": iso(when, "milliseconds"),
            "step_id": step if isinstance(step, str) else None,
            "from": str(event.get("from")),
            "to": str(event.get("to")),
        }
    )


def recent_decisions(
    store: Store, ids: Iterable[str], since: datetime | None
) -> dict[str, list[dict[str, Any]]]:
    """The newest decisions per step from these sessions, newest first (who, what, outcome)."""
    from coachctl.engine.index import read_session_file
    from coachctl.errors import CoachctlError

    found: list[dict[str, Any]] = []
    for sid in ids:
        try:
            data = read_session_file(store.session_path(sid))
        except CoachctlError:
            continue
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
    from coachctl.engine import learning
    from coachctl.engine.workflow import load_workflow, resolve_workflow_path
    from coachctl.errors import CoachctlError

    try:
        pack = learning.read_pack(store, workflow_id)
    except CoachctlError:
        return []
    try:
        workflow = load_workflow(resolve_workflow_path(workflow_id, store.home))
    except CoachctlError:
        workflow = None
    return learning.rows(pack, workflow)


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
                "auto_runs": sum(r[4] for r in group),
            }
        )
    return out


def _auto_runs(rows: Sequence[Row], lo: datetime, hi: datetime) -> int:
    a, b = id_floor(lo), id_floor(hi)
    return sum(r[4] for r in rows if a <= r[0] < b)


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
    sessions = _Sessions(store)
    changes = level_changes(store, since)
    four_weeks = now - 4 * WEEK
    floor = since if since is not None and since < four_weeks else four_weeks
    since_id = id_floor(since) if since is not None else ""
    workflows: list[dict[str, Any]] = []
    auto_last = auto_before = 0
    for w in rep.workflows:
        wf = str(w["workflow_id"])
        every = sessions.rows(wf, min(since_id, id_floor(floor)))
        rows = [r for r in every if TIMED_ID.match(r[0])]
        auto_last += _auto_runs(rows, now - WEEK, now + timedelta(days=1))
        auto_before += _auto_runs(rows, four_weeks, four_weeks + WEEK)
        shown = [r for r in rows if r[0] >= since_id]
        item = dict(w)
        item["series"] = series(shown, since, now)
        item["sessions_shown"] = len(shown)
        item["untimed_sessions"] = len(every) - len(rows)
        item["level_changes"] = changes.get(wf, [])
        item["corrections"] = corrections(store, wf)
        item["recent"] = recent_decisions(store, sessions.newest_ids(wf, RECENT_SESSIONS), since)
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
