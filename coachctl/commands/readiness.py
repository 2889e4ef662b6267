"""`readiness`: the CI gate. Exit 0 ready, 1 not ready, 2 error (it fails closed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click

from coachctl.commands._common import get_store
from coachctl.commands._output import to_json

FORMATS = ("text", "json", "table", "csv")


def parse_threshold(raw: str | None) -> float | None:
    from coachctl.errors import UsageError

    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"invalid --threshold: {raw} (expected a number between 0 and 1)")
    return value


def parse_min_decisions(raw: str | None) -> int | None:
    from coachctl.errors import UsageError

    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise UsageError(f"invalid --min-decisions: {raw} (expected an integer >= 0)")
    return value


def why_never(step: Mapping[str, Any], rules: Mapping[str, Any] | None = None) -> str:
    """Why no number of accepts can make a step ready."""
    reason = str(step.get("reason") or "")
    if reason.startswith(("capped", "no suggestion")):
        return reason
    if rules and rules.get("window", 0) < rules.get("min_decisions", 0):
        return f"min_decisions {rules['min_decisions']} is more than the window {rules['window']}"
    return f"even a full window of accepts does not reach the threshold ({reason})"


def explain(workflows: Sequence[Mapping[str, Any]], ready: bool) -> str:
    """READY / NOT READY, then each workflow and, for each blocking step, what it needs."""
    lines = ["READY" if ready else "NOT READY"]
    for w in workflows:
        state = "ready" if w["ready"] else "not ready"
        lines.append(f"{w['workflow_id']}: {state} (level {w['level']})")
        for s in w["steps"]:
            if s["ready"]:
                continue
            rate = "n/a" if s["acceptance_rate"] is None else f"{s['acceptance_rate']:.3f}"
            conf = "n/a" if s["confidence"] is None else f"{s['confidence']:.3f}"
            needed = s["accepts_needed"]
            need = (
                f"cannot become ready: {why_never(s, w.get('rules'))}"
                if needed is None
                else f"needs {needed} more accept{'s' if needed != 1 else ''} in a row"
            )
            n = s["suggestions"]
            why = f" ({s['reason']})" if needed is not None else ""
            lines.append(
                f"  {s['step_id']}: rate {rate}, confidence {conf}, "
                f"{n} decision{'s' if n != 1 else ''}; {need}{why}"
            )
    return "\n".join(lines)


@click.command()
@click.argument("workflows", nargs=-1)
@click.option(
    "--threshold", metavar="F", help="Acceptance rate needed (0..1) [default: the workflow's]."
)
@click.option(
    "--min-decisions", metavar="N", help="Decisions needed per step [default: the workflow's]."
)
@click.option(
    "--strict/--no-strict",
    default=None,
    help="Require the 95% confidence bound to reach the threshold too [default: the workflow's].",
)
@click.option(
    "--format",
    "fmt",
    default="text",
    show_default=True,
    metavar="text|json|table|csv",
    help="Output format.",
)
@click.option(
    "--table-format",
    default="simple",
    show_default=True,
    metavar="NAME",
    help="Any tabulate format (with --format table).",
)
@click.pass_context
def readiness(
    ctx: click.Context,
    workflows: tuple[str, ...],
    threshold: str | None,
    min_decisions: str | None,
    strict: bool | None,
    fmt: str,
    table_format: str,
) -> None:
    """Exit 0 when every named workflow (default: every workflow file) is ready for AUTO,
    1 when one is not, 2 on an error.

    Made for CI: it fails closed, so an unreadable session file of a named workflow is an
    error, not a silent pass. It says what each blocking step still needs.
    """
    from coachctl.commands._output import emit_rows
    from coachctl.commands.stats import STEP_COLUMNS, workflow_rows
    from coachctl.engine import history
    from coachctl.errors import StateError, UsageError

    if fmt not in FORMATS:
        raise UsageError(f"invalid --format: {fmt} (expected one of {', '.join(FORMATS)})")
    overrides = {
        "threshold": parse_threshold(threshold),
        "min_decisions": parse_min_decisions(min_decisions),
        "strict": strict,
    }
    store = get_store(ctx)
    rep = history.report(
        store, workflows, overrides=overrides, include_orphans=False, strict_files=True
    )
    if not rep.workflows:
        raise UsageError(f"no workflows to check in {store.home / 'workflows'}")
    named = {w["workflow_id"] for w in rep.workflows}
    blocking = [b for b in rep.bad if b.workflow_id is None or b.workflow_id in named]
    if blocking:
        more = f" (and {len(blocking) - 1} more)" if len(blocking) > 1 else ""
        raise StateError(f"cannot decide readiness: {blocking[0].reason}{more}")
    ready = all(w["ready"] for w in rep.workflows)
    if fmt == "json":
        click.echo(to_json({"ready": ready, "workflows": rep.workflows}))
    elif fmt == "text":
        click.echo(explain(rep.workflows, ready))
    else:
        emit_rows(workflow_rows(rep.workflows, "step"), STEP_COLUMNS, fmt, table_format)
    ctx.exit(0 if ready else 1)
