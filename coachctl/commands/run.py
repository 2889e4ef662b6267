"""`coachctl run`: start a session and drive it as far as it may go without a person."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from coachctl.commands import _complete
from coachctl.commands._common import (
    get_store,
    interactive,
    no_input_option,
    print_state,
    ran_alone,
    var_option,
)
from coachctl.commands._output import output_options, to_json
from coachctl.engine.outcome import outcome_text

if TYPE_CHECKING:
    from coachctl.engine.planning import Plan
    from coachctl.engine.session import Session
    from coachctl.store.base import Store


EPILOG = """\b
Examples:
  coachctl run hello                           # mixed: AUTO steps run, others ask
  coachctl run rotate-certs --var env=staging --start-at reload
  coachctl run hello --dry-run                 # the plan; runs and writes nothing
  coachctl run hello --mode auto --no-input    # CI: exit 1 unless every step is ready
"""


@click.command(epilog=EPILOG)
@click.argument("workflow", shell_complete=_complete.workflows)
@click.option(
    "--mode",
    type=click.Choice(["mixed", "coaching", "observation", "auto"]),
    default="mixed",
    show_default=True,
    help="mixed: AUTO steps run alone, others ask; coaching: every step asks; "
    "observation: you do each step and report it; auto: nothing asks (the workflow must be ready).",
)
@var_option
@click.option(
    "--start-at",
    metavar="STEP_ID",
    help="Begin at this step instead of the first.",
    shell_complete=_complete.workflow_steps,
)
@click.option("--dry-run", is_flag=True, help="Print the plan; run nothing, write nothing.")
@no_input_option
@click.option(
    "--force", is_flag=True, help="--mode auto even when not ready (never past max_level)."
)
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
    """Plan, check what `--mode auto` needs, then start and drive (or only print the plan)."""
    from coachctl.engine import planning
    from coachctl.errors import UsageError

    if force and mode != "auto":
        raise UsageError("--force goes with --mode auto only")
    store = get_store(ctx)
    p = planning.plan(store, workflow, mode=mode, var_items=var_items, start_at=start_at)
    if dry_run:
        from coachctl.engine import history

        p.elsewhere = history.other_scopes_auto(store, p.workflow, p.scope)
        print_plan(p, fmt)
        if mode == "auto":
            check_auto(p, force)  # the plan, then the same verdict a real run would give
        return
    if mode == "auto":
        check_auto(p, force)
        if p.blocking:
            names = ", ".join(s["step_id"] for s in p.blocking)
            click.echo(f"coachctl: --force: running steps that are not ready: {names}", err=True)
    session = planning.start(store, p)
    drive(ctx, store, session, no_input=no_input, fmt=fmt)


def auto_blockers(p: Plan, force: bool) -> list[str]:
    """Why `--mode auto` may not run each step from --start-at on ("id (why)"), in order.

    A `max_level` ceiling and a step with nothing to run block even with --force.
    """
    from coachctl.engine.metrics import LEVELS

    metrics = {m["step_id"]: m for m in p.blocking}
    out = []
    for s in p.steps[p.start_at :]:
        ceiling = s.get("max_level")
        if ceiling and LEVELS.index(ceiling) < LEVELS.index("AUTO"):
            out.append(f"{s['id']} (capped at {ceiling} by max_level; --force cannot lift it)")
        elif not s.get("command"):
            out.append(f"{s['id']} (no command to run yet: a person does it)")
        elif s["id"] in metrics and not force:
            out.append(f"{s['id']} ({metrics[s['id']]['reason']})")
    return out


def check_auto(p: Plan, force: bool) -> None:
    """`--mode auto` refuses a workflow that is not ready (exit 1), naming every blocking step."""
    from coachctl.errors import NotReady

    blockers = auto_blockers(p, force)
    if blockers:
        hint = ""
        if not force and any("max_level" not in b and "no command" not in b for b in blockers):
            hint = " (--force runs steps that are merely not ready yet)"
        raise NotReady(
            f"--mode auto refused: {p.workflow.id} is not ready: {'; '.join(blockers)}{hint}"
        )


def print_plan(p: Plan, fmt: str) -> None:
    """What `run` would do, step by step: level, how it runs, the filled-in command."""
    rows = [
        {
            "index": i + 1,
            "step_id": s["id"],
            "level": p.levels[i],
            "runs": "skipped (before --start-at)"
            if i < p.start_at
            else _how(p.mode, p.levels[i], s),
            "command": s.get("command"),
            "source": s.get("source"),
            "instructions": s.get("instructions_text"),
            "auto_elsewhere": p.elsewhere.get(s["id"], []) if p.levels[i] != "AUTO" else [],
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
                    "scope": p.scope,
                    "start_at": p.steps[p.start_at]["id"] if p.start_at < len(p.steps) else None,
                    "steps": rows,
                }
            )
        )
        return
    from coachctl.engine.scope import label

    where = f", trust scope {label(p.scope)}" if p.scope else ""
    click.echo(
        f"plan for {p.workflow.id} ({p.workflow.name}), mode {p.mode}{where} — nothing will run"
    )
    for r in rows:
        elsewhere = ""
        if r["auto_elsewhere"]:  # trusted in another scope, not in this one: say so
            elsewhere = f" (AUTO for {'; '.join(r['auto_elsewhere'])}; {r['level']} here)"
        click.echo(f"  {r['index']}. {r['step_id']} [{r['level']}] {r['runs']}{elsewhere}")
        if r["command"]:
            learned = f"   ({r['source']})" if r["source"] not in (None, "run") else ""
            click.echo(f"       $ {r['command']}{learned}")
        if r["instructions"]:
            click.echo(f"       {r['instructions']}")


def _how(mode: str, level: str, step: dict[str, Any]) -> str:
    if not step.get("command") and mode != "observation":
        return "a person does it and reports what they ran"
    if mode == "auto" or (mode == "mixed" and level == "AUTO"):
        return "runs alone"
    if mode == "observation":
        return "a person does it and reports what they ran"
    return "asks a person"


TAIL_LINES = 10


class Progress:
    """One line per step that runs unasked: `[3/7] build … ok 2.1s`.

    On a terminal the head is printed when the step starts, so a long step shows what runs;
    a failure adds the last lines of the step's output. With --format json it all goes to
    stderr, keeping stdout for the JSON state.
    """

    def __init__(self, fmt: str) -> None:
        self.err = fmt == "json"
        stream = sys.stderr if self.err else sys.stdout
        self.live = stream.isatty()

    def __call__(self, info: dict[str, Any]) -> None:
        step = info["step"]
        head = f"[{info['index'] + 1}/{info['total']}] {step['id']} …"
        if info["phase"] == "start":
            if self.live:
                click.echo(head + " ", nl=False, err=self.err)
            return
        rec = info.get("record") or {}
        ok = rec.get("outcome") != "failed"
        dur = rec.get("duration")
        took = f" {dur:.1f}s" if isinstance(dur, (int, float)) else ""
        verdict = "ok" if ok else f"FAILED ({outcome_text(rec, step.get('timeout'))})"
        if rec.get("outcome") == "interrupted":
            verdict = "interrupted"
        click.echo(f"{verdict}{took}" if self.live else f"{head} {verdict}{took}", err=self.err)
        if not ok:
            tail = str(rec.get("output_tail") or "").rstrip("\n").splitlines()[-TAIL_LINES:]
            for line in tail:
                click.echo(f"    | {line}", err=self.err)


def progress_line(info: dict[str, Any]) -> None:
    """`[3/7] build … ok 2.1s` for a step that runs unasked (text output)."""
    Progress("text")(info)


def drive(ctx: click.Context, store: Store, session: Session, *, no_input: bool, fmt: str) -> None:
    """Run what may run alone, then hand over to a person (panel) or print the state.

    Steps that run unasked print one progress line each (their output is kept in the
    session: `coachctl show`). `auto` stops at the first failure: the session is `failed`.
    """
    from coachctl.engine import auto, deciding, lifecycle, views
    from coachctl.errors import Interrupted, StepFailed, Stopped, stop_status

    try:
        out = auto.run_auto_steps(store, session, stream=None, progress=Progress(fmt))
        session = out.session
        if out.interrupted:
            raise Stopped(out.exit_status - 128)
        if interactive(no_input) and fmt == "text" and session.status == "active":
            from coachctl.commands.panel import interact

            interact(ctx, store, session.id)
            return
        print_state(views.state(store, session), fmt, ran_alone(session.decisions))
        if out.failed:
            rec = out.record or {}
            why = outcome_text(rec, (session.current_step or {}).get("timeout"))
            raise StepFailed(
                f"step {rec.get('step_id')!r} failed ({why})"
                + (f": session {session.id} failed" if session.status == "failed" else "")
            )
    except KeyboardInterrupt as exc:
        status = stop_status(exc)
        why = "Ctrl-C" if status == 130 else deciding.signal_name(status - 128)
        lifecycle.pause_quietly(store, session.id, f"interrupted ({why})")
        raise Interrupted(
            f"interrupted: session {session.id} paused; "
            f"continue with: coachctl resume {session.id}",
            status,
        ) from None
