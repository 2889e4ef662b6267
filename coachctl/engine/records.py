"""What a session contributes to derived state, computed by engine rules (pure).

Stores keep these rows (the file store's index, PostgreSQL's decision rows) but never
compute them: the engine hands them in with each transaction, and the file store is given
`derive` to rebuild its index from session files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from coachctl.engine import metrics
from coachctl.errors import StateError

if TYPE_CHECKING:
    from coachctl.store.base import DecisionRow, Derived


def legacy_seq(decided_at: Any) -> int:
    """The order of record of a decision written before sequences existed: its time in
    microseconds, on the same scale as new sequences (which start from the clock)."""
    if isinstance(decided_at, str):
        from datetime import datetime

        try:
            when = datetime.fromisoformat(decided_at.replace("Z", "+00:00"))
            return int(when.timestamp() * 1_000_000)
        except (ValueError, OverflowError, OSError):
            pass
    return 0


def seq_of(d: Mapping[str, Any]) -> int:
    seq = d.get("seq")
    if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0:
        return seq
    return legacy_seq(d.get("decided_at"))


def derive(data: Mapping[str, Any]) -> Derived:
    """Rows, counts and pack folds of one session; StateError when it is not a valid one."""
    from coachctl.engine import learning
    from coachctl.engine.scope import scope_key, values_of
    from coachctl.engine.session import Session

    Session.from_dict(data)  # the same validation every reader applies
    sid = str(data["id"])
    wf = str(data["workflow_id"])
    scope = scope_key(data)
    rows: list[DecisionRow] = []
    kinds: list[str] = []
    decisions = data.get("decisions") or []
    for pos, d in enumerate(decisions):
        if not isinstance(d, dict):
            continue
        kind = metrics.classify(d)
        if kind is None:
            continue
        kinds.append(kind)
        step_id = d.get("step_id")
        if not isinstance(step_id, str):
            continue
        suggestion = d.get("suggestion")
        rows.append(
            {
                "session_id": sid,
                "pos": pos,
                "seq": seq_of(d),
                "workflow_id": wf,
                "step_id": step_id,
                "suggestion": suggestion if isinstance(suggestion, str) else None,
                "scope": scope,
                "kind": kind,
                "decided_at": str(d.get("decided_at", "")),
            }
        )
    c = metrics.counts(kinds)
    return {
        "rows": rows,
        "accepted": c["accepted"],
        "suggestions": c["suggestions"],
        "folds": len(decisions) if learning.teaches(data) else 0,
        "scope": scope,
        # Recorded no trust_scope: a window on a scope the workflow has now matches these.
        "values": {} if scope else values_of(data),
    }


def checked_derive(data: Mapping[str, Any]) -> Derived:
    """`derive`, with every failure a StateError (hand-edited files hold anything)."""
    try:
        return derive(data)
    except StateError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise StateError(f"not a coachctl session ({exc})") from None
