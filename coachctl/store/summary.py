"""A session's one-line summary (`SessionSummary`): the same fields by the same rules on
every store, so `sessions`, `show`/`resume` without a reference and `report` agree."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coachctl.store.base import Derived, SessionSummary


def summary_of(data: Mapping[str, Any], derived: Derived) -> SessionSummary:
    """The `list_sessions` row of a session; every store keeps or computes it by these rules
    (the file store's index and full scan, a PostgreSQL row)."""
    steps = data.get("steps") or []
    raw = data.get("cursor")
    cursor = raw if isinstance(raw, int) else 0
    status = str(data.get("status"))
    current = steps[cursor] if 0 <= cursor < len(steps) else None
    return {
        "session_id": str(data["id"]),
        "workflow_id": str(data["workflow_id"]),
        "mode": str(data.get("mode")),
        "status": status,
        "step": str(current["id"])
        if isinstance(current, dict) and status not in ("completed", "cancelled")
        else None,
        "done": min(cursor, len(steps)),
        "total": len(steps),
        "decisions": len(data.get("decisions") or []),
        "started_by": data.get("started_by"),
        "created_at": str(data.get("created_at")),
        "updated_at": str(data.get("updated_at")),
        "accepted": derived["accepted"],
        "suggestions": derived["suggestions"],
        "scope": derived["scope"],
        "values": derived["values"],
    }
