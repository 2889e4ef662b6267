"""`readiness`: the CI gate. Exit 0 ready, 1 not ready, 2 error (it fails closed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click

from coachctl.commands import _complete
from coachctl.commands._common import get_store
from coachctl.commands._output import to_json

FORMATS = ("text", "json", "table", "csv")


def parse_threshold(raw: str | None) -> float | None:
    from coachctl.errors import UsageError

    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"invalid --threshold: {raw} (expected a number between 0 and 1)")
    return value


def parse_min_decisions(raw: str | None) -> int | None:
    from coachctl.errors import UsageError

    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    from coachctl.engine.coaching import MAX_COUNT

    if not 0 <= value <= MAX_COUNT:
        raise UsageError(
            f"invalid --min-decisions: {raw} (expected an integer from 0 to {MAX_COUNT})"
        )
    return value


def why_never(step: Mapping[str, Any], rules: Mapping[str, Any] | None = None) -> str:
    """Why no number of accepts can make a step ready."""
    reason = str(step.get("reason") or "")
    if reason.startswith(("capped", "no suggestion")):
        return reason
    if rules and rules.get("window", 0) < rules.get("min_decisions", 0):
        return f"min_decisions {rules['min_decisions']} is more than the window {rules['window']}"
    return f"even a full window of accepts does not reach the threshold ({reason})"


def explain(workflows: Sequence[Mapping[str, Any]], ready: bool, width: int | None = None) -> str:
    """READY / NOT READY, then each workflow and, for each blocking step, what it needs.

    Rates and confidences have two decimals, as in the reasons; a step's line wraps to the
    terminal with a deeper indent, so the step ids stay easy to scan.
    """
    import textwrap

    from coachctl.engine.scope import label

    lines = ["READY" if ready else "NOT READY"]
    for w in workflows:
        state = "ready" if w["ready"] else "not ready"
        where = f" for {label(w['scope'])}" if w.get("scope") else ""
        lines.append(f"{w['workflow_id']}: {state}{where} (level {w['level']})")
        for s in w["steps"]:
            if s["ready"]:
                continue
            rate = "n/a" if s["acceptance_rate"] is None else f"{s['acceptance_rate']:.2f}"
            conf = "n/a" if s["confidence"] is None else f"{s['confidence']:.2f}"
            needed = s["accepts_needed"]
            need = (
                f"cannot become ready: {why_never(s, w.get('rules'))}"
                if needed is None
                else f"needs {needed} more accept{'s' if needed != 1 else ''} in a row"
            )
            n = s["suggestions"]
            why = f" ({s['reason']})" if needed is not None else ""
            line = (
                f"  {s['step_id']}: rate {rate}, confidence {conf}, "
                f"{n} decision{'s' if n != 1 else ''}; {need}{why}"
            )
            if width is None:
                lines.append(line)
            else:
                lines.extend(
                    textwrap.wrap(
                        line,
                        width=max(width - 1, 40),
                        subsequent_indent="      ",
                        break_long_words=False,
                        break_on_hyphens=False,
                    )
                )
    return "\n".join(lines)


def check_scope_vars(given: Mapping[str, str], workflows: Sequence[Mapping[str, Any]]) -> None:
    """`--var` here names a scope: one that no reported workflow scopes by is a mistake."""
    from coachctl.errors import UsageError

    used = {name for w in workflows for name in (w.get("scope") or {})}
    unused = sorted(set(given) - used)
    if unused:
        raise UsageError(
            f"--var {unused[0]}: not a trust_scope variable of "
            + (", ".join(dict.fromkeys(str(w["workflow_id"]) for w in workflows)) or "any workflow")
        )


EPILOG = """\b
Examples:
  coachctl readiness                     # every workflow in the home
  coachctl readiness rotate-certs --format json
  coachctl readiness deploy --var env=prod   # one trust scope (trust_scope: [env])
  coachctl readiness checklist --step verify --step report   # gate on some steps
  coachctl readiness hello || echo 'not yet: keep coaching'
"""


def gate_steps(workflow: Mapping[str, Any], steps: Sequence[str]) -> bool:
    """Whether every named step of `workflow` is ready; an unknown step id is exit 2."""
    from coachctl.errors import UsageError

    by_id = {s["step_id"]: s for s in workflow["steps"]}
    unknown = [s for s in steps if s not in by_id]
    if unknown:
        raise UsageError(
            f"unknown step {unknown[0]!r} in {workflow['workflow_id']} "
            f"(its steps: {', '.join(by_id)})"
        )
    return all(by_id[s]["ready"] for s in steps)


def only_steps(workflow: Mapping[str, Any], steps: Sequence[str]) -> dict[str, Any]:
    """The workflow as `explain` prints it when only `steps` are gated on: their lowest
    level, their readiness."""
    from coachctl.engine.metrics import LEVELS

    chosen = [s for s in workflow["steps"] if s["step_id"] in steps]
    ready = all(s["ready"] for s in chosen)
    level = min((s["level"] for s in chosen), key=LEVELS.index)
    label = f"{workflow['workflow_id']} (steps {', '.join(dict.fromkeys(steps))})"
    return {**workflow, "workflow_id": label, "steps": chosen, "ready": ready, "level": level}


@click.command(epilog=EPILOG)
@click.argument("workflows", nargs=-1, shell_complete=_complete.workflows)
@click.option(
    "--threshold", metavar="F", help="Acceptance rate needed (0..1) [default: the workflow's]."
)
@click.option(
    "--min-decisions", metavar="N", help="Decisions needed per step [default: the workflow's]."
)
@click.option(
    "--strict/--no-strict",
    default=None,
    help="Require the 95% confidence bound to reach the threshold too [default: the workflow's].",
)
@click.option(
    "--var",
    "var_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="Name the trust scope to check (a trust_scope variable; its default otherwise).",
)
@click.option(
    "--format",
    "fmt",
    default="text",
    show_default=True,
    metavar="[text|json|table|csv]",
    help="Output format.",
    shell_complete=_complete.choices(*FORMATS),
)
@click.option(
    "--table-format",
    default="simple",
    show_default=True,
    metavar="NAME",
    help="Any tabulate format (with --format table).",
)
@click.option(
    "--step",
    "steps",
    multiple=True,
    metavar="STEP_ID",
    help="Gate only on these steps of the one WORKFLOW named (repeatable): for checklists "
    "whose human-only steps can never be AUTO.",
    shell_complete=_complete.workflow_steps,
)
@click.option("--wide", is_flag=True, help="Show every column, uncut (with --format table).")
@click.option(
    "--columns",
    metavar="COL,COL…",
    help="Table columns to show, by their CSV/JSON names (with --format table).",
)
@click.pass_context
def readiness(
    ctx: click.Context,
    workflows: tuple[str, ...],
    threshold: str | None,
    min_decisions: str | None,
    strict: bool | None,
    var_items: tuple[str, ...],
    fmt: str,
    table_format: str,
    steps: tuple[str, ...],
    wide: bool,
    columns: str | None,
) -> None:
    """Exit 0 when every named workflow (default: every workflow file) is ready for AUTO,
    1 when one is not, 2 on an error.

    Made for CI: it fails closed, so an unreadable session file of a named workflow is an
    error, not a silent pass. It says what each blocking step still needs. With --step,
    only the named steps of one workflow must be ready (the workflow's own level and
    readiness are still shown). A workflow with a trust_scope is checked for one scope:
    --var env=prod (else the variable's default; with neither, exit 2).
    """
    from coachctl.commands._output import emit_rows, terminal_width
    from coachctl.commands.stats import STEP_COLUMNS, STEP_VIEW, workflow_rows
    from coachctl.engine import history
    from coachctl.errors import StateError, UsageError

    if fmt not in FORMATS:
        raise UsageError(f"invalid --format: {fmt} (expected one of {', '.join(FORMATS)})")
    if steps and len(workflows) != 1:
        raise UsageError("--step needs exactly one WORKFLOW: coachctl readiness W --step S")
    overrides = {
        "threshold": parse_threshold(threshold),
        "min_decisions": parse_min_decisions(min_decisions),
        "strict": strict,
    }
    from coachctl.engine.templates import parse_var_assignments

    given = parse_var_assignments(var_items)
    store = get_store(ctx)
    rep = history.report(
        store,
        workflows,
        overrides=overrides,
        include_orphans=False,
        strict_files=True,
        given=given,
        one_scope=True,
    )
    check_scope_vars(given, rep.workflows)
    if not rep.workflows:
        raise UsageError(f"no workflows to check in {store.home / 'workflows'}")
    named = {w["workflow_id"] for w in rep.workflows}
    blocking = [b for b in rep.bad if b.workflow_id is None or b.workflow_id in named]
    if blocking:
        more = f" (and {len(blocking) - 1} more)" if len(blocking) > 1 else ""
        raise StateError(f"cannot decide readiness: {blocking[0].reason}{more}")
    ready = all(w["ready"] for w in rep.workflows)
    if steps:
        ready = gate_steps(rep.workflows[0], steps)
    if fmt == "json":
        out: dict[str, Any] = {"ready": ready, "workflows": rep.workflows}
        if steps:
            out["steps"] = list(dict.fromkeys(steps))
        click.echo(to_json(out))
    elif fmt == "text":
        shown = [only_steps(rep.workflows[0], steps)] if steps else rep.workflows
        click.echo(explain(shown, ready, terminal_width()))
    else:
        rows = workflow_rows(rep.workflows, "step")
        emit_rows(rows, STEP_COLUMNS, fmt, table_format, view=STEP_VIEW, wide=wide, pick=columns)
    ctx.exit(0 if ready else 1)
