"""Trust history: what each step's decisions across all sessions say about it.

Everything here asks the store through its batched query (`Store.metrics`): one call for
every window of every workflow a command shows, so a network store costs one round trip,
not one per step. The store answers from rows the engine derived (`engine/records.py`);
the rules that turn them into levels stay here and in `metrics.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from coachctl.engine import metrics, scope

if TYPE_CHECKING:
    from coachctl.engine.session import Session
    from coachctl.engine.workflow import Step, Workflow
    from coachctl.store.base import BadFile, MetricsAnswer, SessionTxn, Store, WindowKey

TREND_SESSIONS = 20


Within = Mapping[str, "str | None"] | None


def rules_of(
    coaching: Mapping[str, Any], step: Mapping[str, Any] | None = None, **overrides: Any
) -> metrics.Rules:
    """A step's rules: the workflow's `coaching`, its own `coaching:` keys, then overrides."""
    return metrics.Rules.of(coaching, step, overrides)


def rules_dict(rules: metrics.Rules) -> dict[str, Any]:
    return {
        "threshold": rules.threshold,
        "min_decisions": rules.min_decisions,
        "window": rules.window,
        "strict": rules.strict,
    }


def _safe_rules(coaching: Any, step: Any = None, **overrides: Any) -> metrics.Rules:
    """Rules from a session's recorded `coaching` and a snapshot step's own `coaching`
    (hand-edited files may hold nonsense: a broken layer is ignored)."""
    return metrics.Rules.safe(coaching, step, **overrides)


class _Scopes:
    """What the windows cannot say by themselves: which scopes of a workflow were seen, and
    each one's session count and trend. Read from the store's session summaries (each keeps
    the scope key it recorded, or the values of a session that recorded none: the index on
    the file store, a column on PostgreSQL), so no session is re-read; an unscoped workflow
    costs nothing here."""

    def __init__(self, store: Store, workflow_id: str, names: Sequence[str]) -> None:
        self.found: dict[str, scope.Scope] = {}
        self.rates: dict[str, list[float | None]] = {}
        wanted = set(names)
        summaries, _bad = store.list_sessions(workflow_id)
        parsed: dict[str, scope.Scope] = {}  # a few keys over many sessions: parse each once
        for row, key in zip(summaries, scope.summary_keys(summaries, names), strict=True):
            own = parsed.get(key)
            if own is None:
                own = parsed[key] = scope.parse_key(key) or {}
            if set(own) != wanted:  # counted under another trust_scope (or none): not here
                continue
            self.found[key] = own
            accepted, judged = int(row["accepted"]), int(row["suggestions"])
            self.rates.setdefault(key, []).append(accepted / judged if judged else None)

    def pick(
        self,
        workflow_id: str,
        names: Sequence[str],
        defaults: Mapping[str, str | None],
        given: Mapping[str, str] | None,
    ) -> list[scope.Scope]:
        """Every scope seen that matches the `--var` values given, in key order; when none
        was seen, the one named (defaults filling the rest, null where there is none)."""
        wanted = scope.selection(names, given or {})
        keys = sorted(k for k, s in self.found.items() if scope.matches(
            {n: v for n, v in s.items() if v is not None}, wanted))  # fmt: skip
        if keys:
            return [self.found[k] for k in keys]
        return [{name: wanted.get(name, defaults.get(name)) for name in names}]

    def numbers(self, within: Within) -> tuple[int, list[float | None]]:
        rates = self.rates.get(scope.key_of(within), [])
        return len(rates), rates[-TREND_SESSIONS:]


def current_suggestion(
    store: Store, workflow: Workflow, step: Step, within: Within = None
) -> tuple[str | None, str | None]:
    """The template a step proposes now in scope `within`: its `run`, else what was learned."""
    from coachctl.engine import corrections

    return corrections.current_suggestion(store, workflow, step, within)


# -- building one batched question ---------------------------------------------------------


class _Plan:
    """The workflows a command shows, and the windows their steps need.

    A workflow with a trust_scope comes once per scope asked for (`within`): its windows are
    keyed by that scope, and its session count and trend are the scope's own.
    """

    def __init__(self) -> None:
        self.keys: list[WindowKey] = []
        self.workflows: list[str] = []
        self.parts: list[tuple[str, Any]] = []  # ("file", (wf, name, rules, steps, …)) / …

    def _step(
        self,
        workflow_id: str,
        step_id: str,
        suggestion: str | None,
        rules: metrics.Rules,
        max_level: str | None,
        within: Within,
        own: Mapping[str, Any] | None,
    ) -> tuple[Any, ...]:
        key = (
            (workflow_id, step_id, suggestion, scope.key_of(within), rules.window)
            if suggestion
            else None
        )
        if key is not None:
            self.keys.append(key)
        return (step_id, suggestion, key, max_level, rules, bool(own))

    def add_file(
        self,
        store: Store,
        workflow: Workflow,
        overrides: Mapping[str, Any],
        within: Within = None,
        numbers: tuple[int, list[float | None]] | None = None,
    ) -> None:
        from coachctl.engine import corrections

        coaching = workflow.coaching.to_dict()
        rules = rules_of(coaching, **overrides)
        proposed = corrections.suggestions(store, workflow, within)
        steps = [
            self._step(
                workflow.id,
                step.id,
                proposed[step.id][0],
                rules_of(coaching, step.coaching, **overrides),
                step.max_level,
                within,
                step.coaching,
            )
            for step in workflow.steps
        ]
        self.workflows.append(workflow.id)
        self.parts.append(("file", (workflow.id, workflow.name, rules, steps, within, numbers)))

    def add_orphan(
        self,
        store: Store,
        workflow_id: str,
        overrides: Mapping[str, Any],
        within: Within = None,
        numbers: tuple[int, list[float | None]] | None = None,
        snap: Mapping[str, Any] | None = None,
    ) -> None:
        """A workflow whose file is gone: the steps of its latest session's snapshot."""
        if snap is None:
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
            own = step.get("coaching") if isinstance(step.get("coaching"), Mapping) else None
            step_rules = _safe_rules(snap.get("coaching"), own, **overrides)
            steps.append(
                self._step(workflow_id, step_id, suggestion, step_rules, max_level, within, own)
            )
        name = str(snap.get("workflow_name") or workflow_id)
        self.workflows.append(workflow_id)
        self.parts.append(("sessions", (workflow_id, name, rules, steps, within, numbers)))

    def add_scoped(
        self,
        store: Store,
        workflow: Workflow | None,
        workflow_id: str,
        overrides: Mapping[str, Any],
        given: Mapping[str, str] | None,
        one: bool,
    ) -> None:
        """One part per scope reported: [no scope] without a trust_scope; with `one`
        (readiness, run) the scope `--var` and the defaults name (else exit 2); otherwise
        (stats) every scope seen that matches the `--var` values given."""
        snap = None
        if workflow is not None:
            names: Sequence[str] = workflow.coaching.trust_scope
            defaults: Mapping[str, str | None] = workflow.variables
        else:
            snap = store.latest_session(workflow_id) or {}
            names, defaults = scope.names_of(snap.get("coaching")), {}
        if not names:
            wanted: list[Within] = [None]
            seen = None
        else:
            seen = _Scopes(store, workflow_id, names)
            if one:
                wanted = [scope.resolve(workflow_id, names, defaults, given or {})]
            else:
                wanted = list(seen.pick(workflow_id, names, defaults, given))
        for within in wanted:
            numbers = seen.numbers(within) if seen is not None else None
            if workflow is not None:
                self.add_file(store, workflow, overrides, within, numbers)
            else:
                self.add_orphan(store, workflow_id, overrides, within, numbers, snap)

    def ask(self, store: Store) -> tuple[list[dict[str, Any]], list[BadFile]]:
        answer: MetricsAnswer = store.metrics(
            {"windows": self.keys, "workflows": self.workflows, "trend": TREND_SESSIONS}
        )
        out = []
        for source, (wf, name, rules, steps, within, numbers) in self.parts:
            objs = []
            for step_id, suggestion, key, max_level, step_rules, own in steps:
                kinds = answer["windows"].get(key, []) if key is not None else []
                obj = metrics.step_metrics(step_id, suggestion, kinds, step_rules, max_level)
                obj["scope"] = dict(within) if within else None
                if own:
                    obj["rules"] = rules_dict(step_rules)
                objs.append(obj)
            if numbers is None:
                count, trend = answer["session_counts"].get(wf, 0), answer["trends"].get(wf, [])
            else:
                count, trend = numbers
            obj = metrics.workflow_metrics(wf, objs, count)
            obj["name"] = name
            obj["source"] = source
            obj["scope"] = dict(within) if within else None
            obj["rules"] = rules_dict(rules)
            obj["trend"] = [metrics.round_metric(x) for x in trend]
            out.append(obj)
        return out, answer["bad"]


def workflow_metrics(
    store: Store, workflow: Workflow, *, within: Within = None, **overrides: Any
) -> dict[str, Any]:
    """Metrics of every step of a workflow on its current suggestions (CONTRACT §5), in one
    trust scope (`within`; None: no scope, as for a workflow without trust_scope)."""
    plan = _Plan()
    numbers = None
    if within:
        numbers = _Scopes(store, workflow.id, list(within)).numbers(within)
    plan.add_file(store, workflow, overrides, within, numbers)
    return plan.ask(store)[0][0]


def workflow_overall(store: Store, workflow: Workflow) -> dict[str, Any]:
    """One object for a workflow across its scopes (what `workflows` lists): its lowest level
    in any scope seen, ready only when ready in each, counts summed. Never the pooled history,
    which would let staging's trust speak for prod."""
    plan = _Plan()
    plan.add_scoped(store, workflow, workflow.id, {}, None, False)
    objects = plan.ask(store)[0]
    if len(objects) == 1:
        return objects[0]
    steps = [s for w in objects for s in w["steps"]]
    out = metrics.workflow_metrics(workflow.id, steps, sum(w["sessions"] for w in objects))
    out["scopes"] = [w["scope"] for w in objects]
    return out


def other_scopes_auto(store: Store, workflow: Workflow, within: Within) -> dict[str, list[str]]:
    """For each step: the other scopes seen in which it is AUTO (what `--dry-run` mentions:
    "AUTO for env=staging; COACHING here")."""
    if not workflow.coaching.trust_scope or not within:
        return {}
    here = scope.key_of(within)
    plan = _Plan()
    plan.add_scoped(store, workflow, workflow.id, {}, None, False)
    out: dict[str, list[str]] = {}
    for w in plan.ask(store)[0]:
        if not w["scope"] or scope.key_of(w["scope"]) == here:
            continue
        for step in w["steps"]:
            if step["level"] == "AUTO":
                out.setdefault(step["step_id"], []).append(scope.label(w["scope"]))
    return out


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
    given: Mapping[str, str] | None = None,
    one_scope: bool = False,
) -> Report:
    """Metrics of the named workflows (default: every workflow file, plus workflows known
    only from sessions when `include_orphans`). Unknown names are exit 2; an invalid workflow
    file is exit 2 when named or `strict_files`, else a warning.

    Trust scopes: `given` holds `--var` values. With `one_scope` (readiness) a workflow with a
    trust_scope is reported for exactly the scope they (and its defaults) name, else exit 2;
    without it (stats) once per scope seen that matches them.
    """
    from coachctl.engine.workflow_files import find_workflows, resolve_workflow_path
    from coachctl.engine.workflow_load import load_workflow
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
                    plan.add_scoped(store, None, ref, ov, given, one_scope)
                continue
            if wf.id not in seen:
                seen.add(wf.id)
                plan.add_scoped(store, wf, wf.id, ov, given, one_scope)
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
                plan.add_scoped(store, wf, wf.id, ov, given, one_scope)
        if include_orphans:
            for wf_id in sorted(set(store.workflow_ids()) - seen):
                plan.add_scoped(store, None, wf_id, ov, given, one_scope)
    objects, bad = plan.ask(store)
    return Report(objects, metrics.global_metrics(objects), bad, warnings)


# -- levels ----------------------------------------------------------------------------------


def session_scope(session: Session) -> scope.Scope | None:
    """The scope a session counts toward: fixed at its start (its recorded trust_scope)."""
    data = {**session.extra, "coaching": session.coaching, "variables": session.variables}
    return scope.scope_of(data) or None


def _session_key(
    session: Session, step: Mapping[str, Any], names_now: Sequence[str] | None = None
) -> WindowKey | None:
    suggestion = step.get("suggestion") or None
    if not suggestion:
        return None
    rules = _safe_rules(session.coaching, step.get("coaching"))
    if names_now:
        data = {**session.extra, "coaching": session.coaching, "variables": session.variables}
        key = scope.counts_toward(data, names_now)
    else:
        key = scope.key_of(session_scope(session))
    return (session.workflow_id, str(step["id"]), str(suggestion), key, rules.window)


def session_step_metrics(
    store: Store,
    session: Session,
    step: Mapping[str, Any],
    names_now: Sequence[str] | None = None,
) -> dict[str, Any]:
    """CONTRACT §5 step metrics for the command a session's step carries (its snapshot),
    in the session's own trust scope; with `names_now` (see `names_now`) in the scope its
    decisions count toward under the workflow's trust_scope now."""
    key = _session_key(session, step, names_now)
    kinds: list[str] = []
    if key is not None:
        answer = store.metrics({"windows": [key], "workflows": [], "trend": 0})
        kinds = answer["windows"].get(key, [])
    rules = _safe_rules(session.coaching, step.get("coaching"))
    suggestion = step.get("suggestion") or None
    out = metrics.step_metrics(str(step["id"]), suggestion, kinds, rules, step.get("max_level"))
    if names_now and key is not None:
        out["scope"] = scope.parse_key(key[3])
    else:
        out["scope"] = session_scope(session)
    return out


def step_level(
    store: Store, session: Session, step: Mapping[str, Any], names_now: Sequence[str] | None = None
) -> str:
    """The level of a session's step on the suggestion it carries."""
    return str(session_step_metrics(store, session, step, names_now)["level"])


def names_now(store: Store, session: Session) -> tuple[str, ...]:
    """The trust_scope a session's workflow file has now, when the session recorded none (it
    started before the workflow had one); () when it recorded one or the file is unreadable.
    Only for running steps unasked: it reads the workflow file, which `decide` never does."""
    if scope.names_of(session.coaching):
        return ()
    from coachctl.engine.workflow_files import resolve_workflow_path
    from coachctl.engine.workflow_load import load_workflow
    from coachctl.errors import CoachctlError

    try:
        path = session.workflow_path or resolve_workflow_path(session.workflow_id, store.home)
        workflow = load_workflow(path)
    except (CoachctlError, OSError):
        return ()
    if workflow.id != session.workflow_id:
        return ()
    return tuple(workflow.coaching.trust_scope)


def may_run_alone(
    store: Store, session: Session, step: Mapping[str, Any], names: Sequence[str]
) -> bool:
    """A mixed session's step runs unasked only at AUTO in its own snapshot and, for a session
    from before its workflow had a trust_scope (`names`: that trust_scope now), also at AUTO
    in the scope its values count toward: staging's trust never runs a prod step unasked."""
    if step_level(store, session, step) != "AUTO":
        return False
    return not names or step_level(store, session, step, names) == "AUTO"


def level_changes(txn: SessionTxn, data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Inside a session's transaction: the levels of its workflow's steps now (seeing the
    staged decisions), against the last recorded ones; `level_changed` events for changes."""
    from coachctl.engine.scope import scope_key
    from coachctl.engine.session import utcnow

    wf = str(data["workflow_id"])
    own = scope.scope_of(data) or None
    key_scope = scope_key(data)
    steps = []
    for step in data.get("steps") or []:
        step_id = step.get("id") if isinstance(step, Mapping) else None
        if not isinstance(step_id, str) or not step_id:
            continue
        rules = _safe_rules(data.get("coaching"), step.get("coaching"))
        suggestion = step.get("suggestion")
        key = (wf, step_id, str(suggestion), key_scope, rules.window) if suggestion else None
        steps.append((step_id, key, step.get("max_level"), rules))
    keys = [k for _, k, _, _ in steps if k is not None]
    windows = txn.windows(keys) if keys else {}
    now: dict[str, str] = {}
    for step_id, key, max_level, rules in steps:
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
    known = txn.levels(wf, key_scope)
    changes = []
    events: list[dict[str, Any]] = []
    ts = utcnow()
    for step_id, level in now.items():
        before = known.get(step_id)
        if before == level:
            continue
        changes.append({"workflow_id": wf, "step_id": step_id, "scope": key_scope, "level": level})
        if before is not None:
            event: dict[str, Any] = {
                "ts": ts,
                "event": "level_changed",
                "session_id": str(data["id"]),
                "workflow_id": wf,
                "step_id": step_id or None,
                "from": before,
                "to": level,
            }
            if own is not None:
                event["scope"] = own
            events.append(event)
    txn.set_levels(changes)  # type: ignore[arg-type]
    # The workflow's own change reads best after its steps'.
    events.sort(key=lambda e: e["step_id"] is None)
    return events
