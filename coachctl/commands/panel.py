"""The interactive panel: one step at a time, single keys, for a person at a terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from coachctl.commands._common import state_text, stream_to

if TYPE_CHECKING:
    from coachctl.engine.store import Store

KEYS = {"a": "accept", "r": "reject", "c": "correct", "m": "manual", "s": "skip"}
HELP = "a accept · r reject · c correct · m manual · s skip · p/q pause · ? help"


def interact(ctx: click.Context, store: Store, session_id: str) -> None:
    """Loop over the session's steps until it ends or the person pauses."""
    from coachctl.engine import actions
    from coachctl.errors import CoachctlError

    while True:
        session = actions.load(store, session_id)
        state = actions.state(store, session)
        click.echo(state_text(state).split("\nnext:")[0])
        if state["step"] is None or state["status"] != "active":
            return
        click.echo(HELP)
        key = click.getchar()
        if key in ("p", "q"):
            actions.pause(store, session_id, "paused from the panel")
            click.echo(f"paused; continue with: coachctl resume {session_id}")
            return
        if key == "?":
            continue
        decision = KEYS.get(key)
        if decision is None:
            continue
        kwargs: dict[str, str | None] = {}
        if decision == "correct":
            kwargs["correction"] = click.prompt("command", default=state["step"]["suggestion"] or "")
        elif decision == "reject":
            kwargs["feedback"] = click.prompt("feedback (optional)", default="", show_default=False) or None
        elif decision == "manual":
            kwargs["command"] = click.prompt("what did you run (optional)", default="", show_default=False) or None
        try:
            out = actions.decide(store, session_id, decision, stream=stream_to("text"), **kwargs)
        except CoachctlError as exc:
            click.echo(f"coachctl: {exc}", err=True)
            continue
        if out.interrupted:
            raise KeyboardInterrupt
        drive_out = actions.run_auto_steps(store, out.session, stream=stream_to("text"))
        if drive_out.interrupted:
            raise KeyboardInterrupt
