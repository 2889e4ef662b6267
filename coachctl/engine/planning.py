"""Starting a session: what `run` knows before it writes anything, then the session itself.

Kept apart from deciding because it is the only path that reads the workflow file (YAML,
variables, suggestions, trust levels); `decide` never needs any of that, so it stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from coachctl.engine import session as sm
from coachctl.engine.persist import event, warn
from coachctl.engine.session import Session
from coachctl.errors import UsageError

if TYPE_CHECKING:
    from coachctl.engine.workflow import Workflow
    from coachctl.store.base import Store


def snapshot_steps(
    store: Store,
    workflow: Workflow,
    variables: Mapping[str, str],
    within: Mapping[str, str | None] | None = None,
) -> list[dict[str, Any]]:
    """The steps as this session will run them: templates, filled-in commands, suggestions
    (those of its trust scope `within`: what staging learned is never prod's suggestion)."""
    from coachctl.engine import corrections
    from coachctl.engine.templates import render_run, render_text

    proposed = corrections.suggestions(store, workflow, within)
    steps = []
    for step in workflow.steps:
        data = step.to_dict()
        suggestion, source = proposed[step.id]
        data["suggestion"] = suggestion
        data["source"] = source
        data["command"] = render_run(suggestion, variables) if suggestion else None
        data["instructions_text"] = (
            render_text(step.instructions, variables) if step.instructions else None
        )
        steps.append(data)
    return steps


class Plan:
    """What `run` knows before it writes anything (what --dry-run prints)."""

    def __init__(
        self,
        workflow: Workflow,
        mode: str,
        variables: dict[str, str],
        steps: list[dict[str, Any]],
        start_at: int,
        levels: list[str],
        blocking: list[dict[str, Any]],
        scope: dict[str, str | None] | None = None,
    ) -> None:
        self.scope = scope  # the trust scope this session will count toward (None: none)
        self.elsewhere: dict[str, list[str]] = {}  # step -> scopes it is AUTO in (--dry-run)
        self.workflow = workflow
        self.mode = mode
        self.variables = variables
        self.steps = steps
        self.start_at = start_at
        self.levels = levels
        self.blocking = blocking


def plan(
    store: Store,
    workflow_ref: str,
    *,
    mode: str,
    var_items: Sequence[str] = (),
    start_at: str | None = None,
) -> Plan:
    """Everything `run` needs before it writes: the workflow, variables, levels, blockers."""
    from coachctl.engine import history
    from coachctl.engine.templates import parse_var_assignments, resolve_variables
    from coachctl.engine.workflow_files import resolve_workflow_path
    from coachctl.engine.workflow_load import load_workflow

    if mode not in sm.MODES:
        raise UsageError(f"invalid mode: {mode} (expected one of {', '.join(sm.MODES)})")
    workflow = load_workflow(resolve_workflow_path(workflow_ref, store.home))
    variables = resolve_variables(workflow, parse_var_assignments(var_items))
    from coachctl.engine.scope import scope_of

    within = scope_of({"variables": variables}, workflow.coaching.trust_scope) or None
    steps = snapshot_steps(store, workflow, variables, within)
    index = 0
    if start_at is not None:
        ids = [s["id"] for s in steps]
        if start_at not in ids:
            raise UsageError(f"unknown step for --start-at: {start_at} (steps: {', '.join(ids)})")
        index = ids.index(start_at)
    metrics = history.workflow_metrics(store, workflow, within=within)
    levels = [s["level"] for s in metrics["steps"]]
    blocking = [s for s in metrics["steps"][index:] if not s["ready"]]
    return Plan(workflow, mode, variables, steps, index, levels, blocking, within)


def start(store: Store, p: Plan) -> Session:
    """Create and save the session of a plan."""
    from coachctl.engine.records import derive
    from coachctl.store.ids import new_session_id

    session = sm.new_session(
        new_session_id(),
        workflow_id=p.workflow.id,
        workflow_name=p.workflow.name,
        workflow_path=str(p.workflow.path),
        mode=p.mode,
        steps=p.steps,
        variables=p.variables,
        coaching=p.workflow.coaching.to_dict(),
        start_at=p.start_at,
    )
    if p.scope:  # recorded at start, fixed for the session's life (nothing takes --var later)
        session.extra["scope"] = dict(p.scope)
    data = session.to_dict()
    derive(data)  # refuse what could not be read back
    for message in store.create(data, [event("session_started", session, mode=session.mode)]):
        warn(message)
    return session
