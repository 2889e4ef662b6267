"""`stats`: how far people trust each workflow's (or step's) suggestions (CONTRACT §5)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click

from coachctl.cli import warn
from coachctl.commands._common import get_store
from coachctl.commands._output import emit_rows, output_options

COUNTS = ("suggestions", "accepted", "rejected", "corrected", "manual", "failed", "skipped")
WORKFLOW_COLUMNS = (
    "workflow_id", "level", "ready", "sessions", *COUNTS, "acceptance_rate", "confidence", "trend",
)  # fmt: skip
STEP_COLUMNS = (
    "workflow_id", "step_id", "level", "ready", *COUNTS, "acceptance_rate", "confidence",
    "accepts_needed", "reason",
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


def with_scope(columns: Sequence[str], objects: Sequence[Mapping[str, Any]]) -> list[str]:
    """A `scope` column after the workflow id, only when some workflow has a trust scope."""
    cols = list(columns)
    if any(w.get("scope") for w in objects):
        cols.insert(1, "scope")
    return cols


@click.command()
@click.argument("workflows", nargs=-1)
@click.option("--by", default="workflow", show_default=True, metavar="workflow|step",
              help="One row per workflow or per step.")  # fmt: skip
@click.option("--var", "var_items", multiple=True, metavar="KEY=VALUE",
              help="Only this trust scope (a trust_scope variable; repeatable).")  # fmt: skip
@output_options()
@click.pass_context
def stats(
    ctx: click.Context,
    workflows: tuple[str, ...],
    by: str,
    var_items: tuple[str, ...],
    fmt: str,
    table_format: str,
) -> None:
    """Acceptance, confidence and level per workflow (or step), with a global row.

    Counts only decisions on each step's current command, its most recent `window` of them,
    because trust is earned by the exact command that will run. The trend column shows the
    acceptance rate of the workflow's last 20 sessions. A workflow with a trust_scope has
    one row per scope seen (env=staging, env=prod, …); --var env=prod keeps that one.
    """
    from coachctl.commands.readiness import check_scope_vars
    from coachctl.engine import history
    from coachctl.engine.workflow import parse_var_assignments
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
    columns: Sequence[str] = with_scope(
        STEP_COLUMNS if by == "step" else WORKFLOW_COLUMNS, rep.workflows
    )
    if fmt == "csv":
        columns = [c for c in columns if c != "trend"]
    emit_rows(rows, columns, fmt, table_format)
