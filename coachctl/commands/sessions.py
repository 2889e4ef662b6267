"""`sessions` and `show`: what is in the home, and one session's history."""

from __future__ import annotations

import click

from coachctl.cli import warn
from coachctl.commands._common import get_store, print_state
from coachctl.commands._output import emit_rows, output_options, to_json

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


@click.command()
@click.option("--workflow", metavar="ID", help="Only this workflow's sessions.")
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
@output_options()
@click.pass_context
def sessions(
    ctx: click.Context,
    workflow: str | None,
    status: str | None,
    mode: str | None,
    fmt: str,
    table_format: str,
) -> None:
    """List the home's sessions, oldest first."""
    from coachctl.engine import actions

    rows, bad = actions.list_sessions(get_store(ctx), workflow=workflow, status=status, mode=mode)
    for line in bad:
        warn(f"skipped {line}")
    emit_rows(rows, SESSION_COLUMNS, fmt, table_format)


DECISION_COLUMNS = (
    "#",
    "step_id",
    "decision",
    "outcome",
    "exit_code",
    "command",
    "decided_by",
    "decided_at",
)


@click.command()
@click.argument("session")
@output_options(("text", "json"))
@click.pass_context
def show(ctx: click.Context, session: str, fmt: str) -> None:
    """Show SESSION: its state and every decision made on it."""
    from coachctl.engine import actions

    store = get_store(ctx)
    s = actions.load(store, session)
    state = actions.state(store, s)
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
    rows = [{"#": i + 1, **d} for i, d in enumerate(s.decisions)]
    click.echo("decisions:")
    emit_rows(rows, DECISION_COLUMNS, "table", "simple")
