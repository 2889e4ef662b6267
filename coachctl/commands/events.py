"""`coachctl events`: the event log, printed or followed live (the feed dashboards attach to)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from coachctl.commands import _complete
from coachctl.commands._common import get_store

_HEAD = ("ts", "event", "session_id", "workflow_id")


EPILOG = """\b
Examples:
  coachctl events --since 2h
  coachctl events --workflow hello --format json | jq -c 'select(.event=="level_changed")'
  coachctl events --follow --format json     # like tail -f; Ctrl-C exits 0
"""


@click.command(epilog=EPILOG)
@click.option(
    "--follow",
    "-f",
    is_flag=True,
    help="Keep printing new events as they are written (Ctrl-C stops).",
)
@click.option(
    "--session",
    "session_ref",
    metavar="SESSION",
    help="Only this session (an id or a unique prefix).",
    shell_complete=_complete.sessions,
)
@click.option(
    "--workflow",
    metavar="WORKFLOW",
    help="Only this workflow (an id, or a .yaml path).",
    shell_complete=_complete.workflows,
)
@click.option(
    "--since",
    metavar="TIME",
    help="Only events at or after TIME: ISO-8601 (2024-05-01T12:00:00Z) or an age (15m, 2h, 7d).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: one readable line per event; json: one JSON object per line (for jq).",
)
@click.option("--wide", is_flag=True, help="Text lines uncut (by default they fit the terminal).")
@click.pass_context
def events(
    ctx: click.Context,
    follow: bool,
    session_ref: str | None,
    workflow: str | None,
    since: str | None,
    fmt: str,
    wide: bool,
) -> None:
    """Print the event log (sessions started, decisions, runs, pauses, level changes).

    The log is read as a stream, so the first lines come at once however long it is.
    With --follow it starts at the end, like `tail -f -n 0`: it prints every new event that
    matches, written by any coachctl process, until Ctrl-C (exit 0); run it without
    --follow for what was logged before.
    """
    from coachctl.commands._output import terminal_width
    from coachctl.engine import events as ev

    width = None if wide or fmt == "json" else terminal_width()
    store = get_store(ctx)
    flt = ev.EventFilter(
        session_id=store.resolve(session_ref) if session_ref is not None else None,
        workflow_id=_workflow_id(store, workflow) if workflow is not None else None,
        since=ev.parse_since(since) if since is not None else None,
    )
    try:
        if not follow:
            for e, _ in store.read_events(""):
                if flt.matches(e):
                    click.echo(render(e, fmt, width))
            return
        for batch in ev.follow(store, store.events_end()):
            for new in flt.apply(batch):
                click.echo(render(new, fmt, width))
    except KeyboardInterrupt:
        return


def _workflow_id(store: Any, ref: str) -> str:
    """A workflow id as given, or the id inside a .yaml/.yml file named by path."""
    if ref.endswith((".yaml", ".yml")) or "/" in ref:
        from coachctl.engine.workflow_files import resolve_workflow_path
        from coachctl.engine.workflow_load import load_workflow

        return load_workflow(resolve_workflow_path(ref, store.home)).id
    return ref


def render(event: Mapping[str, Any], fmt: str, width: int | None = None) -> str:
    """One line per event: compact JSON, or `ts event session workflow key=value…`.

    Text lines have timestamps to the second and are cut with `…` at `width` (the
    terminal's; --wide and pipes get them whole); JSON is always complete.
    """
    import json

    from coachctl.commands._output import cut, short_time

    if fmt == "json":
        return json.dumps(event, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    head = [str(event.get(k, "-")) for k in _HEAD]
    head[0] = short_time(head[0])
    head[1] = f"{head[1]:<17}"  # the longest event name: session_completed
    rest = [
        f"{k}={_value(v)}" for k, v in sorted(event.items()) if k not in _HEAD and v is not None
    ]
    line = "  ".join(head) + ("  " + " ".join(rest) if rest else "")
    return line if width is None else cut(line, max(width - 1, 40))


def _value(value: Any) -> str:
    """Plain words stay plain; anything with spaces or quotes is JSON-quoted (one line)."""
    import json

    if isinstance(value, str):
        plain = value and all(c.isalnum() or c in "._-:/+@%,=" for c in value)
        return value if plain else json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
