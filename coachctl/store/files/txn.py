"""The file store's transactions: stage everything, then write the session file (the
commit point) and bring derived state up to date after it.

A derived write that fails after the commit point (disk full, lock timeout on the index)
never undoes the decision: it becomes a warning, and the next reader rebuilds what is
missing (the index notices a changed file by itself; doctor --repair does the rest).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from coachctl.errors import CoachctlError
from coachctl.store.base import Derived, LevelChange, WindowKey
from coachctl.store.files.layout import LOCK_PACK

if TYPE_CHECKING:
    from coachctl.store.files.index import Index
    from coachctl.store.files.store import FileStore


class FileTxn:
    """One session under its lock (see `coachctl.store.base.SessionTxn`)."""

    def __init__(
        self,
        store: FileStore,
        session_id: str,
        session: dict[str, Any],
        held: contextlib.ExitStack | None = None,
    ) -> None:
        self.store = store
        self.session_id = session_id
        self.session = session
        self.warnings: list[str] = []
        self._held = held if held is not None else contextlib.ExitStack()
        self._saved: tuple[Mapping[str, Any], Derived] | None = None
        self._levels: list[LevelChange] = []
        self._packs: dict[str, Mapping[str, Any] | None] = {}
        self._events: list[Mapping[str, Any]] = []
        self._dirty_packs: set[str] = set()
        self._last_seq = 0

    # -- staging ----------------------------------------------------------------------

    def next_seq(self) -> int:
        """Hybrid clock: the wall clock in microseconds, but always past every sequence the
        index knows and this session holds, so a clock that jumps back cannot reorder."""
        floor = self._last_seq
        idx = self.store.index(fresh=False)
        if idx is not None:
            with contextlib.suppress(Exception):
                floor = max(floor, idx.max_seq())
        for row in self.store.derive(self.session)["rows"]:
            floor = max(floor, row["seq"])
        if self._saved is not None:
            for row in self._saved[1]["rows"]:
                floor = max(floor, row["seq"])
        self._last_seq = max(time.time_ns() // 1000, floor + 1)
        return self._last_seq

    def save(self, session: Mapping[str, Any], derived: Derived) -> None:
        self._saved = (session, derived)

    def windows(self, keys: Sequence[WindowKey]) -> dict[WindowKey, list[str]]:
        import sqlite3

        idx = self.store.index(fresh=False)
        if idx is not None:
            try:
                return self._windows(keys, idx)
            except sqlite3.DatabaseError:  # the index is a speed-up, never a failure
                self.store.forget_index()
        return self._windows(keys, None)

    def _windows(self, keys: Sequence[WindowKey], idx: Index | None) -> dict[WindowKey, list[str]]:
        own = self._saved[1]["rows"] if self._saved is not None else None
        values = self._saved[1]["values"] if self._saved is not None else {}
        out: dict[WindowKey, list[str]] = {}
        if idx is None:
            from coachctl.store.files.full import FullScan

            scan = FullScan(self.store, keys[0][0] if keys else None)
            for key in keys:
                if own is None:
                    out[key] = [r[3] for r in scan.window_rows(key)]
                else:
                    out[key] = _merge(scan.window_rows(key, self.session_id), own, key, values)
            return out
        for key in keys:
            if own is None:
                rows = idx.window_rows(key)
                out[key] = [r[3] for r in reversed(rows)]
            else:
                out[key] = _merge(
                    list(reversed(idx.window_rows(key, self.session_id))), own, key, values
                )
        return out

    def levels(self, workflow_id: str, scope: str) -> dict[str, str]:
        import sqlite3

        idx = self.store.index(fresh=False)
        known: dict[str, str] = {}
        if idx is not None:
            try:
                known = idx.levels(workflow_id, scope)
            except sqlite3.DatabaseError:
                self.store.forget_index()  # no recorded levels: no level_changed this time
        for c in self._levels:
            if c["workflow_id"] == workflow_id and c["scope"] == scope:
                known[c["step_id"]] = c["level"]
        return known

    def set_levels(self, changes: Sequence[LevelChange]) -> None:
        self._levels.extend(changes)

    def pack(self, workflow_id: str) -> dict[str, Any] | None:
        """The derived pack, read under the workflow's pack lock (held until the end, so
        two sessions of one workflow fold one after the other, never over each other)."""
        if workflow_id in self._packs:
            staged = self._packs[workflow_id]
            return dict(staged) if staged is not None else None
        self._held.enter_context(self.store.lock(LOCK_PACK, workflow_id))
        from coachctl.store.files import packs

        found = packs.read_derived(self.store, workflow_id, fresh=False)
        self._packs[workflow_id] = found
        return found

    def put_pack(self, workflow_id: str, pack: Mapping[str, Any]) -> None:
        if workflow_id not in self._packs:
            self._held.enter_context(self.store.lock(LOCK_PACK, workflow_id))
        self._packs[workflow_id] = pack
        self._dirty_packs.add(workflow_id)

    def append_events(self, events: Sequence[Mapping[str, Any]]) -> None:
        self._events.extend(events)

    # -- commit ----------------------------------------------------------------------

    def commit(self) -> None:
        store = self.store
        written = None
        before = None
        if self._saved is not None:
            before = store.sessions_stamp()  # lets the index vouch for this write
            written = store.save_raw(self._saved[0])  # the commit point
        try:
            if self._saved is not None:
                idx = store.index(fresh=False)
                if idx is not None:
                    try:
                        idx.update(
                            self._saved[0],
                            self._saved[1],
                            self._levels,
                            dir_before=before,
                            written=written,
                        )
                        # Our own write is in: this process needs no refresh to see it
                        # (`decide` then reads no other session file for its state).
                        idx.refreshed_at = time.monotonic()
                    except Exception:
                        store.forget_index()  # only a speed-up: the next refresh catches up
            for workflow_id in sorted(self._dirty_packs):
                from coachctl.store.files import packs

                pack = self._packs[workflow_id]
                if pack is not None:
                    packs.write_derived(store, workflow_id, pack)
            store.append_events(self._events)
        except (CoachctlError, OSError) as exc:
            self.warnings.append(
                f"coachctl: warning: session {self.session_id} was saved, but not its derived "
                f"state: {exc} (coachctl doctor --repair)"
            )


def _merge(
    base: list[tuple[int, str, int, str]],
    own: Sequence[Mapping[str, Any]],
    key: WindowKey,
    values: Mapping[str, str],
) -> list[str]:
    """Other sessions' rows (oldest first) plus this session's staged ones, by seq."""
    from coachctl.store.scopes import counts_in

    workflow_id, step_id, suggestion, scope, window = key
    mine = [
        (r["seq"], r["session_id"], r["pos"], r["kind"])
        for r in own
        if r["workflow_id"] == workflow_id
        and r["step_id"] == step_id
        and r["suggestion"] == suggestion
        and counts_in(r["scope"], values, scope)
    ]
    rows = sorted([*base, *mine], key=lambda r: (r[0], r[1], r[2]))
    return [r[3] for r in rows[max(0, len(rows) - window) :]]


class HandFileTxn:
    """A workflow's hand choices under its pack lock (see `base.HandTxn`)."""

    def __init__(self, store: FileStore, workflow_id: str) -> None:
        from coachctl.store.files import packs

        self.store = store
        self.workflow_id = workflow_id
        self.choices: dict[str, Any] = packs.read_choices(store, workflow_id)
        self._put: Mapping[str, Any] | None = None
        self._events: list[Mapping[str, Any]] = []
        self._pack: Mapping[str, Any] | None = None

    def put(self, choices: Mapping[str, Any]) -> None:
        self._put = choices

    def pack(self) -> dict[str, Any] | None:
        from coachctl.store.files import packs

        return packs.read_derived(self.store, self.workflow_id)

    def put_pack(self, pack: Mapping[str, Any]) -> None:
        self._pack = pack

    def append_events(self, events: Sequence[Mapping[str, Any]]) -> None:
        self._events.extend(events)

    def commit(self) -> None:
        from coachctl.store.files import packs

        if self._put is not None:
            packs.write_choices(self.store, self.workflow_id, self._put)  # the commit point
        if self._pack is not None:
            with contextlib.suppress(CoachctlError, OSError):
                packs.write_derived(self.store, self.workflow_id, self._pack)
        self.store.append_events(self._events)
