"""`coachctl corrections`: see, share and steer what coachctl learned from people."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from coachctl.cli import SuggestingGroup
from coachctl.commands import _complete
from coachctl.commands._common import get_store
from coachctl.commands._output import View, emit_rows, output_options, to_json

if TYPE_CHECKING:
    from coachctl.engine.workflow import Workflow
    from coachctl.store.base import Store

COLUMNS = ("workflow_id", "step_id", "base", "correction", "times", "adopted", "source", "stale")


@click.group(
    cls=SuggestingGroup,
    epilog="""\b
Examples:
  coachctl corrections list hello
  coachctl corrections export hello -o hello-pack.yaml
  coachctl corrections import hello-pack.yaml --yes
  coachctl corrections adopt hello clock --command 'date -u +%s'
  coachctl corrections drop hello clock
""",
)
def corrections() -> None:
    """Correction packs: what people reported and corrected, and the suggestions learned.

    A step without `run` learns the command people report most (min_observations); a
    correction made adopt_after times becomes the suggestion. Either starts at zero trust.
    """


def _workflow(store: Store, ref: str) -> Workflow:
    from coachctl.engine.workflow_files import resolve_workflow_path
    from coachctl.engine.workflow_load import load_workflow

    return load_workflow(resolve_workflow_path(ref, store.home))


def _maybe_workflow(store: Store, workflow_id: str) -> Workflow | None:
    """The home's workflow of a pack, or None when it is gone or invalid (rows show stale)."""
    from coachctl.errors import CoachctlError

    try:
        return _workflow(store, workflow_id)
    except CoachctlError:
        return None


@corrections.command("list", short_help="List corrections, observed commands, adopted suggestions.")
@click.argument("workflow", required=False, shell_complete=_complete.workflows)
@output_options(wide=True)
@click.pass_context
def list_(
    ctx: click.Context,
    workflow: str | None,
    fmt: str,
    table_format: str,
    wide: bool,
    columns: str | None,
) -> None:
    """List corrections, observed commands and adopted suggestions (of WORKFLOW, or all).

    `stale` marks what no longer applies because the workflow's `run` changed.
    """
    from coachctl.engine import corrections as cs
    from coachctl.engine import learning

    store = get_store(ctx)
    rows: list[dict[str, Any]] = []
    if workflow is not None:
        wf = _workflow(store, workflow)
        rows = learning.rows(cs.load_pack(store, wf.id), wf)
    else:
        for workflow_id in store.pack_ids():
            pack = cs.load_pack(store, workflow_id)
            rows.extend(learning.rows(pack, _maybe_workflow(store, workflow_id)))
    view = View(COLUMNS, shrink=("correction", "base"))
    emit_rows(
        rows,
        COLUMNS,
        fmt,
        table_format,
        json_obj={"corrections": rows},
        view=view,
        wide=wide,
        pick=columns,
    )


@corrections.command("export", short_help="Export a workflow's pack as YAML.")
@click.argument("workflow", shell_complete=_complete.workflows)
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
@click.pass_context
def export(ctx: click.Context, workflow: str, output: str | None) -> None:
    """Export WORKFLOW's correction pack as YAML, to share it with another home."""
    import yaml

    from coachctl.engine import corrections as cs
    from coachctl.engine import learning
    from coachctl.errors import UsageError

    store = get_store(ctx)
    wf = _workflow(store, workflow)
    doc = learning.export(cs.load_pack(store, wf.id))
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"exported {len(doc['steps'])} step(s) of {wf.id} to {output}", err=True)


def _change_line(c: Mapping[str, Any]) -> str:
    if c["what"] == "suggestion":
        old = c["old"] or "(none)"
        stale = " (stale: the workflow's run changed since)" if c["stale"] else ""
        return f"  {c['step_id']}: suggestion {old} -> {c['new']}{stale}"
    base = c["base"] or "(no suggestion)"
    return (
        f"  {c['step_id']}: correction {base} -> {c['new']}: times {c['old_times']} -> {c['times']}"
    )


@corrections.command("import", short_help="Import a pack (shows what changes first).")
@click.argument("file", metavar="FILE")
@click.option("--yes", is_flag=True, help="Apply without asking (needed without a terminal).")
@click.pass_context
def import_(ctx: click.Context, file: str, yes: bool) -> None:
    """Import a pack exported with `corrections export`: shows what changes, then asks.

    Imported suggestions apply only over the `run` they were made for; imported correction
    counts never lower this home's own. Without a terminal it needs --yes.
    """
    import yaml

    from coachctl.commands._common import interactive
    from coachctl.engine import corrections as cs
    from coachctl.engine import learning
    from coachctl.errors import UsageError

    store = get_store(ctx)
    try:
        with open(file, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark is not None else file
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise UsageError(f"{where}: invalid correction pack: {problem}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{file}: invalid correction pack: not UTF-8 text") from None
    doc = learning.parse_export(raw, file)
    wf = _workflow(store, doc["workflow"])
    changes = learning.plan_import(cs.load_pack(store, wf.id), doc, wf)
    if not changes:
        click.echo(f"nothing to change: {wf.id}'s pack already has everything in {file}")
        return
    click.echo(f"importing {file} into {wf.id} changes:")
    for c in changes:
        click.echo(_change_line(c))
    if not yes:
        if not interactive(False):
            raise UsageError("not imported: without a terminal, confirm with --yes")
        if not click.confirm("apply these changes?", default=False):
            click.echo("nothing changed")
            return
    applied = cs.apply_import(store, wf, doc)
    click.echo(f"imported {len(applied)} change(s) into {wf.id}")


@corrections.command("adopt", short_help="Make a correction (or CMD) a step's suggestion now.")
@click.argument("workflow", shell_complete=_complete.workflows)
@click.argument("step", shell_complete=_complete.workflow_steps)
@click.option(
    "--command",
    metavar="CMD",
    help="Adopt this command (a `run` template); default: the most frequent correction or "
    "observed command of the step.",
)
@output_options(("text", "json"))
@click.pass_context
def adopt(ctx: click.Context, workflow: str, step: str, command: str | None, fmt: str) -> None:
    """Make a correction (or CMD) STEP's suggestion now, without waiting for adopt_after.

    It starts at zero trust: the step is coached again before it can run alone.
    """
    from coachctl.engine import corrections as cs

    store = get_store(ctx)
    wf = _workflow(store, workflow)
    adopted = cs.adopt(store, wf, step, command)
    if fmt == "json":
        click.echo(to_json(adopted))
        return
    click.echo(
        f"{wf.id}/{step} now proposes: {adopted['command']} ({adopted['source']}; "
        "it starts at zero trust)"
    )


@corrections.command("drop", short_help="Forget a step's learned suggestion.")
@click.argument("workflow", shell_complete=_complete.workflows)
@click.argument("step", shell_complete=_complete.workflow_steps)
@output_options(("text", "json"))
@click.pass_context
def drop(ctx: click.Context, workflow: str, step: str, fmt: str) -> None:
    """Forget STEP's learned or adopted suggestion: it proposes its `run` again.

    The dropped command is not learned again by itself (`adopt` can bring it back).
    """
    from coachctl.engine import corrections as cs

    store = get_store(ctx)
    wf = _workflow(store, workflow)
    dropped = cs.drop(store, wf, step)
    run = next(s.run for s in wf.steps if s.id == step)
    if fmt == "json":
        click.echo(to_json({**dropped, "suggestion": run}))
        return
    now = run or "nothing (a person does it and reports what they ran)"
    click.echo(f"{wf.id}/{step} dropped {dropped['command']}; it proposes {now}")
