"""Inline SVG charts for the report, drawn from the gathered data (no library, no script).

Colours are CSS classes the page styles, so one chart reads in light mode, dark mode and on
paper. Every text that came from a session goes through `esc`. Tooltips are SVG `<title>`
elements: the browser shows them on hover without any JavaScript.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from html import escape
from typing import Any

from coachctl.engine.events import parse_time

WIDTH = 760
TRUST_H = 240
MODES_H = 130
EMPTY_H = 28
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 14, 30
PAD = 12  # keeps the first and last bar or dot off the axis labels
MODE_ORDER = ("observation", "coaching", "mixed", "auto")


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"


class _Axis:
    """Time → x and [0, 1] → y over one chart's plot area."""

    def __init__(self, lo: datetime, hi: datetime, height: int) -> None:
        if hi <= lo:
            lo, hi = lo - timedelta(hours=12), hi + timedelta(hours=12)
        self.lo, self.hi = lo, hi
        self.span = (hi - lo).total_seconds()
        self.height = height
        # Dates for weeks of history; clock times when everything happened within hours.
        self.fmt = (
            "%Y-%m-%d"
            if self.span > 2 * 86400
            else "%Y-%m-%d %H:%M"
            if self.span > 3600
            else "%H:%M:%S"
        )

    def x(self, when: datetime) -> float:
        frac = (when - self.lo).total_seconds() / self.span
        return LEFT + PAD + min(max(frac, 0.0), 1.0) * (WIDTH - LEFT - RIGHT - 2 * PAD)

    def y(self, value: float) -> float:
        return TOP + (1.0 - min(max(value, 0.0), 1.0)) * (self.height - TOP - BOTTOM)

    def time_labels(self) -> str:
        out = []
        base = self.height - BOTTOM + 16
        for frac, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
            when = self.lo + timedelta(seconds=self.span * frac)
            x = LEFT + PAD + frac * (WIDTH - LEFT - RIGHT - 2 * PAD)
            text = when.strftime(self.fmt)
            out.append(
                f'<text class="tick" x="{_num(x)}" y="{base}" text-anchor="{anchor}">{text}</text>'
            )
        return "".join(out)


def _when(text: str) -> datetime:
    value = parse_time(text)
    assert value is not None, text
    return value


def _mid(point: Mapping[str, Any]) -> datetime:
    a, b = _when(point["start"]), _when(point["end"])
    return a + (b - a) / 2


def domain(
    points: Sequence[Mapping[str, Any]], changes: Sequence[Mapping[str, Any]]
) -> tuple[datetime, datetime]:
    times = [_when(p["start"]) for p in points] + [_when(p["end"]) for p in points]
    times += [_when(c["ts"]) for c in changes]
    return min(times), max(times)


def _point_title(p: Mapping[str, Any]) -> str:
    who = f"session {p['session_id']}" if p.get("session_id") else f"{p['sessions']} sessions"
    when = p["start"] if p.get("session_id") else f"{p['start']} – {p['end']}"
    band = "" if p.get("low") is None else f", 95% interval {_pct(p['low'])}–{_pct(p['high'])}"
    return f"{when}: {who}, {p['accepted']}/{p['suggestions']} accepted ({_pct(p['rate'])}){band}"


def trust_chart(workflow: Mapping[str, Any]) -> str:
    """Acceptance per session (or time bucket) with its Wilson interval as a band, the
    threshold as a dashed line, and a marker where a step's (or the workflow's) level moved."""
    wf = str(workflow["workflow_id"])
    points: Sequence[Mapping[str, Any]] = workflow.get("series") or []
    changes: Sequence[Mapping[str, Any]] = workflow.get("level_changes") or []
    threshold = float(workflow.get("rules", {}).get("threshold", 0.85))
    label = f"Acceptance over time for {wf}"
    empty = not points and not changes
    head = (
        f'<svg class="chart trust" data-workflow="{esc(wf)}" '
        f'viewBox="0 0 {WIDTH} {EMPTY_H if empty else TRUST_H}" '
        f'role="img" aria-label="{esc(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{esc(label)}</title>"
    )
    if empty:
        return (
            head + f'<text class="empty" x="{LEFT}" y="{EMPTY_H // 2}" dy="4">'
            "no sessions in this period yet</text></svg>"
        )
    axis = _Axis(*domain(points, changes), TRUST_H)
    parts = [head]
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = _num(axis.y(v))
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/>')
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y}" dy="4" text-anchor="end">{v:.0%}</text>'
        )
    parts.append(axis.time_labels())
    # A session with no judged suggestion (observation, a clean AUTO run) has no rate: the
    # line goes from one judged point to the next (the modes chart shows the others).
    judged = [p for p in points if p.get("rate") is not None]
    for run in [judged] if judged else []:
        xs = [axis.x(_mid(p)) for p in run]
        if len(run) == 1:
            xs = [xs[0] - 3, xs[0] + 3]
            run = [run[0], run[0]]
        upper = " ".join(
            f"{_num(x)},{_num(axis.y(p['high']))}" for x, p in zip(xs, run, strict=True)
        )
        lower = " ".join(
            f"{_num(x)},{_num(axis.y(p['low']))}"
            for x, p in reversed(list(zip(xs, run, strict=True)))
        )
        parts.append(f'<polygon class="band" points="{upper} {lower}"/>')
        line = " ".join(
            f"{_num(x)},{_num(axis.y(p['rate']))}" for x, p in zip(xs, run, strict=True)
        )
        parts.append(f'<polyline class="rate" points="{line}"/>')
    ty = _num(axis.y(threshold))
    parts.append(f'<line class="threshold" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty}" y2="{ty}"/>')
    parts.append(
        f'<text class="threshold-label" x="{WIDTH - RIGHT - 4}" y="{ty}" dy="-4" '
        f'text-anchor="end">threshold {threshold:.0%}</text>'
    )
    for c in changes:
        x = _num(axis.x(_when(c["ts"])))
        who = c["step_id"] if c.get("step_id") else f"workflow {wf}"
        kind = "wf" if not c.get("step_id") else "step"
        parts.append(
            f'<g class="change {kind} to-{esc(str(c["to"]).lower())}">'
            f"<title>{esc(c['ts'])}: {esc(who)} {esc(c['from'])} → {esc(c['to'])}</title>"
            f'<line x1="{x}" x2="{x}" y1="{TOP}" y2="{TRUST_H - BOTTOM}"/>'
            f'<circle cx="{x}" cy="{TOP}" r="3.5"/></g>'
        )
    for p in points:
        if p.get("rate") is None:
            continue
        parts.append(
            f'<circle class="dot" cx="{_num(axis.x(_mid(p)))}" cy="{_num(axis.y(p["rate"]))}" '
            f'r="2.6"><title>{esc(_point_title(p))}</title></circle>'
        )
    parts.append("</svg>")
    return "".join(parts)


def modes_chart(workflow: Mapping[str, Any]) -> str:
    """Sessions per mode over the same periods, stacked: people giving way to automation."""
    wf = str(workflow["workflow_id"])
    points: Sequence[Mapping[str, Any]] = workflow.get("series") or []
    label = f"Sessions by mode over time for {wf}"
    head = (
        f'<svg class="chart modes" data-workflow="{esc(wf)}" viewBox="0 0 {WIDTH} {MODES_H}" '
        f'role="img" aria-label="{esc(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{esc(label)}</title>"
    )
    if not points:
        return head + "</svg>"
    axis = _Axis(*domain(points, ()), MODES_H)
    top = max(int(p["sessions"]) for p in points)
    # Bars stand at their time; as wide as the closest two allow, so none hides another.
    xs = [axis.x(_mid(p)) for p in points]
    gap = min((b - a for a, b in itertools.pairwise(xs)), default=WIDTH - LEFT - RIGHT)
    bar = max(min(gap * 0.8, 28.0), 1.5)
    parts = [head, axis.time_labels()]
    parts.append(
        f'<text class="tick" x="{LEFT - 6}" y="{TOP}" dy="4" text-anchor="end">{top}</text>'
    )
    parts.append(
        f'<text class="tick" x="{LEFT - 6}" y="{MODES_H - BOTTOM}" text-anchor="end">0</text>'
    )
    base = MODES_H - BOTTOM
    for p, mid in zip(points, xs, strict=True):
        x = mid - bar / 2
        y = float(base)
        for mode in MODE_ORDER:
            n = int(p["modes"].get(mode, 0))
            if not n:
                continue
            h = n / top * (base - TOP)
            y -= h
            parts.append(
                f'<rect class="mode-{mode}" x="{_num(x)}" y="{_num(y)}" width="{_num(bar)}" '
                f'height="{_num(h)}"><title>{esc(p["start"])}: {n} {mode}</title></rect>'
            )
    parts.append("</svg>")
    return "".join(parts)


def meter(rate: float | None, confidence: float | None, threshold: float) -> str:
    """A small bar: acceptance (solid), its confidence bound (tick) and the threshold."""
    w, h = 90, 10

    def x(v: float) -> str:
        return _num(min(max(v, 0.0), 1.0) * w)

    parts = [
        f'<svg class="meter" viewBox="0 0 {w} {h}" width="{w}" height="{h}" aria-hidden="true">'
    ]
    parts.append(f'<rect class="meter-bg" width="{w}" height="{h}" rx="2"/>')
    if rate is not None:
        parts.append(f'<rect class="meter-rate" width="{x(rate)}" height="{h}" rx="2"/>')
    if confidence is not None:
        parts.append(
            f'<line class="meter-conf" x1="{x(confidence)}" x2="{x(confidence)}" y1="0" y2="{h}"/>'
        )
    parts.append(
        f'<line class="meter-threshold" x1="{x(threshold)}" x2="{x(threshold)}" y1="0" y2="{h}"/>'
    )
    parts.append("</svg>")
    return "".join(parts)
