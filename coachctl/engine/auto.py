"""AUTO runs: the steps a session may take without asking, one decision each.

Apart from `decide` because it is a loop of policy over decisions (which mode, which
level, when to stop, when an `auto` session has failed), not a decision itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from coachctl.engine import session as sm
from coachctl.engine.deciding import Outcome, Stream, decide
from coachctl.engine.persist import commit, event, load, opened, transaction

if TYPE_CHECKING:
    from coachctl.engine.session import Session
    from coachctl.store.base import Store

Progress = Callable[[dict[str, Any]], None]


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
    names = history.names_now(store, session) if session.mode == "mixed" else ()
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
        if session.mode == "mixed" and not history.may_run_alone(store, session, step, names):
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
