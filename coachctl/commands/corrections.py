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
    from coachctl.engine.scope import Scope
    from coachctl.engine.workflow import Workflow
    from coachctl.store.base import Store

COLUMNS = ("workflow_id", "step_id", "base", "correction", "times", "adopted", "source", "stale")
#: With a trust scope in sight, a `scope` column follows the step (`env=prod`; empty: none).
SCOPED_COLUMNS = ("workflow_id", "step_id", "scope", *COLUMNS[2:])

VAR_HELP = (
    "Name the trust scope (a trust_scope variable; its default otherwise): in a workflow "
    "with a trust_scope, each scope has its own suggestions."
)


@click.group(
    cls=SuggestingGroup,
    epilog="""\b
Examples:
  coachctl corrections list hello
  coachctl corrections export hello -o hello-pack.yaml
  coachctl corrections import hello-pack.yaml --yes
  coachctl corrections adopt hello clock --command 'date -u +%s'
  coachctl corrections drop hello clock
  coachctl corrections adopt deploy ship --var env=prod   # one trust scope
""",
)
def corrections() -> None:
    """Correction packs: what people reported and corrected, and the suggestions learned.

    A step without `run` learns the command people report most (min_observations); a
    correction made adopt_after times becomes the suggestion. Either starts at zero trust.
    In a workflow with a trust_scope, all of this is per scope: what staging taught is
    never prod's suggestion.
    """


def _scope(wf: Workflow, var_items: tuple[str, ...]) -> Scope | None:
    """The trust scope a hand choice is for: --var values, else the defaults (exit 2 when
    a scope variable has neither); None for a workflow without a trust_scope."""
    from coachctl.engine import scope
    from coachctl.engine.templates import parse_var_assignments
    from coachctl.errors import UsageError

    given = parse_var_assignments(var_items)
    names = wf.coaching.trust_scope
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise UsageError(f"--var {unknown[0]}: not a trust_scope variable of {wf.id}")
    return scope.resolve(wf.id, names, wf.variables, given)


def _for(where: Scope | None) -> str:
    from coachctl.engine.scope import label

    return f" for {label(where)}" if where else ""


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

    `stale` marks what no longer applies because the workflow's `run` changed. `scope`
    (shown when a workflow has a trust_scope) is the scope an entry was learned in; empty
    in a scoped workflow: a choice made before it had a trust_scope, for every scope.
    """
    from coachctl.engine import corrections as cs
    from coachctl.engine import pack_share
    from coachctl.engine.scope import label

    store = get_store(ctx)
    rows: list[dict[str, Any]] = []
    if workflow is not None:
        wf = _workflow(store, workflow)
        rows = pack_share.rows(cs.load_pack(store, wf.id, wf.coaching.trust_scope), wf)
    else:
        for workflow_id in store.pack_ids():
            found = _maybe_workflow(store, workflow_id)
            names = found.coaching.trust_scope if found is not None else None
            rows.extend(pack_share.rows(cs.load_pack(store, workflow_id, names), found))
    cols = SCOPED_COLUMNS if any(r["scope"] for r in rows) else COLUMNS
    shown = [{**r, "scope": label(r["scope"])} for r in rows] if fmt != "json" else rows
    view = View(cols, shrink=("correction", "base"))
    emit_rows(
        shown,
        cols,
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
    from coachctl.engine import pack_share
    from coachctl.errors import UsageError

    store = get_store(ctx)
    wf = _workflow(store, workflow)
    doc = pack_share.export(cs.load_pack(store, wf.id, wf.coaching.trust_scope))
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
    from coachctl.engine.scope import parse_key

    step = f"{c['step_id']}{_for(parse_key(c['key']))}"
    if c["what"] == "suggestion":
        old = c["old"] or "(none)"
        stale = " (stale: the workflow's run changed since)" if c["stale"] else ""
        return f"  {step}: suggestion {old} -> {c['new']}{stale}"
    base = c["base"] or "(no suggestion)"
    return f"  {step}: correction {base} -> {c['new']}: times {c['old_times']} -> {c['times']}"


@corrections.command("import", short_help="Import a pack (shows what changes first).")
@click.argument("file", metavar="FILE")
@click.option("--yes", is_flag=True, help="Apply without asking (needed without a terminal).")
@click.option(
    "--var",
    "var_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="The trust scope of the pack's steps that name none (a trust_scope variable; its "
    "default otherwise).",
)
@click.pass_context
def import_(ctx: click.Context, file: str, yes: bool, var_items: tuple[str, ...]) -> None:
    """Import a pack exported with `corrections export`: shows what changes, then asks.

    Imported suggestions apply only over the `run` they were made for; imported correction
    counts never lower this home's own. Without a terminal it needs --yes. A step exported
    with a `scope` goes to that scope; in a workflow with a trust_scope, the others go to
    the scope --var names.
    """
    import yaml

    from coachctl.commands._common import interactive
    from coachctl.engine import corrections as cs
    from coachctl.engine import pack_share
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
    doc = pack_share.parse_export(raw, file)
    wf = _workflow(store, doc["workflow"])
    unnamed = any(item.get("scope") is None for item in doc["steps"])
    default = _scope(wf, var_items) if unnamed or var_items else None
    changes = cs.plan_import(store, wf, doc, default)
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
    applied = cs.apply_import(store, wf, doc, default)
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
@click.option("--var", "var_items", multiple=True, metavar="KEY=VALUE", help=VAR_HELP)
@output_options(("text", "json"))
@click.pass_context
def adopt(
    ctx: click.Context,
    workflow: str,
    step: str,
    command: str | None,
    var_items: tuple[str, ...],
    fmt: str,
) -> None:
    """Make a correction (or CMD) STEP's suggestion now, without waiting for adopt_after.

    It starts at zero trust: the step is coached again before it can run alone. In a
    workflow with a trust_scope it is for one scope (--var env=prod, else the default).
    """
    from coachctl.engine import corrections as cs

    store = get_store(ctx)
    wf = _workflow(store, workflow)
    adopted = cs.adopt(store, wf, step, command, _scope(wf, var_items))
    if fmt == "json":
        click.echo(to_json(adopted))
        return
    click.echo(
        f"{wf.id}/{step}{_for(adopted['scope'])} now proposes: {adopted['command']} "
        f"({adopted['source']}; it starts at zero trust)"
    )


@corrections.command("drop", short_help="Forget a step's learned suggestion.")
@click.argument("workflow", shell_complete=_complete.workflows)
@click.argument("step", shell_complete=_complete.workflow_steps)
@click.option("--var", "var_items", multiple=True, metavar="KEY=VALUE", help=VAR_HELP)
@output_options(("text", "json"))
@click.pass_context
def drop(
    ctx: click.Context, workflow: str, step: str, var_items: tuple[str, ...], fmt: str
) -> None:
    """Forget STEP's learned or adopted suggestion: it proposes its `run` again.

    The dropped command is not learned again by itself (`adopt` can bring it back). In a
    workflow with a trust_scope it is for one scope (--var env=prod, else the default).
    """
    from coachctl.engine import corrections as cs

    store = get_store(ctx)
    wf = _workflow(store, workflow)
    dropped = cs.drop(store, wf, step, _scope(wf, var_items))
    run = next(s.run for s in wf.steps if s.id == step)
    if fmt == "json":
        click.echo(to_json({**dropped, "suggestion": run}))
        return
    now = run or "nothing (a person does it and reports what they ran)"
    click.echo(
        f"{wf.id}/{step}{_for(dropped['scope'])} dropped {dropped['command']}; it proposes {now}"
    )
