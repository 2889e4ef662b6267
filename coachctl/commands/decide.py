"""`coachctl decide`: one decision on the current step, for scripts and people alike."""

from __future__ import annotations

from typing import Any

import click

from coachctl.cli import QuickHelpCommand
from coachctl.commands._common import get_store, print_state, state_options, stream_to


def _complete_sessions(ctx: click.Context, param: click.Parameter, incomplete: str) -> Any:
    """Completion, imported only when a shell asks: `decide` runs in loops from scripts."""
    from coachctl.commands._complete import sessions

    return sessions(ctx, param, incomplete)


def _complete_steps(ctx: click.Context, param: click.Parameter, incomplete: str) -> Any:
    from coachctl.commands._complete import session_steps

    return session_steps(ctx, param, incomplete)


EPILOG = """\b
Examples:
  coachctl decide mx39hlpg-ode2 accept --step greet
  coachctl decide mx39hlpg correct --correction 'date -u +%s'
  coachctl decide mx39hlpg reject --feedback 'wrong host'
  coachctl decide mx39hlpg manual --command 'systemctl restart web'
  coachctl decide mx39hlpg accept --no-exec    # you ran it elsewhere
"""


@click.command(cls=QuickHelpCommand, epilog=EPILOG)
@click.argument("session", shell_complete=_complete_sessions)
@click.argument("decision", type=click.Choice(["accept", "reject", "correct", "manual", "skip"]))
@click.option("--correction", metavar="CMD", help="With 'correct': the command to run instead.")
@click.option("--command", "reported", metavar="CMD", help="With 'manual': what you ran yourself.")
@click.option("--feedback", metavar="TEXT", help="Why (kept with the decision).")
@click.option(
    "--step",
    "step_guard",
    metavar="STEP_ID",
    help="Only if the session is still at this step; else change nothing and exit 3.",
    shell_complete=_complete_steps,
)
@click.option("--no-exec", is_flag=True, help="Record accept/correct without running (you ran it).")
@state_options
@click.pass_context
def decide(
    ctx: click.Context,
    session: str,
    decision: str,
    correction: str | None,
    reported: str | None,
    feedback: str | None,
    step_guard: str | None,
    no_exec: bool,
    fmt: str,
) -> None:
    """Decide the current step of SESSION (an id or a unique prefix of 4+ characters).

    accept runs the suggestion, correct runs --correction instead, reject/manual/skip run
    nothing. A command that fails keeps the session at the step and exits 1.
    """
    from coachctl.engine import deciding, views
    from coachctl.errors import Interrupted, StepFailed

    store = get_store(ctx)
    write = stream_to(fmt)
    last = [b"\n"]

    def stream(chunk: bytes) -> None:
        write(chunk)
        last[0] = chunk[-1:] or last[0]

    try:
        out = deciding.decide(
            store,
            session,
            decision,
            correction=correction,
            command=reported,
            feedback=feedback,
            step_guard=step_guard,
            no_exec=no_exec,
            stream=stream,
        )
    finally:
        if last[0] != b"\n":  # the step's last line ends here, not in coachctl's next one
            write(b"\n")
    if out.interrupted:
        raise Interrupted(
            f"interrupted: session {out.session.id} paused; continue with: "
            f"coachctl resume {out.session.id}",
            out.exit_status,
        )
    print_state(views.state(store, out.session), fmt)
    if out.failed and out.record is not None:
        from coachctl.engine.outcome import outcome_text

        timeout = (out.session.current_step or {}).get("timeout")
        raise StepFailed(
            f"step {out.record['step_id']!r} failed: {outcome_text(out.record, timeout)}"
        )
