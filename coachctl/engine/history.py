"""Trust history: what each step's decisions across all sessions say about it.

The session files are the only source of truth. This module answers "which suggestion does
a step have now, and how far is it trusted" by reading them; `full_recompute` is the slow,
obviously-correct path that `doctor` compares the derived index against.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from coachctl.engine import metrics
from coachctl.engine.store import Store

if TYPE_CHECKING:
    from coachctl.engine.session import Session
    from coachctl.engine.workflow import Step, Workflow


def rules_of(coaching: Mapping[str, Any], **overrides: Any) -> metrics.Rules:
    base = {
        "threshold": coaching.get("threshold", 0.85),
        "min_decisions": coaching.get("min_decisions", 20),
        "window": coaching.get("window", 50),
        "strict": coaching.get("strict", True),
    }
    base.update({k: v for k, v in overrides.items() if v is not None})
    return metrics.Rules(**base)


def current_suggestion(
    store: Store, workflow: Workflow, step: Step
) -> tuple[str | None, str | None]:
    """The template a step proposes now: its `run`, else what was learned for it."""
    from coachctl.engine import learning

    return learning.current_suggestion(store, workflow, step)


def iter_sessions(store: Store, workflow_id: str | None = None) -> Iterable[dict[str, Any]]:
    """Every readable session file (of one workflow); unreadable ones are skipped here."""
    from coachctl.errors import CoachctlError

    for sid in store.list_ids():
        try:
            data = store.load_raw(sid)
        except CoachctlError:
            continue
        if workflow_id is None or data.get("workflow_id") == workflow_id:
            yield data


def step_kinds(
    decisions: Iterable[Mapping[str, Any]], step_id: str, suggestion: str | None
) -> list[str]:
    """Chronological kinds of a step's decisions on exactly this suggestion."""
    rows = [
        d
        for d in decisions
        if d.get("step_id") == step_id and d.get("suggestion") == suggestion
    ]
    rows.sort(key=lambda d: str(d.get("decided_at", "")))
    return [k for k in (metrics.classify(d) for d in rows) if k is not None]


def _workflow_decisions(store: Store, workflow_id: str) -> tuple[list[dict[str, Any]], int]:
    decisions: list[dict[str, Any]] = []
    sessions = 0
    for data in iter_sessions(store, workflow_id):
        sessions += 1
        decisions.extend(d for d in data.get("decisions", []) if isinstance(d, dict))
    return decisions, sessions


def workflow_metrics(store: Store, workflow: Workflow, **overrides: Any) -> dict[str, Any]:
    """Metrics of every step of a workflow on its current suggestions (CONTRACT §5)."""
    decisions, sessions = _workflow_decisions(store, workflow.id)
    rules = rules_of(workflow.coaching.to_dict(), **overrides)
    steps = []
    for step in workflow.steps:
        suggestion, _ = current_suggestion(store, workflow, step)
        kinds = step_kinds(decisions, step.id, suggestion) if suggestion else []
        steps.append(metrics.step_metrics(step.id, suggestion, kinds, rules, step.max_level))
    return metrics.workflow_metrics(workflow.id, steps, sessions)


def step_level(store: Store, session: Session, step: Mapping[str, Any]) -> str:
    """The level of a session's step on the suggestion it carries."""
    suggestion = step.get("suggestion")
    if not suggestion:
        return metrics.level_of(False, False, step.get("max_level"))
    decisions, _ = _workflow_decisions(store, session.workflow_id)
    kinds = step_kinds(decisions, str(step["id"]), suggestion)
    rules = rules_of(session.coaching)
    c = metrics.counts(kinds[-rules.window :])
    return metrics.level_of(True, metrics.is_ready(c, rules), step.get("max_level"))


def after_write(store: Store, session: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Bring derived state up to date after a session file was written; extra events."""
    return []
