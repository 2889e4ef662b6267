"""One decision on the current step, start to finish (CONTRACT §3): the hot path.

Check and mark the step in one transaction, hold the runner's lease, run the command with
no transaction held, then record its outcome in a second one; if that record cannot be
saved, say so plainly so that a script does not run the command twice. Scripts call
`decide` thousands of times, so this module imports only the session rules at load time:
the executor, records and trust history are imported when a decision needs them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from coachctl.engine import session as sm
from coachctl.engine.persist import commit, event, opened, record_seq, transaction
from coachctl.engine.session import Session
from coachctl.errors import CoachctlError, ConflictError, OutcomeNotSaved, UsageError

if TYPE_CHECKING:
    from coachctl.engine.executor import ExecResult
    from coachctl.store.base import Store

Stream = Callable[[bytes], None]


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
        from coachctl.engine.outcome import outcome_text

        how = outcome_text(
            {"executed": True, "exit_code": result.exit_code, "timed_out": result.timed_out}
        )
        ran = f"ran ({how})" if result.error is None else f"could not start ({result.error})"
        reason = exc.message if isinstance(exc, CoachctlError) else f"{exc.strerror or exc}"
        raise OutcomeNotSaved(
            f"the command {ran} but its outcome was not recorded: the step is interrupted; "
            f"check before deciding again (session {sid}: {reason})"
        ) from None


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


def _derive(data: Mapping[str, Any]) -> Any:
    from coachctl.engine.records import derive

    return derive(data)
