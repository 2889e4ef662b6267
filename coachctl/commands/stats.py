"""`stats`: how far people trust each workflow's (or step's) suggestions (CONTRACT §5)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click

from coachctl.cli import warn
from coachctl.commands import _complete
from coachctl.commands._common import get_store
from coachctl.commands._output import View, emit_rows, output_options

COUNTS = ("suggestions", "accepted", "rejected", "corrected", "manual", "failed", "skipped")
WORKFLOW_COLUMNS = (
    "workflow_id", "level", "ready", "sessions", *COUNTS, "acceptance_rate", "confidence", "trend",
)  # fmt: skip
STEP_COLUMNS = (
    "workflow_id", "step_id", "level", "ready", *COUNTS, "acceptance_rate", "confidence",
    "accepts_needed", "reason",
)  # fmt: skip
# What a person sees by default (--wide: everything; CSV and JSON: always everything).
WORKFLOW_VIEW = View(
    WORKFLOW_COLUMNS,
    ("workflow_id", "level", "ready", "sessions", "suggestions", "accepted", "acceptance_rate",
     "confidence", "trend"),
    shrink=("workflow_id",),
    drop=("ready", "sessions", "trend"),
)  # fmt: skip
STEP_VIEW = View(
    STEP_COLUMNS,
    ("workflow_id", "step_id", "level", "suggestions", "acceptance_rate", "confidence",
     "accepts_needed", "reason"),
    shrink=("reason", "workflow_id", "step_id"),
    drop=("suggestions",),
)  # fmt: skip
GLOBAL_ID = "(all)"
BY_CHOICES = ("workflow", "step")


def warn_unreadable(bad: Sequence[Any]) -> None:
    """One stderr line per unreadable session file, naming it (they are left out)."""
    for b in bad:
        warn(f"left out {b.reason}")


def workflow_rows(objects: Sequence[Mapping[str, Any]], by: str) -> list[dict[str, Any]]:
    """Flat rows for a table or CSV: one per workflow, or one per step."""
    from coachctl.engine.metrics import sparkline

    rows: list[dict[str, Any]] = []
    from coachctl.engine.scope import label

    for w in objects:
        if by == "step":
            rows.extend(
                {"workflow_id": w["workflow_id"], **s, "scope": label(s.get("scope"))}
                for s in w["steps"]
            )
        else:
            rows.append(
                {**w, "trend": sparkline(w.get("trend") or []), "scope": label(w.get("scope"))}
            )
    return rows


def with_scope(view: View, objects: Sequence[Mapping[str, Any]]) -> View:
    """A `scope` column after the workflow id, only when some workflow has a trust scope."""
    if not any(w.get("scope") for w in objects):
        return view

    def add(columns: Sequence[str]) -> list[str]:
        cols = list(columns)
        cols.insert(cols.index("workflow_id") + 1 if "workflow_id" in cols else 0, "scope")
        return cols

    return View(add(view.columns), add(view.default), shrink=view.shrink, drop=view.drop)


EPILOG = """\b
Examples:
  coachctl stats                        # one row per workflow, and (all)
  coachctl stats hello --by step        # why each step is (not) AUTO
  coachctl stats deploy --var env=prod  # one trust scope of a workflow with trust_scope
  coachctl stats --wide --table-format github
  coachctl stats --format json | jq '.global.acceptance_rate'
"""


@click.command(epilog=EPILOG)
@click.argument("workflows", nargs=-1, shell_complete=_complete.workflows)
@click.option("--by", default="workflow", show_default=True, metavar="[workflow|step]",
              help="One row per workflow or per step.",
              shell_complete=_complete.choices(*BY_CHOICES))  # fmt: skip
@click.option("--var", "var_items", multiple=True, metavar="KEY=VALUE",
              help="Only this trust scope (a trust_scope variable; repeatable).")  # fmt: skip
@output_options(wide=True)
@click.pass_context
def stats(
    ctx: click.Context,
    workflows: tuple[str, ...],
    by: str,
    var_items: tuple[str, ...],
    fmt: str,
    table_format: str,
    wide: bool,
    columns: str | None,
) -> None:
    """Acceptance, confidence and level per workflow (or step), with a global row.

    Counts only decisions on each step's current command, its most recent `window` of them,
    because trust is earned by the exact command that will run. The trend column shows the
    acceptance rate of the workflow's last 20 sessions. A workflow with a trust_scope has
    one row per scope seen (env=staging, env=prod, …); --var env=prod keeps that one.
    """
    from coachctl.commands.readiness import check_scope_vars
    from coachctl.engine import history
    from coachctl.engine.templates import parse_var_assignments
    from coachctl.errors import UsageError

    if by not in BY_CHOICES:
        raise UsageError(f"invalid --by: {by} (expected workflow or step)")
    given = parse_var_assignments(var_items)
    rep = history.report(get_store(ctx), workflows, given=given)
    check_scope_vars(given, rep.workflows)
    for line in rep.warnings:
        warn(line)
    warn_unreadable(rep.bad)
    if fmt == "json":
        emit_rows([], (), fmt, json_obj=rep.to_json())
        return
    rows = workflow_rows(rep.workflows, by)
    rows.append({"workflow_id": GLOBAL_ID, **rep.global_})
    view = with_scope(STEP_VIEW if by == "step" else WORKFLOW_VIEW, rep.workflows)
    csv_columns = [c for c in view.columns if c != "trend"]
    emit_rows(rows, csv_columns, fmt, table_format, view=view, wide=wide, pick=columns)
