"""`coachctl run`: start a session and drive it as far as it may go without a person."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from coachctl.commands._common import (
    get_store,
    interactive,
    no_input_option,
    print_state,
    stream_to,
    var_option,
)
from coachctl.commands._output import output_options, to_json

if TYPE_CHECKING:
    from coachctl.engine.actions import Plan
    from coachctl.engine.session import Session
    from coachctl.engine.store import Store


@click.command()
@click.argument("workflow")
@click.option(
    "--mode",
    type=click.Choice(["mixed", "coaching", "observation", "auto"]),
    default="mixed",
    show_default=True,
    help="mixed: AUTO steps run alone, others ask; coaching: every step asks; "
    "observation: you do each step and report it; auto: nothing asks (the workflow must be ready).",
)
@var_option
@click.option("--start-at", metavar="STEP_ID", help="Begin at this step instead of the first.")
@click.option("--dry-run", is_flag=True, help="Print the plan; run nothing, write nothing.")
@no_input_option
@click.option("--force", is_flag=True, help="--mode auto even when not ready (never past max_level).")
@output_options(("text", "json"))
@click.pass_context
def run(
    ctx: click.Context,
    workflow: str,
    mode: str,
    var_items: tuple[str, ...],
    start_at: str | None,
    dry_run: bool,
    no_input: bool,
    force: bool,
    fmt: str,
) -> None:
    """Start a session of WORKFLOW (a .yaml path or an id in HOME/workflows/).

    Without a terminal, or with --no-input, it runs what may run alone, stops at the first
    step that needs a person and prints the state and how to decide it.
    """
    start_session(ctx, workflow, mode, var_items, start_at, dry_run, no_input, force, fmt)


def start_session(
    ctx: click.Context,
    workflow: str,
    mode: str,
    var_items: tuple[str, ...],
    start_at: str | None,
    dry_run: bool,
    no_input: bool,
    force: bool,
    fmt: str,
) -> None:
    from coachctl.engine import actions

    store = get_store(ctx)
    p = actions.plan(store, workflow, mode=mode, var_items=var_items, start_at=start_at)
    if mode == "auto":
        check_auto(p, force)
    if dry_run:
        print_plan(p, fmt)
        return
    session = actions.start(store, p)
    drive(ctx, store, session, no_input=no_input, fmt=fmt)


def check_auto(p: Plan, force: bool) -> None:
    """`--mode auto` refuses a workflow that is not ready; --force never beats max_level."""
    from coachctl.engine.metrics import LEVELS
    from coachctl.errors import NotReady

    capped = [
        s for s in p.steps[p.start_at :]
        if s.get("max_level") and LEVELS.index(s["max_level"]) < LEVELS.index("AUTO")
    ]
    if capped:
        names = ", ".join(f"{s['id']} (max_level {s['max_level']})" for s in capped)
        raise NotReady(f"--mode auto refused: capped steps never run alone: {names}")
    no_command = [s["id"] for s in p.steps[p.start_at :] if not s.get("command")]
    if no_command:
        raise NotReady(
            f"--mode auto refused: steps without a command to run: {', '.join(no_command)}"
        )
    if p.blocking and not force:
        names = ", ".join(f"{s['step_id']} ({s['reason']})" for s in p.blocking)
        raise NotReady(f"--mode auto refused: not ready: {names} (--force to run anyway)")


def print_plan(p: Plan, fmt: str) -> None:
    rows = [
        {
            "index": i + 1,
            "step_id": s["id"],
            "level": p.levels[i],
            "runs": "skipped (before --start-at)" if i < p.start_at else _how(p.mode, p.levels[i], s),
            "command": s.get("command"),
            "instructions": s.get("instructions_text"),
        }
        for i, s in enumerate(p.steps)
    ]
    if fmt == "json":
        click.echo(
            to_json(
                {
                    "workflow_id": p.workflow.id,
                    "mode": p.mode,
                    "dry_run": True,
                    "variables": p.variables,
                    "steps": rows,
                }
            )
        )
        return
    click.echo(f"plan for {p.workflow.id} ({p.workflow.name}), mode {p.mode} — nothing will run")
    for r in rows:
        click.echo(f"  {r['index']}. {r['step_id']} [{r['level']}] {r['runs']}")
        if r["command"]:
            click.echo(f"       $ {r['command']}")
        if r["instructions"]:
            click.echo(f"       {r['instructions']}")


def _how(mode: str, level: str, step: dict[str, Any]) -> str:
    if mode == "auto" or (mode == "mixed" and level == "AUTO"):
        return "runs alone"
    if mode == "observation" or not step.get("command"):
        return "a person does it and reports"
    return "asks a person"


def progress_line(info: dict[str, Any]) -> None:
    """`[3/7] build … ok 2.1s` for a step that runs unasked."""
    step = info["step"]
    head = f"[{info['index'] + 1}/{info['total']}] {step['id']} …"
    if info["phase"] == "start":
        click.echo(head, err=False)
        return
    rec = info.get("record") or {}
    ok = rec.get("outcome") != "failed"
    dur = rec.get("duration")
    took = f" {dur:.1f}s" if isinstance(dur, (int, float)) else ""
    verdict = "ok" if ok else f"FAILED (exit {rec.get('exit_code')})"
    click.echo(f"{head} {verdict}{took}")


def drive(
    ctx: click.Context, store: Store, session: Session, *, no_input: bool, fmt: str
) -> None:
    """Run what may run alone, then hand over to a person (panel) or print the state."""
    from coachctl.engine import actions
    from coachctl.errors import Interrupted, StepFailed

    try:
        out = actions.run_auto_steps(
            store,
            session,
            stream=stream_to(fmt) if fmt == "text" else stream_to("json"),
            progress=progress_line if fmt == "text" else None,
        )
        session = out.session
        if out.interrupted:
            raise KeyboardInterrupt
        if interactive(no_input) and fmt == "text" and session.status == "active":
            from coachctl.commands.panel import interact

            interact(ctx, store, session.id)
            return
        print_state(actions.state(store, session), fmt)
        if out.failed:
            step = (out.record or {}).get("step_id")
            raise StepFailed(f"step {step!r} failed (exit {(out.record or {}).get('exit_code')})")
    except KeyboardInterrupt:
        actions.pause_quietly(store, session.id, "interrupted (Ctrl-C)")
        raise Interrupted(
            f"interrupted: session {session.id} paused; continue with: coachctl resume {session.id}"
        ) from None
