"""`validate` and `workflows`: check workflow files, list the home's workflows."""

from __future__ import annotations

import click

from coachctl.cli import warn
from coachctl.commands import _complete
from coachctl.commands._common import get_store
from coachctl.commands._output import View, emit_rows, output_options

WORKFLOW_COLUMNS = (
    "workflow_id",
    "name",
    "steps",
    "level",
    "ready",
    "acceptance_rate",
    "sessions",
    "path",
)
WORKFLOW_VIEW = View(
    WORKFLOW_COLUMNS,
    ("workflow_id", "name", "steps", "level", "ready", "acceptance_rate", "sessions"),
    shrink=("name", "workflow_id"),
)


VALIDATE_EPILOG = """\b
Examples:
  coachctl validate workflows/*.yaml
  coachctl validate hello
"""


@click.command(epilog=VALIDATE_EPILOG)
@click.argument("workflows", nargs=-1, required=True, shell_complete=_complete.workflows)
@click.pass_context
def validate(ctx: click.Context, workflows: tuple[str, ...]) -> None:
    """Check WORKFLOW files (paths or ids); every problem is printed as PATH:LINE: message."""
    from coachctl.engine.workflow_files import resolve_workflow_path
    from coachctl.engine.workflow_load import load_workflow
    from coachctl.errors import CoachctlError, UsageError

    store = get_store(ctx)
    bad = 0
    for ref in workflows:
        try:
            wf = load_workflow(resolve_workflow_path(ref, store.home))
        except CoachctlError as exc:
            bad += 1
            from coachctl.cli import report

            report(exc)
            continue
        click.echo(f"{wf.path}: ok ({wf.id}, {len(wf.steps)} steps)")
    if bad:
        raise UsageError(f"{bad} of {len(workflows)} workflow files invalid")


WORKFLOWS_EPILOG = """\b
Examples:
  coachctl workflows
  coachctl workflows --wide      # with each file's path
"""


@click.command(epilog=WORKFLOWS_EPILOG)
@output_options(wide=True)
@click.pass_context
def workflows(
    ctx: click.Context, fmt: str, table_format: str, wide: bool, columns: str | None
) -> None:
    """List the home's workflows with their level, acceptance and readiness."""
    from coachctl.engine import history
    from coachctl.engine.workflow_files import find_workflows
    from coachctl.engine.workflow_load import load_workflow
    from coachctl.errors import CoachctlError

    store = get_store(ctx)
    rows: list[dict[str, object]] = []
    for path in find_workflows(store.home):
        try:
            wf = load_workflow(path)
        except CoachctlError as exc:
            warn(str(exc))
            rows.append({"workflow_id": path.stem, "name": "(invalid)", "path": str(path)})
            continue
        m = history.workflow_overall(store, wf)  # lowest over its trust scopes, if any
        rows.append(
            {
                "workflow_id": wf.id,
                "name": wf.name,
                "steps": len(wf.steps),
                "level": m["level"],
                "ready": m["ready"],
                "acceptance_rate": m["acceptance_rate"],
                "sessions": m["sessions"],
                "path": str(path),
            }
        )
    emit_rows(
        rows, WORKFLOW_COLUMNS, fmt, table_format, view=WORKFLOW_VIEW, wide=wide, pick=columns
    )
