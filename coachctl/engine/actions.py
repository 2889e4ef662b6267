"""What the commands do, as functions: start, decide, pause, resume, cancel, state.

This is where store, session, executor and the trust history meet. Each function takes a
`Store` (coachctl/store/base.py) and plain arguments, returns data or raises a
`CoachctlError`; nothing here prints. Every change to a session goes through one
`store.transaction`; none is held while a step's command runs (CONTRACT §3).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from coachctl.engine import session as sm
from coachctl.engine.session import Session
from coachctl.errors import (
    CoachctlError,
    ConflictError,
    OutcomeNotSaved,
    StorageError,
    UsageError,
)

if TYPE_CHECKING:
    from coachctl.engine.executor import ExecResult
    from coachctl.engine.workflow import Workflow
    from coachctl.store.base import SessionTxn, Store

Stream = Callable[[bytes], None]
Progress = Callable[[dict[str, Any]], None]


class Outcome:
    """What a decision (or an AUTO step) did: the session after it, and the run if any."""

    def __init__(
        self,
        session: Session,
        record: dict[str, Any] | None = None,
        result: ExecResult | None = None,
    ) -> None:
        self.session = session
        self.record = record
        self.result = result
        self.auto_runs: list[dict[str, Any]] = []

    @property
    def failed(self) -> bool:
        return self.record is not None and self.record.get("outcome") == "failed"

    @property
    def interrupted(self) -> bool:
        return self.result is not None and self.result.interrupted

    @property
    def exit_status(self) -> int:
        """What coachctl exits with after an interrupted run: 128 + the signal (130: Ctrl-C)."""
        sig = self.result.signal if self.result is not None else None
        return 128 + (sig or 2)


# -- loading ------------------------------------------------------------------------------


def load(store: Store, ref: str) -> Session:
    sid = store.resolve(ref)
    return opened(store, store.load(sid))


def opened(store: Store, data: Mapping[str, Any]) -> Session:
    """A loaded session whose running mark (if any) is judged by the store's lease first:
    a lease another machine holds is running, a lease whose holder is gone is interrupted,
    and only where the store cannot tell is the mark's host and pid checked (CONTRACT §3)."""
    session = Session.from_dict(data)
    token = (session.running or {}).get("token")
    if isinstance(token, str):
        session.lease = store.lease_alive(session.id, token)
    return session


@contextlib.contextmanager
def transaction(store: Store, session_id: str) -> Iterator[SessionTxn]:
    """`store.transaction`, plus the warnings of derived writes that failed after its
    commit point: the decision stands, so they are warnings, never an error exit that
    would make a script decide again."""
    with store.transaction(session_id) as txn:
        yield txn
    for message in txn.warnings:
        warn(message)


def commit(
    store: Store,
    txn: SessionTxn,
    session: Session,
    events: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Stage the session with everything derived from it: its decision rows, level
    changes (level_changed events), its pack's new lessons, and `events`. The transaction
    writes it all when its block ends."""
    from coachctl.engine import corrections, history
    from coachctl.engine.records import derive

    data = session.to_dict()
    txn.save(data, derive(data))
    extra = history.level_changes(txn, data)
    extra += corrections.fold_into(store, txn, data)
    txn.append_events([*events, *extra])


def record_seq(txn: SessionTxn, record: dict[str, Any]) -> dict[str, Any]:
    """Give a decision just recorded its order of record (see `SessionTxn.next_seq`)."""
    record["seq"] = txn.next_seq()
    return record


def warn(message: str) -> None:
    """The engine's one warning channel: the `coachctl` logger, else one line on stderr.

    A program embedding the engine can take these by configuring that logger; the CLI does
    not, so the line goes to stderr as every coachctl error does.
    """
    import logging

    log = logging.getLogger("coachctl")
    if log.handlers:
        log.warning("%s", message)
        return
    import sys

    from coachctl.errors import one_line

    sys.stderr.write(one_line(message) + "\n")
    sys.stderr.flush()


def event(name: str, session: Session, **fields: Any) -> dict[str, Any]:
    return {
        "ts": sm.utcnow(),
        "event": name,
        "session_id": session.id,
        "workflow_id": session.workflow_id,
        **fields,
    }


# -- starting -----------------------------------------------------------------------------


def snapshot_steps(
    store: Store, workflow: Workflow, variables: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The steps as this session will run them: templates, filled-in commands, suggestions."""
    from coachctl.engine import corrections
    from coachctl.engine.templates import render_run, render_text

    proposed = corrections.suggestions(store, workflow)
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
    steps = snapshot_steps(store, workflow, variables)
    index = 0
    if start_at is not None:
        ids = [s["id"] for s in steps]
        if start_at not in ids:
            raise UsageError(f"unknown step for --start-at: {start_at} (steps: {', '.join(ids)})")
        index = ids.index(start_at)
    from coachctl.engine.scope import scope_of

    within = scope_of({"variables": variables}, workflow.coaching.trust_scope) or None
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


# -- deciding -----------------------------------------------------------------------------


def decide(
    store: Store,
    ref: str,
    decision: str,
    *,
    correction: str | None = None,
    command: str | None = None,
    feedback: str | None = None,
    step_guard: str | None = None,
    no_exec: bool = False,
    stream: Stream | None = None,
    decided_by: str | None = None,
    terminal: bool = False,
) -> Outcome:
    """One decision on the current step (CONTRACT §3), start to finish.

    `terminal`: the command gets the person's terminal (the panel); else stdin is /dev/null.
    """
    if decision == "correct" and not (correction or "").strip():
        raise UsageError("'correct' needs --correction CMD (the command to run instead)")
    if decision != "correct" and correction is not None:
        raise UsageError("--correction goes with 'correct' only")
    if command is not None and decision != "manual":
        raise UsageError("--command goes with 'manual' only (what you ran yourself)")
    if decision not in sm.DECISIONS:
        raise UsageError(
            f"invalid decision: {decision} (expected one of {', '.join(sm.DECISIONS)})"
        )
    sid = store.resolve(ref)
    by = decided_by or sm.current_user()
    # `held` keeps the runner's lease from before the running mark is committed until the
    # outcome is recorded (or this process dies: the kernel drops it).
    with contextlib.ExitStack() as held:
        to_run: str | None = None
        with transaction(store, sid) as txn:
            session = opened(store, txn.session)
            step = sm.check_decidable(
                session, decision, step_guard=step_guard, by_auto=decided_by == "auto"
            )
            if decision in sm.EXECUTING:
                to_run = correction if decision == "correct" else step.get("command")
            if to_run is None or no_exec:
                record = sm.record_decision(
                    session,
                    step,
                    decision,
                    command=to_run if decision in sm.EXECUTING else command,
                    feedback=feedback,
                    decided_by=by,
                )
                record_seq(txn, record)
                commit(store, txn, session, _decision_events(session, record))
                return Outcome(session, record)
            token = sm.mark_running(session, step, decision, to_run)
            held.enter_context(store.lease(sid, token))  # before the mark is visible to anyone
            data = session.to_dict()
            txn.save(data, _derive(data))
        try:
            result = _execute(session, step, to_run, stream, terminal)
        except KeyboardInterrupt:
            # Only possible before the executor took over SIGINT: the command never started.
            _abandon(store, sid, token)
            raise
        return _finish(store, sid, token, step, decision, to_run, feedback, by, result)


def _execute(
    session: Session,
    step: Mapping[str, Any],
    command: str,
    stream: Stream | None,
    terminal: bool = False,
) -> ExecResult:
    from coachctl.engine.executor import run_command

    timeout = step.get("timeout")
    return run_command(
        command,
        timeout=float(timeout) if timeout else None,
        stream=stream,
        env=_step_env(session, step),
        terminal=terminal,
    )


def _step_env(session: Session, step: Mapping[str, Any]) -> dict[str, str]:
    """Commands can tell which session and step they run for."""
    env = dict(os.environ)
    env["COACHCTL_SESSION"] = session.id
    env["COACHCTL_STEP"] = str(step["id"])
    env["COACHCTL_WORKFLOW"] = session.workflow_id
    return env


def _finish(
    store: Store,
    sid: str,
    token: str,
    step: dict[str, Any],
    decision: str,
    command: str,
    feedback: str | None,
    by: str,
    result: ExecResult,
) -> Outcome:
    """Second lock: record the outcome of a run we marked, unless someone took the step.

    The command has run: if its outcome cannot be saved now (disk full, the home gone, the
    lock not had), say so plainly, so that a script does not retry and run it twice. Our
    running mark stays behind, and once this process is gone it reads as interrupted.
    """
    from coachctl.engine.executor import signals_deferred

    try:
        with signals_deferred():
            return _record_run(store, sid, token, step, decision, command, feedback, by, result)
    except (CoachctlError, OSError) as exc:
        ran = (
            f"ran ({exit_words(vars_of(result))})"
            if result.error is None
            else f"could not start ({result.error})"
        )
        reason = exc.message if isinstance(exc, CoachctlError) else f"{exc.strerror or exc}"
        raise OutcomeNotSaved(
            f"the command {ran} but its outcome was not recorded: the step is interrupted; "
            f"check before deciding again (session {sid}: {reason})"
        ) from None


def vars_of(result: ExecResult) -> dict[str, Any]:
    return {"exit_code": result.exit_code, "timed_out": result.timed_out, "error": result.error}


def exit_words(rec: Mapping[str, Any]) -> str:
    """How an attempt ended, for people: `exit 3`, `timed out`, `killed by signal 9`, or
    why it could not start (`cannot start: Argument list too long`), never `exit None`."""
    if rec.get("error"):
        return str(rec["error"])
    if rec.get("timed_out"):
        return "timed out"
    code = rec.get("exit_code")
    if isinstance(code, int) and code < 0:
        return f"killed by signal {-code}"
    return f"exit {code}"


def _record_run(
    store: Store,
    sid: str,
    token: str,
    step: dict[str, Any],
    decision: str,
    command: str,
    feedback: str | None,
    by: str,
    result: ExecResult,
) -> Outcome:
    with transaction(store, sid) as txn:
        session = opened(store, txn.session)
        if not session.running or session.running.get("token") != token:
            raise ConflictError(f"session {sid} changed while step {step['id']!r} ran")
        outcome = "interrupted" if result.interrupted else "ok" if result.ok else "failed"
        stopped = signal_name(result.signal) if result.signal is not None else None
        record = sm.record_decision(
            session,
            step,
            decision,
            command=command,
            feedback=feedback,
            decided_by=by,
            exit_code=result.exit_code,
            outcome=outcome,
            duration=result.duration,
            output_tail=result.output_tail,
            executed=True,
            timed_out=result.timed_out,
            error=result.error,
            stopped_by=stopped,
        )
        record_seq(txn, record)
        events = _decision_events(session, record)
        if result.interrupted:
            reason = "interrupted (Ctrl-C)" if stopped == "SIGINT" else f"interrupted ({stopped})"
            if session.status == "active":
                sm.pause(session, reason)
            events.append(event("session_paused", session, reason="interrupted"))
        commit(store, txn, session, events)
    return Outcome(session, record, result)


def signal_name(sig: int) -> str:
    import signal

    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _abandon(store: Store, sid: str, token: str) -> None:
    """Ctrl-C before our command started: drop the running mark and pause, quietly."""
    try:
        with transaction(store, sid) as txn:
            session = opened(store, txn.session)
            if sm.clear_running(session, token):
                if session.status == "active":
                    sm.pause(session, "interrupted (Ctrl-C)")
                commit(
                    store, txn, session, [event("session_paused", session, reason="interrupted")]
                )
    except (CoachctlError, OSError):
        pass


def _decision_events(session: Session, record: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = [
        event(
            "decision",
            session,
            step_id=record["step_id"],
            decision=record["decision"],
            decided_by=record["decided_by"],
            outcome=record.get("outcome"),
            **({"feedback": record["feedback"]} if record.get("feedback") else {}),
        )
    ]
    if record.get("executed"):
        out.append(
            event(
                "step_executed",
                session,
                step_id=record["step_id"],
                command=record.get("command"),
                exit_code=record.get("exit_code"),
                duration=record.get("duration"),
                outcome=record.get("outcome"),
            )
        )
    if session.status == "completed":
        out.append(event("session_completed", session))
    return out


# -- AUTO ---------------------------------------------------------------------------------


def run_auto_steps(
    store: Store,
    session: Session,
    *,
    stream: Stream | None = None,
    progress: Progress | None = None,
) -> Outcome:
    """Run, unasked, every step from the cursor that may run alone in this session's mode.

    `auto` mode runs every step; `mixed` only those at AUTO. Stops at the first step that
    needs a person, at the end, or at a failure (an `auto` session is then `failed`).
    """
    from coachctl.engine import history

    outcome = Outcome(session)
    while True:
        session = load(store, session.id)
        outcome.session = session
        step = session.current_step
        if session.status != "active" or step is None or session.mode not in ("auto", "mixed"):
            return outcome
        if session.running is not None:
            return outcome  # interrupted or running elsewhere: a person decides
        if session.last_attempt_failed() or session.step_interrupted():
            return outcome  # a step that failed or was stopped is never retried unasked
        if session.mode == "mixed" and history.step_level(store, session, step) != "AUTO":
            return outcome
        if not step.get("command"):
            return outcome
        total = len(session.steps)
        index = session.cursor
        if progress is not None:
            progress({"index": index, "total": total, "step": step, "phase": "start"})
        one = decide(
            store,
            session.id,
            "accept",
            step_guard=step["id"],
            stream=stream,
            decided_by="auto",
        )
        outcome.auto_runs.append(one.record or {})
        outcome.record, outcome.result, outcome.session = one.record, one.result, one.session
        if progress is not None:
            progress(
                {
                    "index": index,
                    "total": total,
                    "step": step,
                    "phase": "done",
                    "record": one.record,
                }
            )
        if one.interrupted:
            return outcome
        if one.failed:
            if one.session.mode == "auto":
                with transaction(store, session.id) as txn:
                    fresh = opened(store, txn.session)
                    sm.fail(fresh)
                    commit(store, txn, fresh, [event("session_failed", fresh, step_id=step["id"])])
                outcome.session = fresh
            return outcome


# -- lifecycle ----------------------------------------------------------------------------


def pause(store: Store, ref: str, reason: str | None = None) -> Session:
    sid = store.resolve(ref)
    with transaction(store, sid) as txn:
        session = opened(store, txn.session)
        sm.pause(session, reason)
        commit(store, txn, session, [event("session_paused", session, reason=reason)])
    return session


def pause_quietly(store: Store, session_id: str, reason: str) -> Session | None:
    """Pause on Ctrl-C; never raise, since we are already leaving."""
    try:
        with transaction(store, session_id) as txn:
            session = opened(store, txn.session)
            if session.status != "active":
                return session
            sm.pause(session, reason)
            commit(store, txn, session, [event("session_paused", session, reason=reason)])
        return session
    except (StorageError, ConflictError, UsageError, OSError):
        return None


def resume(store: Store, ref: str) -> Session:
    sid = store.resolve(ref)
    with transaction(store, sid) as txn:
        session = opened(store, txn.session)
        if session.status == "active":
            return session
        sm.resume(session)
        commit(store, txn, session, [event("session_resumed", session)])
    return session


def cancel(store: Store, ref: str) -> Session:
    sid = store.resolve(ref)
    with transaction(store, sid) as txn:
        session = opened(store, txn.session)
        sm.cancel(session)
        commit(store, txn, session, [event("session_cancelled", session)])
    return session


# -- state --------------------------------------------------------------------------------


def session_counts(session: Session) -> dict[str, Any]:
    """What happened in this session (every decision, no window), for the state object.

    Unlike trust metrics, an observation session's reports show here as `manual`: this
    is the session's own tally, not a verdict on any suggestion.
    """
    from coachctl.engine.metrics import classify, counts, rate, round_metric

    tallied = (classify({**d, "mode": None}) for d in session.decisions)
    kinds = [k for k in tallied if k is not None]
    c: dict[str, Any] = counts(kinds)
    c["acceptance_rate"] = round_metric(rate(c))
    return c


def state(store: Store, session: Session) -> dict[str, Any]:
    """The state object of CONTRACT §4, plus a few added keys."""
    from coachctl.engine import history

    step = session.current_step
    step_obj: dict[str, Any] | None = None
    if step is not None and session.status not in ("completed", "cancelled"):
        running = session.running_state()
        last = session.last_outcome()
        status = running or (last if last in ("failed", "interrupted") else "pending")
        step_obj = {
            "index": session.cursor,
            "id": step["id"],
            "name": step.get("name") or step["id"],
            "suggestion": step.get("command"),
            "instructions": step.get("instructions_text"),
            "level": history.step_level(store, session, step),
            "status": status,
            "max_level": step.get("max_level"),
            "last_error": _last_error(session) if status == "failed" else None,
        }
    c = session_counts(session)
    return {
        "session_id": session.id,
        "workflow_id": session.workflow_id,
        "mode": session.mode,
        "status": session.status,
        "step": step_obj,
        "progress": {"done": min(session.cursor, len(session.steps)), "total": len(session.steps)},
        "stats": {
            k: c[k]
            for k in (
                "suggestions",
                "accepted",
                "rejected",
                "corrected",
                "manual",
                "skipped",
                "failed",
                "acceptance_rate",
            )
        },
        "pause_reason": session.pause_reason,
    }


def _last_error(session: Session) -> str | None:
    """Why the last attempt at the current step could not even start (E2BIG…), if so."""
    for d in reversed(session.decisions):
        if d.get("cursor") == session.cursor:
            error = d.get("error")
            return error if isinstance(error, str) else None
    return None


def list_sessions(
    store: Store,
    *,
    workflow: str | None = None,
    status: str | None = None,
    mode: str | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Summaries of the store's sessions, oldest first; unreadable ones are named apart."""
    found, bad = store.list_sessions(workflow)
    rows: list[dict[str, Any]] = []
    for s in found:
        if (status and s["status"] != status) or (mode and s["mode"] != mode):
            continue
        rows.append(
            {
                k: s[k]
                for k in (
                    "session_id",
                    "workflow_id",
                    "mode",
                    "status",
                    "step",
                    "done",
                    "total",
                    "decisions",
                    "started_by",
                    "created_at",
                    "updated_at",
                )
            }
        )
    return rows, [b.reason for b in bad]


def _derive(data: Mapping[str, Any]) -> Any:
    from coachctl.engine.records import derive

    return derive(data)
