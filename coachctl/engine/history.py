"""Trust history: what each step's decisions across all sessions say about it.

The session files are the only source of truth. Two sources answer the same questions from
them: the derived index (`engine/index.py`, fast, used by every normal path) and a full
recomputation that reads every file (slow, obviously correct: `doctor` and the tests compare
the two, and it is the fallback when the index cannot be written, e.g. a read-only home).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from coachctl.engine import metrics, scope
from coachctl.engine.store import Store

if TYPE_CHECKING:
    import os

    from coachctl.engine.index import BadFile, Index
    from coachctl.engine.session import Session
    from coachctl.engine.workflow import Step, Workflow

# How long a refreshed index is trusted within one process (one command refreshes once).
FRESH_SECONDS = 2.0
TREND_SESSIONS = 20


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


Within = Mapping[str, "str | None"] | None


def current_suggestion(
    store: Store, workflow: Workflow, step: Step
) -> tuple[str | None, str | None]:
    """The template a step proposes now: its `run`, else what was learned for it."""
    from coachctl.engine import learning

    return learning.current_suggestion(store, workflow, step)


def iter_sessions(store: Store, workflow_id: str | None = None) -> Iterable[dict[str, Any]]:
    """Every readable session file (of one workflow); unreadable ones are skipped here."""
    from coachctl.engine.index import read_session_file
    from coachctl.errors import CoachctlError

    for sid in store.list_ids():
        try:
            data = read_session_file(store.session_path(sid))
        except CoachctlError:
            continue
        if workflow_id is None or data.get("workflow_id") == workflow_id:
            yield data


def step_kinds(
    decisions: Iterable[Mapping[str, Any]], step_id: str, suggestion: str | None
) -> list[str]:
    """Chronological kinds of a step's decisions on exactly this suggestion."""
    rows = [
        d for d in decisions if d.get("step_id") == step_id and d.get("suggestion") == suggestion
    ]
    rows.sort(key=lambda d: str(d.get("decided_at", "")))
    return [k for k in (metrics.classify(d) for d in rows) if k is not None]


# -- sources: the index, or a full recomputation ---------------------------------------


class Source(Protocol):
    """What metrics need from the history; the index and the full recomputation agree.

    `within` is a trust scope ({variable: value}): only sessions that had those values count.
    """

    def kinds(
        self, workflow_id: str, step_id: str, suggestion: str, window: int, within: Within = None
    ) -> list[str]: ...

    def session_count(self, workflow_id: str, within: Within = None) -> int: ...

    def trend(
        self, workflow_id: str, n: int = TREND_SESSIONS, within: Within = None
    ) -> list[float | None]: ...

    def values(self, workflow_id: str) -> list[dict[str, str]]: ...

    def workflow_ids(self) -> list[str]: ...

    def latest_snapshot(self, workflow_id: str) -> dict[str, Any] | None: ...

    def bad_files(self) -> list[BadFile]: ...


class FullSource:
    """The full recomputation: reads every session file once, in id order."""

    def __init__(self, store: Store) -> None:
        from coachctl.engine.index import BadFile, guess_workflow, read_session_bytes
        from coachctl.errors import CoachctlError

        self.decisions: dict[str, list[dict[str, Any]]] = {}
        self.sessions: dict[str, list[dict[str, Any]]] = {}
        self.bad: list[BadFile] = []
        for sid in store.list_ids():
            path = store.session_path(sid)
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:
                self.bad.append(BadFile(sid, str(path), f"cannot read {path}: {exc.strerror}"))
                continue
            try:
                data = read_session_bytes(raw, path)
            except CoachctlError as exc:
                self.bad.append(BadFile(sid, str(path), exc.message, guess_workflow(raw)))
                continue
            wf = str(data["workflow_id"])
            self.sessions.setdefault(wf, []).append(data)
            self.decisions.setdefault(wf, []).extend(
                d for d in data.get("decisions") or [] if isinstance(d, dict)
            )

    def _in(self, workflow_id: str, within: Within) -> list[dict[str, Any]]:
        found = self.sessions.get(workflow_id, [])
        if not within:
            return found
        return [d for d in found if scope.matches(scope.values_of(d), within)]

    def kinds(
        self, workflow_id: str, step_id: str, suggestion: str, window: int, within: Within = None
    ) -> list[str]:
        if within:
            decisions = [
                d
                for data in self._in(workflow_id, within)
                for d in data.get("decisions") or []
                if isinstance(d, dict)
            ]
        else:
            decisions = self.decisions.get(workflow_id, [])
        kinds = step_kinds(decisions, step_id, suggestion)
        return kinds[max(0, len(kinds) - window) :]

    def session_count(self, workflow_id: str, within: Within = None) -> int:
        return len(self._in(workflow_id, within))

    def values(self, workflow_id: str) -> list[dict[str, str]]:
        return [scope.values_of(d) for d in self.sessions.get(workflow_id, [])]

    def trend(
        self, workflow_id: str, n: int = TREND_SESSIONS, within: Within = None
    ) -> list[float | None]:
        out: list[float | None] = []
        for data in self._in(workflow_id, within)[-n:]:
            kinds = [metrics.classify(d) for d in data.get("decisions") or []]
            c = metrics.counts([k for k in kinds if k is not None])
            out.append(metrics.rate(c))
        return out

    def workflow_ids(self) -> list[str]:
        return list(self.sessions)

    def latest_snapshot(self, workflow_id: str) -> dict[str, Any] | None:
        found = self.sessions.get(workflow_id)
        return found[-1] if found else None

    def bad_files(self) -> list[BadFile]:
        return list(self.bad)


class IndexSource:
    """The derived index, refreshed from the session files before it answers."""

    def __init__(self, index: Index) -> None:
        self.index = index

    def kinds(
        self, workflow_id: str, step_id: str, suggestion: str, window: int, within: Within = None
    ) -> list[str]:
        return self.index.kinds(workflow_id, step_id, suggestion, window, within)

    def session_count(self, workflow_id: str, within: Within = None) -> int:
        return self.index.session_count(workflow_id, within)

    def trend(
        self, workflow_id: str, n: int = TREND_SESSIONS, within: Within = None
    ) -> list[float | None]:
        return self.index.trend(workflow_id, n, within)

    def values(self, workflow_id: str) -> list[dict[str, str]]:
        return self.index.values(workflow_id)

    def workflow_ids(self) -> list[str]:
        return self.index.workflow_ids()

    def latest_snapshot(self, workflow_id: str) -> dict[str, Any] | None:
        from coachctl.engine.index import read_session_file
        from coachctl.errors import CoachctlError

        for sid in self.index.latest_ids(workflow_id):
            try:
                return read_session_file(self.index.store.session_path(sid))
            except CoachctlError:
                continue
        return None

    def bad_files(self) -> list[BadFile]:
        return self.index.bad_files()


_INDEXES: weakref.WeakKeyDictionary[Store, Index] = weakref.WeakKeyDictionary()


def open_index(store: Store) -> Index | None:
    """This store's index (opened once per process), or None when it cannot be used."""
    from coachctl.engine.index import Index, IndexUnavailable
    from coachctl.errors import CoachctlError

    idx = _INDEXES.get(store)
    if idx is None:
        try:
            idx = Index.open(store)
        except (IndexUnavailable, CoachctlError, OSError):
            return None
        _INDEXES[store] = idx
    return idx


def forget_index(store: Store, *, discard: bool = False) -> None:
    """Stop using this store's index (and delete it when it proved corrupt)."""
    idx = _INDEXES.pop(store, None)
    if idx is not None:
        idx.close()
        if discard:
            idx.discard()


def source(store: Store, *, full: bool = False) -> Source:
    """A refreshed index when possible, else the full recomputation."""
    import sqlite3

    from coachctl.errors import CoachctlError

    if not full:
        idx = open_index(store)
        if idx is not None:
            try:
                if time.monotonic() - idx.refreshed_at > FRESH_SECONDS:
                    idx.refresh()
                return IndexSource(idx)
            except sqlite3.OperationalError:
                forget_index(store)  # busy or read-only after all: recompute this time
            except sqlite3.DatabaseError:
                forget_index(store, discard=True)  # corrupt: rebuilt on the next run
            except (CoachctlError, OSError):
                forget_index(store)
    return FullSource(store)


# -- metrics -------------------------------------------------------------------------------


def _with_source(store: Store, full: bool, fn: Any) -> Any:
    """Run `fn(source)`; if the index breaks half-way, answer from the files instead."""
    import sqlite3

    src = source(store, full=full)
    try:
        return fn(src)
    except sqlite3.DatabaseError as exc:
        if isinstance(src, FullSource):
            raise
        forget_index(store, discard=not isinstance(exc, sqlite3.OperationalError))
        return fn(FullSource(store))


def _step_object(
    src: Source,
    workflow_id: str,
    step_id: str,
    suggestion: str | None,
    rules: metrics.Rules,
    max_level: str | None,
    within: Within,
    own: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """One step's §5 object in one scope, with its own rules when it overrides any."""
    kinds = src.kinds(workflow_id, step_id, suggestion, rules.window, within) if suggestion else []
    out = metrics.step_metrics(step_id, suggestion, kinds, rules, max_level)
    out["scope"] = dict(within) if within else None
    if own:
        out["rules"] = rules_dict(rules)
    return out


def _finish(
    out: dict[str, Any], src: Source, workflow_id: str, rules: metrics.Rules, within: Within
) -> dict[str, Any]:
    out["scope"] = dict(within) if within else None
    out["rules"] = rules_dict(rules)
    out["trend"] = [metrics.round_metric(x) for x in src.trend(workflow_id, within=within)]
    return out


def _file_workflow(
    store: Store,
    src: Source,
    workflow: Workflow,
    overrides: Mapping[str, Any],
    within: Within = None,
) -> dict[str, Any]:
    coaching = workflow.coaching.to_dict()
    rules = rules_of(coaching, **overrides)
    steps = []
    for step in workflow.steps:
        suggestion, _ = current_suggestion(store, workflow, step)
        step_rules = rules_of(coaching, step.coaching, **overrides)
        steps.append(
            _step_object(
                src,
                workflow.id,
                step.id,
                suggestion,
                step_rules,
                step.max_level,
                within,
                step.coaching,
            )
        )
    out = metrics.workflow_metrics(workflow.id, steps, src.session_count(workflow.id, within))
    out["name"] = workflow.name
    out["source"] = "file"
    return _finish(out, src, workflow.id, rules, within)


def _orphan_workflow(
    src: Source, workflow_id: str, overrides: Mapping[str, Any], within: Within = None
) -> dict[str, Any]:
    """A workflow whose file is gone: the steps of its latest session's snapshot."""
    snap = src.latest_snapshot(workflow_id) or {}
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
            _step_object(src, workflow_id, step_id, suggestion, step_rules, max_level, within, own)
        )
    out = metrics.workflow_metrics(workflow_id, steps, src.session_count(workflow_id, within))
    out["name"] = str(snap.get("workflow_name") or workflow_id)
    out["source"] = "sessions"
    return _finish(out, src, workflow_id, rules, within)


def _scopes(
    src: Source,
    workflow_id: str,
    names: Sequence[str],
    defaults: Mapping[str, str | None],
    given: Mapping[str, str] | None,
    one: bool,
) -> list[Within]:
    """The scopes to report for a workflow: [None] without a trust_scope; with `one` (readiness,
    run) exactly the one `--var` and the defaults name (else exit 2); otherwise (stats) every
    scope seen that matches the `--var` values given, in key order."""
    if not names:
        return [None]
    if one:
        return [scope.resolve(workflow_id, names, defaults, given or {})]
    wanted = scope.selection(names, given or {})
    found: dict[str, scope.Scope] = {}
    for values in src.values(workflow_id):
        if scope.matches(values, wanted):
            each: scope.Scope = {name: values.get(name) for name in names}
            found[scope.key_of(each)] = each
    if not found:  # nothing seen yet: the scope named, else the defaults (null where none)
        each = {name: wanted.get(name, defaults.get(name)) for name in names}
        found[scope.key_of(each)] = each
    return [found[k] for k in sorted(found)]


def file_workflow_objects(
    store: Store,
    src: Source,
    workflow: Workflow,
    overrides: Mapping[str, Any],
    given: Mapping[str, str] | None = None,
    one: bool = False,
) -> list[dict[str, Any]]:
    """A workflow's objects: one per scope reported (see `_scopes`)."""
    names = workflow.coaching.trust_scope
    return [
        _file_workflow(store, src, workflow, overrides, within)
        for within in _scopes(src, workflow.id, names, workflow.variables, given, one)
    ]


def _orphan_objects(
    src: Source,
    workflow_id: str,
    overrides: Mapping[str, Any],
    given: Mapping[str, str] | None,
    one: bool,
) -> list[dict[str, Any]]:
    snap = src.latest_snapshot(workflow_id) or {}
    names = scope.names_of(snap.get("coaching"))
    return [
        _orphan_workflow(src, workflow_id, overrides, within)
        for within in _scopes(src, workflow_id, names, {}, given, one)
    ]


def workflow_metrics(
    store: Store,
    workflow: Workflow,
    *,
    full: bool = False,
    within: Within = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Metrics of every step of a workflow on its current suggestions (CONTRACT §5), in one
    trust scope (`within`; None: the whole history, for a workflow without trust_scope)."""
    return dict(
        _with_source(
            store, full, lambda src: _file_workflow(store, src, workflow, overrides, within)
        )
    )


def workflow_overall(store: Store, workflow: Workflow, *, full: bool = False) -> dict[str, Any]:
    """One object for a workflow across its scopes (what `workflows` lists): its lowest level
    in any scope seen, ready only when ready in each, counts summed. Never the pooled history,
    which would let staging's trust speak for prod."""

    def compute(src: Source) -> dict[str, Any]:
        objects = file_workflow_objects(store, src, workflow, {})
        if len(objects) == 1:
            return objects[0]
        steps = [s for w in objects for s in w["steps"]]
        out = metrics.workflow_metrics(workflow.id, steps, sum(w["sessions"] for w in objects))
        out["scopes"] = [w["scope"] for w in objects]
        return out

    return dict(_with_source(store, full, compute))


def other_scopes_auto(
    store: Store, workflow: Workflow, within: Within, *, full: bool = False
) -> dict[str, list[str]]:
    """For each step: the other scopes seen in which it is AUTO (what `--dry-run` mentions:
    "AUTO for env=staging; COACHING here")."""
    names = workflow.coaching.trust_scope
    if not names or not within:
        return {}
    here = scope.key_of(within)

    def compute(src: Source) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for other in _scopes(src, workflow.id, names, workflow.variables, None, False):
            if other is None or scope.key_of(other) == here:
                continue
            for step in _file_workflow(store, src, workflow, {}, other)["steps"]:
                if step["level"] == "AUTO":
                    out.setdefault(step["step_id"], []).append(scope.label(other))
        return out

    return dict(_with_source(store, full, compute))


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
    full: bool = False,
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
    ov = dict(overrides or {})
    return _with_source(  # type: ignore[no-any-return]
        store,
        full,
        lambda src: _report(store, src, refs, ov, include_orphans, strict_files, given, one_scope),
    )


def _report(
    store: Store,
    src: Source,
    refs: Sequence[str],
    overrides: Mapping[str, Any],
    include_orphans: bool,
    strict_files: bool,
    given: Mapping[str, str] | None = None,
    one_scope: bool = False,
) -> Report:
    from coachctl.engine.workflow import find_workflows, load_workflow, resolve_workflow_path
    from coachctl.errors import CoachctlError, UsageError, WorkflowError

    warnings: list[str] = []
    objects: list[dict[str, Any]] = []
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
                    known = src.workflow_ids()
                if ref not in known:
                    raise UsageError(
                        f"unknown workflow: {ref} (no workflow file, and no session of it)"
                    ) from None
                if ref not in seen:
                    seen.add(ref)
                    objects.extend(_orphan_objects(src, ref, overrides, given, one_scope))
                continue
            if wf.id not in seen:
                seen.add(wf.id)
                objects.extend(file_workflow_objects(store, src, wf, overrides, given, one_scope))
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
                objects.extend(file_workflow_objects(store, src, wf, overrides, given, one_scope))
        if include_orphans:
            for wf_id in sorted(set(src.workflow_ids()) - seen):
                objects.extend(_orphan_objects(src, wf_id, overrides, given, one_scope))
    return Report(objects, metrics.global_metrics(objects), src.bad_files(), warnings)


# -- levels and the write hook -------------------------------------------------------------


def session_step_kinds(store: Store, session: Session, step: Mapping[str, Any]) -> list[str]:
    """The windowed kinds on the exact suggestion a session's step carries.

    One indexed query; never scans the sessions folder (`decide` runs this on every call)
    unless the index is missing and has to be built once.
    """
    import sqlite3

    rules = _safe_rules(session.coaching, step.get("coaching"))
    within = session_scope(session)
    suggestion, step_id = str(step.get("suggestion")), str(step["id"])
    idx = open_index(store)
    if idx is not None:
        try:
            if not idx.complete:
                idx.refresh()
            return idx.kinds(session.workflow_id, step_id, suggestion, rules.window, within)
        except sqlite3.DatabaseError as exc:
            forget_index(store, discard=not isinstance(exc, sqlite3.OperationalError))
        except Exception:  # the index is only a speed-up: never fail a decision on it
            forget_index(store)
    kinds = step_kinds(_scoped_decisions(store, session, within), step_id, suggestion)
    return kinds[max(0, len(kinds) - rules.window) :]


def session_scope(session: Session) -> scope.Scope | None:
    """The scope a session counts toward: fixed at its start (its recorded trust_scope)."""
    return (
        scope.scope_of(
            {"coaching": session.coaching, **session.extra, "variables": session.variables}
        )
        or None
    )


def _scoped_decisions(store: Store, session: Session, within: Within) -> list[dict[str, Any]]:
    """Every decision of the session's workflow made in sessions of this scope (slow path)."""
    return [
        d
        for data in iter_sessions(store, session.workflow_id)
        if not within or scope.matches(scope.values_of(data), within)
        for d in data.get("decisions") or []
        if isinstance(d, dict)
    ]


def session_step_metrics(store: Store, session: Session, step: Mapping[str, Any]) -> dict[str, Any]:
    """CONTRACT §5 step metrics for the command a session's step carries (its snapshot),
    in the session's own scope."""
    suggestion = step.get("suggestion") or None
    kinds = session_step_kinds(store, session, step) if suggestion else []
    rules = _safe_rules(session.coaching, step.get("coaching"))
    out = metrics.step_metrics(str(step["id"]), suggestion, kinds, rules, step.get("max_level"))
    out["scope"] = session_scope(session)
    return out


def step_level(store: Store, session: Session, step: Mapping[str, Any]) -> str:
    """The level of a session's step on the suggestion it carries."""
    return str(session_step_metrics(store, session, step)["level"])


def full_step_level(store: Store, session: Session, step: Mapping[str, Any]) -> str:
    """`step_level` by reading every session file of the workflow."""
    suggestion = step.get("suggestion")
    if not suggestion:
        return metrics.level_of(False, False, step.get("max_level"))
    decisions = _scoped_decisions(store, session, session_scope(session))
    kinds = step_kinds(decisions, str(step["id"]), str(suggestion))
    rules = _safe_rules(session.coaching, step.get("coaching"))
    c = metrics.counts(kinds[max(0, len(kinds) - rules.window) :])
    return metrics.level_of(True, metrics.is_ready(c, rules), step.get("max_level"))


def after_write(
    store: Store,
    session: Mapping[str, Any],
    *,
    dir_before: str | None = None,
    written: os.stat_result | None = None,
) -> list[dict[str, Any]]:
    """Bring the index up to date after a session file was written; level_changed events.

    `dir_before` is the sessions folder's stamp taken just before the write and `written`
    the stat of the written file (see `Index.update`). Never fails the write it follows: if
    the index cannot be updated, the next refresh notices the changed file by itself.
    """
    idx = open_index(store)
    if idx is None:
        return []
    try:
        return idx.update(
            session, _safe_rules(session.get("coaching")), dir_before=dir_before, written=written
        )
    except Exception:
        forget_index(store)
        return []


# -- doctor ---------------------------------------------------------------------------------

TMP_GRACE_SECONDS = 60.0  # a younger temp file may belong to a writer that is still alive


class Finding:
    """One line of `doctor`'s report."""

    def __init__(
        self, kind: str, message: str, problem: bool = True, session_id: str | None = None
    ) -> None:
        self.kind = kind  # unreadable, leftover, index, interrupted, repaired
        self.message = message
        self.problem = problem
        self.session_id = session_id

    def __repr__(self) -> str:
        return f"Finding({self.kind!r}, {self.message!r}, problem={self.problem!r})"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "problem": self.problem,
            "session_id": self.session_id,
            "message": self.message,
        }


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """`{"workflows": [{"workflow_id": "w", "steps": [...]}]}` → `workflows[w].steps[s].x`."""
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            key: Any = i
            if isinstance(v, dict):
                key = v.get("step_id", v.get("workflow_id", i))
                if v.get("scope"):  # one object per trust scope: keep them apart
                    key = f"{key}{{{scope.label(v['scope'])}}}"
            out.update(_flatten(v, f"{prefix}[{key}]"))
    else:
        out[prefix] = obj
    return out


def doctor(store: Store, *, repair: bool = False) -> tuple[list[Finding], int]:
    """Check every session file, the correction packs and the index against a full
    recomputation.

    Returns the findings (problems and notes) and how many session files were checked.
    With `repair`, leftover temp files are removed, packs and the index are rebuilt first;
    what cannot be repaired (an unreadable session file) stays a problem.
    """
    import os

    from coachctl.engine.index import IndexUnavailable, extract
    from coachctl.engine.session import Session
    from coachctl.engine.store import TMP_PREFIX

    findings: list[Finding] = []
    if not store.sessions_dir.is_dir():
        return findings, 0
    now = time.time()
    for name in sorted(os.listdir(store.sessions_dir)):
        if not name.startswith(TMP_PREFIX):
            continue
        path = store.sessions_dir / name
        try:
            age = now - path.stat().st_mtime
        except OSError:
            continue
        if age < TMP_GRACE_SECONDS:
            continue
        if repair:
            try:
                path.unlink()
                findings.append(Finding("repaired", f"removed leftover temp file {path}", False))
                continue
            except OSError as exc:
                findings.append(Finding("leftover", f"cannot remove {path}: {exc.strerror}"))
                continue
        findings.append(
            Finding(
                "leftover", f"leftover temp file {path} (a writer was killed; --repair removes it)"
            )
        )

    full = FullSource(store)
    checked = sum(len(v) for v in full.sessions.values()) + len(full.bad)
    for bad in full.bad:
        findings.append(
            Finding(
                "unreadable",
                f"{bad.reason} (cannot be repaired: fix the file or move it out of sessions/)",
                session_id=bad.session_id,
            )
        )
    for sessions in full.sessions.values():
        for data in sessions:
            running = data.get("running")
            if running and Session.from_dict(data).running_state() == "interrupted":
                findings.append(
                    Finding(
                        "interrupted",
                        f"session {data['id']}: step {running.get('step_id')!r} was interrupted "
                        "while running (it may have run); a person decides it",
                        problem=False,
                        session_id=str(data["id"]),
                    )
                )

    findings.extend(_check_packs(store, full, repair))

    forget_index(store)
    try:
        from coachctl.engine.index import Index

        idx = Index.open(store)
    except IndexUnavailable as exc:
        findings.append(Finding("index", f"no index ({exc}): metrics are recomputed", False))
        return findings, checked
    try:
        if repair:
            idx.rebuild()
            findings.append(
                Finding("repaired", f"rebuilt the index from {checked} session files", False)
            )
        else:
            idx.refresh()
        findings.extend(_compare_index(store, idx, full, extract))
    finally:
        idx.close()
    return findings, checked


def _check_packs(store: Store, full: FullSource, repair: bool) -> list[Finding]:
    """Correction packs are derived too: compare each with a replay of its sessions."""
    from coachctl.engine import learning

    out: list[Finding] = []
    for workflow_id in sorted(set(learning.pack_ids(store)) | set(full.workflow_ids())):
        diffs = learning.check(store, workflow_id)
        if diffs and repair:
            learning.rebuild(store, workflow_id)
            out.append(Finding("repaired", f"rebuilt correction pack {workflow_id}", False))
            diffs = learning.check(store, workflow_id)
        out.extend(Finding("pack", d) for d in diffs)
    return out


def _compare_index(store: Store, idx: Index, full: FullSource, extract: Any) -> list[Finding]:
    out: list[Finding] = []
    expected_s: dict[str, Any] = {}
    expected_d: dict[str, list[Any]] = {}
    for sessions in full.sessions.values():
        for data in sessions:
            srow, drows = extract(data)
            expected_s[srow[0]] = srow
            if drows:
                expected_d[srow[0]] = drows
    have_s = idx.session_rows()
    have_d = idx.decision_rows()
    for sid in sorted(set(expected_s) | set(have_s)):
        want, got = expected_s.get(sid), have_s.get(sid)
        if got is None:
            out.append(Finding("index", f"index lacks session {sid}", session_id=sid))
        elif want is None:
            out.append(
                Finding(
                    "index",
                    f"index has session {sid}, which no readable file holds",
                    session_id=sid,
                )
            )
        elif want != got:
            out.append(
                Finding(
                    "index",
                    f"index differs for session {sid}: {got} != {want} (file)",
                    session_id=sid,
                )
            )
    for sid in sorted(set(expected_d) | set(have_d)):
        want_d, got_d = expected_d.get(sid, []), have_d.get(sid, [])
        if want_d != got_d:
            first = next(
                (f"{g} != {w}" for g, w in zip(got_d, want_d, strict=False) if g != w),
                f"{len(got_d)} rows != {len(want_d)}",
            )
            out.append(
                Finding(
                    "index",
                    f"index decisions differ for session {sid}: {first} (file)",
                    session_id=sid,
                )
            )
    bad_want = {b.session_id for b in full.bad}
    bad_got = {b.session_id for b in idx.bad_files()}
    for sid in sorted(bad_want ^ bad_got):
        side = "not marked" if sid in bad_want else "marked"
        out.append(Finding("index", f"index has session {sid} {side} unreadable", session_id=sid))
    fast = _flatten(_report(store, IndexSource(idx), (), {}, True, False).to_json())
    slow = _flatten(_report(store, full, (), {}, True, False).to_json())
    for key in sorted(set(fast) | set(slow)):
        if fast.get(key, "(missing)") != slow.get(key, "(missing)"):
            out.append(
                Finding(
                    "index",
                    f"stats differ at {key}: index {fast.get(key)!r}, files {slow.get(key)!r}",
                )
            )
    return out
