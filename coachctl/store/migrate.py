"""`coachctl store migrate`: copy a whole store into an empty one, either way (CONTRACT §7).

Written against the Store interface only, so it moves file → PostgreSQL, PostgreSQL →
file, and any pair. Sessions go first (in id order = start order; each decision carries
its order of record, so windows come out the same), then the event log in its order,
then packs and the choices people made by hand. Nothing is deleted from the source: it is
only marked as moved once the copy is complete and verified, so later writes to it are
refused naming the new store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from coachctl.errors import UsageError
from coachctl.store.base import Store

EVENT_BATCH = 500

#: (what, done, total or None) → None: how the command shows progress.
Progress = Callable[[str, int, "int | None"], None]


def is_empty(store: Store) -> bool:
    """No session, no event, no pack, no hand choice."""
    if store.list_sessions()[0]:
        return False
    if store.pack_ids():
        return False
    return next(iter(store.read_events("")), None) is None


def copy(source: Store, target: Store, progress: Progress | None = None) -> dict[str, int]:
    """Copy everything from `source` into the empty `target`; returns the counts copied."""
    if source.moved_to() is not None:
        raise UsageError(f"{source.describe()} was already moved to {source.moved_to()}")
    if not is_empty(target):
        raise UsageError(f"{target.describe()} is not empty: migrate only into an empty store")
    note = progress or (lambda what, done, total: None)
    counts = {"sessions": 0, "events": 0, "packs": 0, "hand_choices": 0}
    total = len(source.list_sessions()[0])
    for session in source.iter_sessions():
        target.create(session, [])
        counts["sessions"] += 1
        note("sessions", counts["sessions"], total)
    batch: list[Mapping[str, Any]] = []
    for event, _cursor in source.read_events(""):
        batch.append(event)
        if len(batch) >= EVENT_BATCH:
            target.append_events(batch)
            counts["events"] += len(batch)
            note("events", counts["events"], None)
            batch = []
    if batch:
        target.append_events(batch)
        counts["events"] += len(batch)
        note("events", counts["events"], None)
    for workflow_id in source.pack_ids():
        # Hand choices first: a store may record which choices a pack was built on.
        choices = source.hand_choices(workflow_id)
        if choices:
            with target.hand_transaction(workflow_id) as txn:
                txn.put(choices)
            counts["hand_choices"] += 1
        pack = source.pack(workflow_id)
        if pack is not None:
            target.put_pack(workflow_id, pack)
            counts["packs"] += 1
        note("packs", counts["packs"], None)
    return counts


def verify(source_stats: Any, target_stats: Any, source: Store, target: Store) -> None:
    """`stats --format json` must be equal on both sides, else the source is not marked."""
    if source_stats != target_stats:
        raise UsageError(
            f"stats differ between {source.describe()} and {target.describe()} after the copy:"
            " the source was NOT marked as moved (run `coachctl doctor` on both)"
        )
