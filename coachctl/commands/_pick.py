"""Which session a command means when the person names none, or names it loosely.

`show` and `resume` without a reference take the most recent session they can act on and
say which on stderr (stdout stays the state, or its JSON). `resume` with a reference that
matches several sessions keeps only those it can resume: "ambiguous" then lists those.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import click

#: What `resume` without a reference takes (CONTRACT §1): paused, or failed in an AUTO run.
RESUME_LATEST = ("paused", "failed")
#: What `resume` can reopen at all (an active session just gets its panel back).
RESUMABLE = ("paused", "failed", "active")


def store_name(store: Any) -> str:
    """How errors name the store searched (`Store.describe`)."""
    return str(store.describe())


def listing(store: Any) -> list[dict[str, Any]]:
    """Every readable session's summary (the same listing `coachctl sessions` prints)."""
    from coachctl.engine import views

    rows, _bad = views.list_sessions(store)
    return rows


def most_recent(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The session touched last (ties: the later start, i.e. the larger id)."""
    if not rows:
        return None
    return max(rows, key=lambda r: (str(r.get("updated_at") or ""), str(r["session_id"])))


def latest(store: Any, statuses: Collection[str] | None, what: str) -> str:
    """The most recent session with one of `statuses` (any when None); says which on stderr."""
    from coachctl.errors import SessionNotFound

    rows = [r for r in listing(store) if statuses is None or r["status"] in statuses]
    row = most_recent(rows)
    if row is None:
        raise SessionNotFound(f"no {what} in {store_name(store)}")
    click.echo(
        f"coachctl: {row['session_id']} ({row['workflow_id']}, {row['status']}, "
        f"updated {_short(row.get('updated_at'))}): the most recent {what}",
        err=True,
    )
    return str(row["session_id"])


def matches(ref: str, session_id: str) -> bool:
    """A reference names an id: the full id, a prefix of it, or its part after the last `-`."""
    return session_id.startswith(ref) or session_id.rsplit("-", 1)[-1] == ref


def resolve_resumable(store: Any, ref: str) -> str:
    """`resume REF`: the store's answer, unless REF is ambiguous among all sessions but not
    among those `resume` can act on; then the one resumable match, or an ambiguity that
    lists only resumable sessions."""
    from coachctl.errors import SessionNotFound

    try:
        return str(store.resolve(ref))
    except SessionNotFound:
        if len(ref) < 4:
            raise
        candidates = sorted(
            r["session_id"]
            for r in listing(store)
            if r["status"] in RESUMABLE and matches(ref, r["session_id"])
        )
        if len(candidates) == 1:
            return str(candidates[0])
        if not candidates:
            raise
        shown = ", ".join(candidates[:5]) + (", …" if len(candidates) > 5 else "")
        raise SessionNotFound(
            f"ambiguous session {ref} in {store_name(store)}: it matches "
            f"{len(candidates)} sessions that can be resumed: {shown}"
        ) from None


def _short(stamp: Any) -> str:
    from coachctl.commands._output import short_time

    return short_time(str(stamp)) if stamp else "?"
