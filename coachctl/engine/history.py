"""Trust history: what each step's decisions across all sessions say about it.

Everything here asks the store through its batched query (`Store.metrics`): one call for
every window of every workflow a command shows, so a network store costs one round trip,
not one per step. The store answers from rows the engine derived (`engine/records.py`);
the rules that turn them into levels stay here and in `metrics.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from coachctl.engine import metrics

if TYPE_CHECKING:
    from coachctl.engine.session import Session
    from coachctl.engine.workflow import Step, Workflow
    from coachctl.store.base import BadFile, MetricsAnswer, SessionTxn, Store, WindowKey

TREND_SESSIONS = 20


def rules_of(coaching: Mapping[str, Any], **overrides: Any) -> metrics.Rules:
    base = {
        "threshold": coaching.get("threshold", 0.85),
        "min_decisions": coaching.get("min_decisions", 20),
        "window": coaching.get("window", 50),
        "strict": coaching.get("strict", True),
    }
    base.update({k: v for k, v in overrides.items() if v is not None})
    return metrics.Rules(**base)


def rules_dict(rules: metrics.Rules) -> dict[str, Any]:
    return {
        "threshold": rules.threshold,
        "min_decisions": rules.min_decisions,
        "window": rules.window,
        "strict": rules.strict,
    }


def _safe_rules(coaching: Any, **overrides: Any) -> metrics.Rules:
    """Rules from a session's recorded `coaching` (hand-edited files may hold nonsense)."""
    try:
        return rules_of(coaching if isinstance(coaching, Mapping) else {}, **overrides)
    except (ValueError, TypeError):
        return rules_of({}, **overrides)


def current_suggestion(
    store: Store, workflow: Workflow, step: Step
) -> tuple[str | None, str | None]:
    """The template a step proposes now: its `run`, else what was learned for it."""
    from coachctl.engine import corrections

    return corrections.current_suggestion(store, workflow, step)


# -- building one batched question ---------------------------------------------------------


class _Plan:
    """The workflows a command shows, and the windows their steps need."""

    def __init__(self) -> None:
        self.keys: list[WindowKey] = []
        self.workflows: list[str] = []
        self.parts: list[tuple[str, Any]] = []  # ("file", (wf, rules, steps)) / ("orphan", …)

    def add_file(self, store: Store, workflow: Workflow, overrides: Mapping[str, Any]) -> None:
        from coachctl.engine import corrections

        rules = rules_of(workflow.coaching.to_dict(), **overrides)
        proposed = corrections.suggestions(store, workflow)
        steps = []
        for step in workflow.steps:
            suggestion = proposed[step.id][0]
            key = (workflow.id, step.id, suggestion, "", rules.window) if suggestion else None
            if key is not None:
                self.keys.append(key)
            steps.append((step.id, suggestion, key, step.max_level))
        self.workflows.append(workflow.id)
        self.parts.append(("file", (workflow.id, workflow.name, rules, steps)))

    def add_orphan(self, store: Store, workflow_id: str, overrides: Mapping[str, Any]) -> None:
        """A workflow whose file is gone: the steps of its latest session's snapshot."""
        snap = store.latest_session(workflow_id) or {}
        rules = _safe_rules(snap.get("coaching"), **overrides)
        steps = []
        for step in snap.get("steps") or []:
            step_id = str(step.get("id"))
            raw = step.get("suggestion")
            suggestion = raw if isinstance(raw, str) and raw else None
            max_level = step.get("max_level")
            if max_level not in metrics.LEVELS:
                max_level = None
            key = (workflow_id, step_id, suggestion, "", rules.window) if suggestion else None
            if key is not None:
                self.keys.append(key)
            steps.append((step_id, suggestion, key, max_level))
        name = str(snap.get("workflow_name") or workflow_id)
        self.workflows.append(workflow_id)
        self.parts.append(("sessions", (workflow_id, name, rules, steps)))

    def ask(self, store: Store) -> tuple[list[dict[str, Any]], list[BadFile]]:
        answer: MetricsAnswer = store.metrics(
            {"windows": self.keys, "workflows": self.workflows, "trend": TREND_SESSIONS}
        )
        out = []
        for source, (wf, name, rules, steps) in self.parts:
            objs = [
                metrics.step_metrics(
                    step_id,
                    suggestion,
                    answer["windows"].get(key, []) if key is not None else [],
                    rules,
                    max_level,
                )
                for step_id, suggestion, key, max_level in steps
            ]
            obj = metrics.workflow_metrics(wf, objs, answer["session_counts"].get(wf, 0))
            obj["name"] = name
            obj["source"] = source
            obj["rules"] = rules_dict(rules)
            obj["trend"] = [metrics.round_metric(x) for x in answer["trends"].get(wf, [])]
            out.append(obj)
        return out, answer["bad"]


def workflow_metrics(store: Store, workflow: Workflow, **overrides: Any) -> dict[str, Any]:
    """Metrics of every step of a workflow on its current suggestions (CONTRACT §5)."""
    plan = _Plan()
    plan.add_file(store, workflow, overrides)
    return plan.ask(store)[0][0]


class Report:
    """What `stats` and `readiness` print, plus what they must warn about."""

    def __init__(
        self,
        workflows: list[dict[str, Any]],
        global_: dict[str, Any],
        bad: list[BadFile] | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        self.workflows = workflows
        self.global_ = global_
        self.bad: list[BadFile] = [] if bad is None else bad
        self.warnings: list[str] = [] if warnings is None else warnings

    def to_json(self) -> dict[str, Any]:
        return {"workflows": self.workflows, "global": self.global_}


def report(
    store: Store,
    refs: Sequence[str] = (),
    *,
    overrides: Mapping[str, Any] | None = None,
    include_orphans: bool = True,
    strict_files: bool = False,
) -> Report:
    """Metrics of the named workflows (default: every workflow file, plus workflows known
    only from sessions when `include_orphans`). Unknown names are exit 2; an invalid workflow
    file is exit 2 when named or `strict_files`, else a warning."""
    from coachctl.engine.workflow import find_workflows, load_workflow, resolve_workflow_path
    from coachctl.errors import CoachctlError, UsageError, WorkflowError

    ov = dict(overrides or {})
    warnings: list[str] = []
    plan = _Plan()
    seen: set[str] = set()
    if refs:
        known: list[str] | None = None
        for ref in refs:
            try:
                wf = load_workflow(resolve_workflow_path(ref, store.home))
            except WorkflowError:
                raise
            except UsageError:
                if known is None:
                    known = store.workflow_ids()
                if ref not in known:
                    raise UsageError(
                        f"unknown workflow: {ref} (no workflow file, and no session of it)"
                    ) from None
                if ref not in seen:
                    seen.add(ref)
                    plan.add_orphan(store, ref, ov)
                continue
            if wf.id not in seen:
                seen.add(wf.id)
                plan.add_file(store, wf, ov)
    else:
        for path in find_workflows(store.home):
            try:
                wf = load_workflow(path)
            except CoachctlError as exc:
                if strict_files:
                    raise
                warnings.append(f"skipped invalid workflow file: {exc}")
                continue
            if wf.id not in seen:
                seen.add(wf.id)
                plan.add_file(store, wf, ov)
        if include_orphans:
            for wf_id in sorted(set(store.workflow_ids()) - seen):
                plan.add_orphan(store, wf_id, ov)
    objects, bad = plan.ask(store)
    return Report(objects, metrics.global_metrics(objects), bad, warnings)


# -- levels ----------------------------------------------------------------------------------


def _session_key(session: Session, step: Mapping[str, Any]) -> WindowKey | None:
    from coachctl.engine.scope import scope_key

    suggestion = step.get("suggestion") or None
    if not suggestion:
        return None
    rules = _safe_rules(session.coaching)
    data = {"coaching": session.coaching, "variables": session.variables}
    return (session.workflow_id, str(step["id"]), str(suggestion), scope_key(data), rules.window)


def session_step_metrics(store: Store, session: Session, step: Mapping[str, Any]) -> dict[str, Any]:
    """CONTRACT §5 step metrics for the command a session's step carries (its snapshot)."""
    key = _session_key(session, step)
    kinds: list[str] = []
    if key is not None:
        answer = store.metrics({"windows": [key], "workflows": [], "trend": 0})
        kinds = answer["windows"].get(key, [])
    rules = _safe_rules(session.coaching)
    suggestion = step.get("suggestion") or None
    return metrics.step_metrics(str(step["id"]), suggestion, kinds, rules, step.get("max_level"))


def step_level(store: Store, session: Session, step: Mapping[str, Any]) -> str:
    """The level of a session's step on the suggestion it carries."""
    return str(session_step_metrics(store, session, step)["level"])


def level_changes(txn: SessionTxn, data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Inside a session's transaction: the levels of its workflow's steps now (seeing the
    staged decisions), against the last recorded ones; `level_changed` events for changes."""
    from coachctl.engine.scope import scope_key
    from coachctl.engine.session import utcnow

    rules = _safe_rules(data.get("coaching"))
    wf = str(data["workflow_id"])
    scope = scope_key(data)
    steps = []
    for step in data.get("steps") or []:
        step_id = step.get("id") if isinstance(step, Mapping) else None
        if not isinstance(step_id, str) or not step_id:
            continue
        suggestion = step.get("suggestion")
        key = (wf, step_id, str(suggestion), scope, rules.window) if suggestion else None
        steps.append((step_id, key, step.get("max_level")))
    keys = [k for _, k, _ in steps if k is not None]
    windows = txn.windows(keys) if keys else {}
    now: dict[str, str] = {}
    for step_id, key, max_level in steps:
        try:
            if key is None:
                now[step_id] = metrics.level_of(False, False, max_level)
            else:
                ready = metrics.is_ready(metrics.counts(windows.get(key, [])), rules)
                now[step_id] = metrics.level_of(True, ready, max_level)
        except ValueError:
            continue  # an unknown max_level in a hand-edited file: no level to track
    if not now:
        return []
    now[""] = min(now.values(), key=metrics.LEVELS.index)
    known = txn.levels(wf, scope)
    changes = []
    events: list[dict[str, Any]] = []
    ts = utcnow()
    for step_id, level in now.items():
        before = known.get(step_id)
        if before == level:
            continue
        changes.append({"workflow_id": wf, "step_id": step_id, "scope": scope, "level": level})
        if before is not None:
            events.append(
                {
                    "ts": ts,
                    "event": "level_changed",
                    "session_id": str(data["id"]),
                    "workflow_id": wf,
                    "step_id": step_id or None,
                    "from": before,
                    "to": level,
                }
            )
    txn.set_levels(changes)  # type: ignore[arg-type]
    # The workflow's own change reads best after its steps'.
    events.sort(key=lambda e: e["step_id"] is None)
    return events
