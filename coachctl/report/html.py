"""The report as one self-contained HTML page: inline CSS and SVG, no script, no network.

Everything that came from sessions or workflow files (ids, commands, feedback, names) is
escaped here, once, through `esc`: a `<script>` in a feedback shows as text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from coachctl.report import svg
from coachctl.report.svg import esc

CSS = """
:root { color-scheme: light dark;
  --bg: #ffffff; --fg: #1d2330; --muted: #5d6678; --line: #d9dee7; --card: #f5f7fa;
  --accent: #2563eb; --band: rgba(37, 99, 235, 0.18); --threshold: #b45309;
  --observation: #8b5cf6; --coaching: #f59e0b; --auto: #16a34a; --mixed: #0ea5e9;
  --bad: #dc2626; }
@media (prefers-color-scheme: dark) { :root {
  --bg: #11151c; --fg: #e6e9ef; --muted: #9aa3b5; --line: #2c3442; --card: #1a202b;
  --accent: #60a5fa; --band: rgba(96, 165, 250, 0.22); --threshold: #fbbf24;
  --observation: #a78bfa; --coaching: #fbbf24; --auto: #4ade80; --mixed: #38bdf8;
  --bad: #f87171; } }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 980px; padding: 24px; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 0 0 6px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.meta, .muted { color: var(--muted); } .meta { margin: 0 0 18px; }
code { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  overflow-wrap: anywhere; white-space: pre-wrap; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 10px 0 14px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 14px; min-width: 150px; }
.card b { display: block; font-size: 22px; }
.warn { color: var(--bad); }
nav ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 6px 14px; }
a { color: var(--accent); }
section.workflow { border-top: 2px solid var(--line); margin-top: 26px; padding-top: 16px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 10px; }
th, td { text-align: left; vertical-align: top; padding: 4px 8px;
  border-bottom: 1px solid var(--line); }
th { color: var(--muted); font-weight: 600; font-size: 12.5px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.level { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px;
  font-weight: 600; color: #fff; }
.level-OBSERVATION { background: var(--observation); }
.level-COACHING { background: var(--coaching); color: #1d2330; }
.level-AUTO { background: var(--auto); color: #0b2814; }
.ready { color: var(--auto); font-weight: 600; } .notready { color: var(--muted); }
.chart { width: 100%; height: auto; display: block; margin: 6px 0; }
.chart text { fill: var(--muted); font-size: 11px; }
.chart .grid { stroke: var(--line); stroke-width: 1; }
.chart .band { fill: var(--band); stroke: none; }
.chart .rate { fill: none; stroke: var(--accent); stroke-width: 2; }
.chart .dot { fill: var(--accent); }
.chart .threshold { stroke: var(--threshold); stroke-width: 1.5; stroke-dasharray: 6 4; }
.chart .threshold-label { fill: var(--threshold); }
.chart .change line { stroke-width: 1.2; stroke-dasharray: 2 3; }
.chart .change.wf line { stroke-width: 2; stroke-dasharray: none; }
.chart .change.to-auto line { stroke: var(--auto); }
.chart .change.to-auto circle { fill: var(--auto); }
.chart .change.to-coaching line { stroke: var(--coaching); }
.chart .change.to-coaching circle { fill: var(--coaching); }
.chart .change.to-observation line { stroke: var(--observation); }
.chart .change.to-observation circle { fill: var(--observation); }
.mode-observation, .key.observation { fill: var(--observation); background: var(--observation); }
.mode-coaching, .key.coaching { fill: var(--coaching); background: var(--coaching); }
.mode-mixed, .key.mixed { fill: var(--mixed); background: var(--mixed); }
.mode-auto, .key.auto { fill: var(--auto); background: var(--auto); }
.when, td:first-child code { white-space: nowrap; }
.legend { color: var(--muted); font-size: 12px; margin: 0 0 4px; }
.key { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 4px 0 10px; }
.key.band { background: var(--band); } .key.rate { background: var(--accent); }
.key.threshold { background: var(--threshold); } .key.change { background: var(--auto); }
.meter { vertical-align: middle; margin-right: 6px; }
.meter-bg { fill: var(--line); } .meter-rate { fill: var(--accent); }
.meter-conf { stroke: var(--fg); stroke-width: 2; }
.meter-threshold { stroke: var(--threshold); stroke-width: 2; }
footer { margin-top: 30px; color: var(--muted); font-size: 12px; }
@media print {
  :root { --bg: #fff; --fg: #000; --card: #fff; color-scheme: light; }
  body { max-width: none; padding: 0; font-size: 11px; } nav { display: none; }
  section.workflow { break-before: page; } .chart, table, tr { break-inside: avoid; }
}
"""


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def _when(ts: object) -> str:
    """`2026-11-29T03:49:13.692229Z` as `2026-11-29 03:49`, the full time on hover."""
    text = str(ts or "")
    short = text[:16].replace("T", " ") if len(text) >= 16 else text
    return f'<span class="when" title="{esc(text)}">{esc(short)}</span>'


def _level(level: str) -> str:
    return f'<span class="level level-{esc(level)}">{esc(level)}</span>'


def _ready(ready: bool) -> str:
    return (
        '<span class="ready">ready</span>' if ready else '<span class="notready">not ready</span>'
    )


def _code(value: object) -> str:
    return '<span class="muted">—</span>' if value in (None, "") else f"<code>{esc(value)}</code>"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], cls: str, nums: set[int]) -> str:
    """A table whose cells are already HTML (each caller escapes what it puts in)."""
    th = "".join(
        f'<th class="num">{esc(h)}</th>' if i in nums else f"<th>{esc(h)}</th>"
        for i, h in enumerate(head)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{c}</td>' if i in nums else f"<td>{c}</td>" for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _scope(value: object) -> str:
    if isinstance(value, Mapping) and value:
        return _code(", ".join(f"{k}={v}" for k, v in value.items()))
    return _code(None)


def summary(data: Mapping[str, Any]) -> str:
    s = data["summary"]
    levels = s["levels"]
    cards = [
        ("workflows", f"{s['workflows']}", f"{s['ready_workflows']} ready for AUTO"),
        *(
            (f"at {lv}", str(levels.get(lv, 0)), "workflows")
            for lv in ("OBSERVATION", "COACHING", "AUTO")
        ),
        ("sessions", str(s["sessions"]), f"acceptance {_pct(s['acceptance_rate'])}"),
        (
            "AUTO step runs, last 7 days",
            str(s["auto_runs_last_week"]),
            f"{s['auto_runs_four_weeks_ago']} in the week four weeks ago",
        ),
    ]
    html = ['<section class="summary"><h2>Summary</h2><div class="cards">']
    for title, big, small in cards:
        html.append(
            f'<div class="card"><span class="muted">{esc(title)}</span>'
            f"<b>{esc(big)}</b>{esc(small)}</div>"
        )
    html.append("</div>")
    closest = s.get("closest") or []
    html.append("<h3>Closest to AUTO</h3>")
    if closest:
        rows = [
            [
                f'<a href="#wf-{esc(c["workflow_id"])}">{esc(c["workflow_id"])}</a>',
                esc(c["step_id"]) + (" " + _scope(c["scope"]) if c.get("scope") else ""),
                esc(c["accepts_needed"]),
                _pct(c["acceptance_rate"]),
                _pct(c["confidence"]),
            ]
            for c in closest
        ]
        html.append(
            _table(
                ["workflow", "step", "accepts in a row needed", "acceptance", "confidence"],
                rows,
                "closest",
                {2, 3, 4},
            )
        )
    else:
        html.append(
            '<p class="muted">No step is on its way to AUTO yet (or every step is there).</p>'
        )
    html.append("</section>")
    return "".join(html)


def _steps(w: Mapping[str, Any]) -> str:
    threshold = float(w["rules"]["threshold"])
    steps = w["steps"]
    scoped = any(s.get("scope") for s in steps)
    head = ["step", *(["scope"] if scoped else []), "level", "acceptance", "confidence",
            "decisions", "accepts needed", "suggestion", "why not AUTO"]  # fmt: skip
    rows = []
    for s in steps:
        meter = svg.meter(s.get("acceptance_rate"), s.get("confidence"), threshold)
        rows.append(
            [
                f'<code class="step-id">{esc(s["step_id"])}</code>',
                *([_scope(s.get("scope"))] if scoped else []),
                _level(s["level"]),
                meter + _pct(s.get("acceptance_rate")),
                _pct(s.get("confidence")),
                esc(s["suggestions"]),
                "—" if s.get("accepts_needed") is None else esc(s["accepts_needed"]),
                _code(s.get("suggestion")),
                "" if s["ready"] else esc(s.get("reason") or ""),
            ]
        )
    off = 1 if scoped else 0
    return _table(head, rows, "steps", {3 + off, 4 + off, 5 + off})


def _changes(w: Mapping[str, Any]) -> str:
    changes = w.get("level_changes") or []
    if not changes:
        return '<p class="muted">No level changes in this period.</p>'
    rows = [
        [
            _when(c["ts"]),
            _code(c["step_id"]) if c.get("step_id") else "<b>workflow</b>",
            _level(c["from"]) + " → " + _level(c["to"]),
        ]
        for c in reversed(changes[-30:])
    ]
    more = f'<p class="muted">… and {len(changes) - 30} earlier.</p>' if len(changes) > 30 else ""
    return _table(["when", "what", "level"], rows, "changes", set()) + more


def _corrections(w: Mapping[str, Any]) -> str:
    from coachctl.engine.scope import label

    rows = w.get("corrections") or []
    if not rows:
        return '<p class="muted">Nothing learned, adopted or corrected yet.</p>'
    out = [
        [
            _code(r["step_id"]) + (f" ({esc(label(r['scope']))})" if r.get("scope") else ""),
            _code(r.get("base")),
            _code(r.get("correction")),
            esc(r.get("times")),
            esc(r.get("source") or ""),
            "yes" if r.get("adopted") else "",
            "stale" if r.get("stale") else "",
        ]
        for r in rows
    ]
    return _table(
        ["step", "suggestion", "people ran", "times", "source", "adopted", ""],
        out,
        "corrections",
        {3},
    )


def _recent(w: Mapping[str, Any]) -> str:
    recent: Mapping[str, Sequence[Mapping[str, Any]]] = w.get("recent") or {}
    order = [s["step_id"] for s in w["steps"]]
    order += sorted(k for k in recent if k not in order)
    rows = []
    for step_id in order:
        for d in recent.get(step_id, ()):
            outcome = d.get("outcome") or ""
            if d.get("exit_code") not in (None, 0):
                outcome = f"{outcome} (exit {d['exit_code']})".strip()
            rows.append(
                [
                    _code(step_id),
                    _when(d["decided_at"]),
                    esc(d["decided_by"]),
                    esc(d["decision"]),
                    esc(outcome),
                    _code(d.get("command")),
                    esc(d.get("feedback") or ""),
                ]
            )
    if not rows:
        return '<p class="muted">No decisions in this period.</p>'
    head = ["step", "when", "who", "decision", "outcome", "command", "feedback"]
    return _table(head, rows, "recent", set())


def _modes(w: Mapping[str, Any]) -> str:
    if not w.get("series"):
        return ""
    keys = "".join(f'<span class="key {m}"></span>{m}' for m in svg.MODE_ORDER)
    return f'<h3>Sessions by mode</h3><p class="legend">{keys}</p>{svg.modes_chart(w)}'


def workflow(w: Mapping[str, Any]) -> str:
    wf = str(w["workflow_id"])
    rules = w["rules"]
    name = f" — {esc(w['name'])}" if w.get("name") and w["name"] != wf else ""
    shown = w.get("sessions_shown", w["sessions"])
    return "".join(
        [
            f'<section class="workflow" id="wf-{esc(wf)}" data-workflow="{esc(wf)}">',
            f"<h2><code>{esc(wf)}</code>{name}</h2>",
            f"<p>{_level(w['level'])} {_ready(bool(w['ready']))} · {esc(w['sessions'])} sessions"
            f" ({esc(shown)} in this period) · acceptance {_pct(w['acceptance_rate'])}, "
            f"confidence {_pct(w['confidence'])}</p>",
            f'<p class="muted">AUTO needs acceptance ≥ {rules["threshold"]:.0%} over at least '
            f"{esc(rules['min_decisions'])} decisions (the last {esc(rules['window'])} count)"
            + (", with the 95% confidence bound there too" if rules.get("strict") else "")
            + ".</p>",
            "<h3>Acceptance over time</h3>",
            '<p class="legend"><span class="key rate"></span>acceptance per '
            + ("session" if all(p.get("session_id") for p in w.get("series") or []) else "period")
            + '<span class="key band"></span>95% Wilson interval'
            '<span class="key threshold"></span>threshold'
            '<span class="key change"></span>level change (hover for details)</p>',
            svg.trust_chart(w),
            (
                f'<p class="muted">{esc(w["untimed_sessions"])} sessions with hand-made ids '
                "(no start time in the id) are counted above but not charted.</p>"
                if w.get("untimed_sessions")
                else ""
            ),
            _modes(w),
            "<h3>Steps today</h3>",
            _steps(w),
            "<h3>Level changes</h3>",
            _changes(w),
            "<h3>Correction pack</h3>",
            _corrections(w),
            "<h3>Recent decisions</h3>",
            _recent(w),
            "</section>",
        ]
    )


def page(data: Mapping[str, Any]) -> str:
    """The whole report."""
    since = f" · since {esc(data['since'])}" if data.get("since") else ""
    warnings = "".join(f'<p class="warn">warning: {esc(x)}</p>' for x in data.get("warnings") or [])
    workflows = data["workflows"]
    nav = "".join(
        f'<li><a href="#wf-{esc(w["workflow_id"])}">{esc(w["workflow_id"])}</a> '
        f"{_level(w['level'])}</li>"
        for w in workflows
    )
    body = (
        "".join(workflow(w) for w in workflows)
        or '<p class="muted">No workflows in this home yet.</p>'
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>coachctl report · {esc(data['generated_at'])}</title>"
        f"<style>{CSS}</style></head><body>"
        "<header><h1>coachctl report</h1>"
        f'<p class="meta">generated {esc(data["generated_at"])}{since} · '
        f"home <code>{esc(data['home'])}</code></p>"
        f"{warnings}</header>"
        f"{summary(data)}"
        f"<nav><h3>Workflows</h3><ul>{nav}</ul></nav>"
        f"<main>{body}</main>"
        "<footer>Made by <code>coachctl report</code>. Levels and metrics are today's; charts show "
        "each session's acceptance (or a period's, pooled), judged suggestions only.</footer>"
        "</body></html>\n"
    )
