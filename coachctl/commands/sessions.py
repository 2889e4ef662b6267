"""`sessions` and `show`: what is in the home, and one session's history."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from coachctl.cli import warn
from coachctl.commands import _complete
from coachctl.commands._common import get_store, print_state
from coachctl.commands._output import View, emit_rows, output_options, to_json

SESSION_COLUMNS = (
    "session_id",
    "workflow_id",
    "mode",
    "status",
    "step",
    "done",
    "total",
    "updated_at",
)
SESSION_VIEW = View(
    (*SESSION_COLUMNS, "progress", "decisions", "started_by", "created_at"),
    ("session_id", "workflow_id", "mode", "status", "step", "progress", "updated_at"),
    shrink=("workflow_id", "step"),
    drop=("mode",),
)


SESSIONS_EPILOG = """\b
Examples:
  coachctl sessions --status paused
  coachctl sessions --workflow hello --format csv
  coachctl sessions --wide
"""


@click.command(epilog=SESSIONS_EPILOG)
@click.option(
    "--workflow",
    metavar="ID",
    help="Only this workflow's sessions.",
    shell_complete=_complete.workflows,
)
@click.option(
    "--status",
    type=click.Choice(["active", "paused", "completed", "cancelled", "failed"]),
    help="Only sessions with this status.",
)
@click.option(
    "--mode",
    type=click.Choice(["auto", "coaching", "observation", "mixed"]),
    help="Only this mode.",
)
@output_options(wide=True)
@click.pass_context
def sessions(
    ctx: click.Context,
    workflow: str | None,
    status: str | None,
    mode: str | None,
    fmt: str,
    table_format: str,
    wide: bool,
    columns: str | None,
) -> None:
    """List the home's sessions, oldest first."""
    from coachctl.engine import views

    rows, bad = views.list_sessions(get_store(ctx), workflow=workflow, status=status, mode=mode)
    for line in bad:
        warn(f"skipped {line}")
    if fmt == "table":  # "2/3" reads better than two columns; CSV and JSON keep done, total
        rows = [{**r, "progress": f"{r['done']}/{r['total']}"} for r in rows]
    emit_rows(rows, SESSION_COLUMNS, fmt, table_format, view=SESSION_VIEW, wide=wide, pick=columns)


TAIL_LINES = 5


SHOW_EPILOG = """\b
Examples:
  coachctl show                    # the most recent session
  coachctl show mx39hlpg-ode2 --wide
  coachctl show mx39hlpg --format json | jq '.decisions[-1]'
"""


@click.command(epilog=SHOW_EPILOG)
@click.argument("session", required=False, shell_complete=_complete.sessions)
@click.option(
    "--wide", is_flag=True, help="Whole output tails and lines, uncut (text; JSON has all)."
)
@output_options(("text", "json"))
@click.pass_context
def show(ctx: click.Context, session: str | None, wide: bool, fmt: str) -> None:
    """Show SESSION: its state and every decision made on it (command, outcome, feedback,
    the end of its output). Without SESSION: the most recent session."""
    from coachctl.commands._pick import latest
    from coachctl.engine import persist, views

    store = get_store(ctx)
    s = persist.load(store, session if session is not None else latest(store, None, "session"))
    state = views.state(store, s)
    if fmt == "json":
        state = dict(state)
        state["decisions"] = s.decisions
        state["steps"] = [
            {"id": st["id"], "name": st.get("name"), "suggestion": st.get("command")}
            for st in s.steps
        ]
        click.echo(to_json(state))
        return
    print_state(state, "text")
    click.echo("")
    if not s.decisions:
        click.echo("decisions: none yet")
        return
    from coachctl.commands._output import cut, terminal_width

    click.echo("decisions:")
    timeouts = {st["id"]: st.get("timeout") for st in s.steps}
    width = None if wide else terminal_width()
    for i, d in enumerate(s.decisions):
        for line in decision_lines(i + 1, d, timeouts.get(d.get("step_id")), wide):
            click.echo(line if width is None else cut(line, max(width - 1, 40)))


def decision_lines(
    n: int, d: Mapping[str, Any], timeout: float | None, wide: bool = False
) -> list[str]:
    """One decision as a person reads it: what, who, when; the command and how it ended;
    the feedback; the last lines of its output."""
    from coachctl.commands._output import short_time
    from coachctl.engine.outcome import outcome_text

    head = f"{n:>3}. {d.get('step_id')}  {d.get('decision')}"
    how = outcome_text(d, timeout)
    if how:
        took = d.get("duration")
        verdict = "ok" if d.get("outcome") == "ok" else "failed"
        if how.startswith(("stopped", "killed", "timed")):
            verdict = how
        elif how != "exit 0" or verdict != "ok":
            verdict = f"{verdict}, {how}"
        if isinstance(took, (int, float)):
            verdict += f" in {took:.1f}s"
        head += f" → {verdict}"
    head += f"  · {d.get('decided_by')} · {short_time(str(d.get('decided_at')))}"
    lines = [head]
    pad = " " * 6
    if d.get("command"):
        lines.extend(_prefixed(str(d["command"]), f"{pad}$ ", f"{pad}  "))
    elif d.get("suggestion") and d.get("decision") in ("reject", "skip"):
        lines.extend(_prefixed(str(d["suggestion"]), f"{pad}(not run) $ ", f"{pad}  "))
    if d.get("feedback"):
        lines.extend(_prefixed(str(d["feedback"]), f"{pad}feedback: ", f"{pad}  "))
    tail = str(d.get("output_tail") or "").rstrip("\n").splitlines()
    if tail:
        shown = tail if wide else tail[-TAIL_LINES:]
        if len(shown) < len(tail):
            lines.append(f"{pad}| … {len(tail) - len(shown)} more lines (--wide)")
        lines.extend(f"{pad}| {line}" for line in shown)
    return lines


def _prefixed(text: str, first: str, rest: str) -> list[str]:
    return [(first if i == 0 else rest) + line for i, line in enumerate(text.splitlines())]
