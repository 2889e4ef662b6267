"""How sessions look from outside: the state object (CONTRACT §4) and the session listing.

Read-only: nothing here writes. Apart from the service modules that change sessions so that
every command that renders a session shares one shape of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coachctl.engine.session import Session

if TYPE_CHECKING:
    from coachctl.store.base import Store


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
