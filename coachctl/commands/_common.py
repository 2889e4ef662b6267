"""Small pieces every command shares: the store from the root options, state printing."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from coachctl.store.base import Store


def get_store(ctx: click.Context) -> Store:
    settings = ctx.find_root().obj
    store: Store = settings.store()
    return store


def interactive(no_input: bool) -> bool:
    """A person is at a terminal and we may wait for keys."""
    return not no_input and sys.stdin.isatty() and sys.stdout.isatty()


def stream_to(fmt: str) -> Any:
    """Where a step's live output goes: stdout for text, stderr when stdout carries JSON."""
    out = sys.stderr if fmt == "json" else sys.stdout

    def write(chunk: bytes) -> None:
        out.flush()
        out.buffer.write(chunk)
        out.buffer.flush()

    return write


def how_to_decide(state: Mapping[str, Any]) -> list[str]:
    sid = state["session_id"]
    step = state.get("step")
    if state["status"] == "paused":
        return [f"resume: coachctl resume {sid}"]
    if state["status"] == "failed":
        return [f"resume to decide the failed step: coachctl resume {sid}"]
    if step is None or state["status"] != "active":
        return []
    guard = f" --step {step['id']}"
    if (
        state["mode"] in ("mixed", "auto")
        and step.get("level") == "AUTO"
        and step.get("status") in ("pending", None)
    ):
        return [
            f"this step runs alone: coachctl resume {sid} --no-input",
            f"or decide it yourself: coachctl decide {sid} accept{guard}",
        ]
    if state["mode"] == "observation" or not step.get("suggestion"):
        return [
            f"report what you ran: coachctl decide {sid} manual --command 'CMD'{guard}",
            f"or skip it:          coachctl decide {sid} skip{guard}",
        ]
    return [
        f"accept:  coachctl decide {sid} accept{guard}",
        f"correct: coachctl decide {sid} correct --correction 'CMD'{guard}",
        "or: reject [--feedback TEXT], manual [--command CMD], skip",
    ]


def state_text(state: Mapping[str, Any], alone: int = 0) -> str:
    """The state object as a person reads it (CONTRACT §4: id, step, suggestion, how).

    `alone`: steps of the session that ran on their own, said in words."""
    lines = [
        f"session {state['session_id']}  workflow {state['workflow_id']}  "
        f"mode {state['mode']}  status {state['status']}",
    ]
    progress = state["progress"]
    step = state.get("step")
    if step is not None:
        lines.append(
            f"step {step['index'] + 1}/{progress['total']}: {step['id']} — {step['name']}"
            f"  [{step['level']}]"
        )
        if step.get("status") == "interrupted":
            lines.append("  ! interrupted while running: it may have run. Decide what to do.")
        elif step.get("status") == "failed":
            why = f" ({step['last_error']})" if step.get("last_error") else ""
            lines.append(
                f"  ! the last attempt failed{why}: accept to retry, correct, manual or skip."
            )
        elif step.get("status") == "running":
            lines.append("  … running in another process")
        more = "\n" + " " * 16  # a `run: |` of several lines stays in its column
        if step.get("instructions"):
            lines.append(f"  instructions: {step['instructions'].rstrip().replace(chr(10), more)}")
        if step.get("suggestion"):
            lines.append(f"  suggestion:   {step['suggestion'].rstrip().replace(chr(10), more)}")
        else:
            lines.append("  suggestion:   (none yet: do it yourself and report what you ran)")
    else:
        lines.append(f"done {progress['done']}/{progress['total']}: nothing left to decide")
    s = state["stats"]
    rate = "n/a" if s["acceptance_rate"] is None else f"{s['acceptance_rate']:.0%}"
    ran = f"{alone} step{'s' if alone != 1 else ''} ran on their own"
    if alone and not any(
        s[k] for k in ("accepted", "rejected", "corrected", "manual", "skipped", "failed")
    ):
        lines.append(ran)
    else:
        lines.append(
            f"stats: {s['accepted']} accepted, {s['rejected']} rejected, {s['corrected']} "
            f"corrected, {s['manual']} manual, {s['skipped']} skipped, {s['failed']} failed; "
            f"acceptance {rate}" + (f"; {ran}" if alone else "")
        )
    hints = how_to_decide(state)
    if hints:
        lines.append("next:")
        lines.extend(f"  {h}" for h in hints)
    return "\n".join(lines)


def ran_alone(decisions: Sequence[Mapping[str, Any]]) -> int:
    """How many steps ran unasked and succeeded (`decided_by: auto`)."""
    return sum(1 for d in decisions if d.get("decided_by") == "auto" and d.get("outcome") == "ok")


def print_state(state: Mapping[str, Any], fmt: str, alone: int = 0) -> None:
    if fmt == "json":
        from coachctl.commands._output import to_json

        click.echo(to_json(state))
    else:
        click.echo(state_text(state, alone))


def state_options(fn: Any) -> Any:
    """`--format text|json` for commands that print one session state.

    Here rather than in `_output` so `decide` (run thousands of times) imports one module
    less; `_output.state_options` is this same function.
    """
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Output format.",
    )(fn)


def var_option(fn: Any) -> Any:
    return click.option(
        "--var",
        "var_items",
        multiple=True,
        metavar="KEY=VALUE",
        help="Set a workflow variable (repeatable).",
    )(fn)


def no_input_option(fn: Any) -> Any:
    return click.option(
        "--no-input",
        is_flag=True,
        help="Never wait for a key: run what may run, then print the state and stop.",
    )(fn)
