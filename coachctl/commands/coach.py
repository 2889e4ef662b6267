"""`coachctl coach`: the same as `run --mode coaching`."""

from __future__ import annotations

import click

from coachctl.commands import _complete
from coachctl.commands._common import no_input_option, var_option
from coachctl.commands._output import output_options

EPILOG = """\b
Examples:
  coachctl coach hello                         # step through it, one key per step
  coachctl coach rotate-certs --var env=staging --start-at reload
  coachctl coach hello --dry-run               # the plan: levels and filled-in commands
  coachctl coach hello --no-input --format json   # for scripts: state, then `decide`
"""


@click.command(epilog=EPILOG)
@click.argument("workflow", shell_complete=_complete.workflows)
@var_option
@click.option(
    "--start-at",
    metavar="STEP_ID",
    help="Begin at this step instead of the first.",
    shell_complete=_complete.workflow_steps,
)
@click.option("--dry-run", is_flag=True, help="Print the plan; run nothing, write nothing.")
@no_input_option
@output_options(("text", "json"))
@click.pass_context
def coach(
    ctx: click.Context,
    workflow: str,
    var_items: tuple[str, ...],
    start_at: str | None,
    dry_run: bool,
    no_input: bool,
    fmt: str,
) -> None:
    """Start a coaching session of WORKFLOW: every step is proposed and you decide.

    Same as `coachctl run WORKFLOW --mode coaching`.
    """
    from coachctl.commands.run import start_session

    start_session(ctx, workflow, "coaching", var_items, start_at, dry_run, no_input, False, fmt)
