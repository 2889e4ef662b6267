"""`pause`, `resume`, `cancel`: a session's life outside of decisions."""

from __future__ import annotations

import click

from coachctl.commands import _complete
from coachctl.commands._common import get_store, no_input_option, print_state
from coachctl.commands._output import state_options

PAUSE_EPILOG = """\b
Examples:
  coachctl pause mx39hlpg-ode2 --reason lunch
"""


@click.command(epilog=PAUSE_EPILOG)
@click.argument("session", shell_complete=_complete.sessions)
@click.option("--reason", metavar="TEXT", help="Why it is paused (shown on resume).")
@state_options
@click.pass_context
def pause(ctx: click.Context, session: str, reason: str | None, fmt: str) -> None:
    """Pause SESSION; `coachctl resume SESSION` comes back to the same step."""
    from coachctl.engine import lifecycle, views

    store = get_store(ctx)
    s = lifecycle.pause(store, session, reason)
    print_state(views.state(store, s), fmt)


RESUME_EPILOG = """\b
Examples:
  coachctl resume                     # the most recent paused session
  coachctl resume mx39hlpg-ode2
  coachctl resume mx39hlpg --no-input  # for scripts: run what may run, print the state
"""


@click.command(epilog=RESUME_EPILOG)
@click.argument("session", required=False, shell_complete=_complete.sessions)
@no_input_option
@state_options
@click.pass_context
def resume(ctx: click.Context, session: str | None, no_input: bool, fmt: str) -> None:
    """Resume SESSION (paused, or failed in an AUTO run) at its current step.

    Without SESSION: the most recent paused (or failed) session, named on stderr. With a
    terminal it reopens the interactive panel; otherwise it runs what may run alone and
    prints the state.
    """
    from coachctl.commands._pick import RESUME_LATEST, latest, resolve_resumable
    from coachctl.commands.run import drive
    from coachctl.engine import lifecycle

    store = get_store(ctx)
    sid = (
        latest(store, RESUME_LATEST, "paused or failed session")
        if session is None
        else resolve_resumable(store, session)
    )
    s = lifecycle.resume(store, sid)
    drive(ctx, store, s, no_input=no_input, fmt=fmt)


CANCEL_EPILOG = """\b
Examples:
  coachctl cancel mx39hlpg-ode2
"""


@click.command(epilog=CANCEL_EPILOG)
@click.argument("session", shell_complete=_complete.sessions)
@state_options
@click.pass_context
def cancel(ctx: click.Context, session: str, fmt: str) -> None:
    """End SESSION for good (its decisions still count)."""
    from coachctl.engine import lifecycle, views

    store = get_store(ctx)
    s = lifecycle.cancel(store, session)
    print_state(views.state(store, s), fmt)
