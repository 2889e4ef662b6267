"""`coachctl coach`: the same as `run --mode coaching`."""

from __future__ import annotations

import click

from coachctl.commands._common import no_input_option, var_option
from coachctl.commands._output import output_options


@click.command()
@click.argument("workflow")
@var_option
@no_input_option
@output_options(("text", "json"))
@click.pass_context
def coach(
    ctx: click.Context, workflow: str, var_items: tuple[str, ...], no_input: bool, fmt: str
) -> None:
    """Start a coaching session of WORKFLOW: every step is proposed and you decide.

    Same as `coachctl run WORKFLOW --mode coaching`.
    """
    from coachctl.commands.run import start_session

    start_session(ctx, workflow, "coaching", var_items, None, False, no_input, False, fmt)
