"""The full recomputation: every session file read once, no index.

Slow and obviously correct: `doctor` compares the index with it, and it answers when the
index cannot be used (a read-only home).
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from coachctl.errors import CoachctlError
from coachctl.store.base import BadFile, Derived, MetricsAnswer, MetricsQuery, WindowKey
from coachctl.store.files.fs import os_reason, read_nofollow
from coachctl.store.files.records import guess_workflow, read_session_bytes
from coachctl.store.scopes import counts_in

if TYPE_CHECKING:
    from coachctl.store.files.store import FileStore


class FullScan:
    """Every readable session file of the home (in id order), with its derived rows."""

    def __init__(self, store: FileStore, workflow_id: str | None = None) -> None:
        self.sessions: dict[str, list[tuple[dict[str, Any], Derived]]] = {}
        self.bad: list[BadFile] = []
        for sid in store.list_ids():
            path = store.session_path(sid)
            try:
                raw = read_nofollow(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                reason = (
                    f"unreadable session file {path}: a symlink (refused)"
                    if exc.errno == errno.ELOOP
                    else f"cannot read {path}: {os_reason(exc, True)}"
                )
                self.bad.append(BadFile(sid, str(path), reason))
                continue
            try:
                data, derived = read_session_bytes(raw, path, store.derive)
            except CoachctlError as exc:
                self.bad.append(BadFile(sid, str(path), exc.message, guess_workflow(raw)))
                continue
            wf = str(data["workflow_id"])
            if workflow_id is None or wf == workflow_id:
                self.sessions.setdefault(wf, []).append((data, derived))

    def count(self) -> int:
        return sum(len(v) for v in self.sessions.values()) + len(self.bad)

    def window_rows(
        self, key: WindowKey, exclude: str | None = None
    ) -> list[tuple[int, str, int, str]]:
        """The last `window` (seq, session_id, pos, kind), oldest first, in order of record."""
        workflow_id, step_id, suggestion, scope, window = key
        rows = sorted(
            (r["seq"], r["session_id"], r["pos"], r["kind"])
            for data, derived in self.sessions.get(workflow_id, [])
            if data["id"] != exclude
            for r in derived["rows"]
            if r["step_id"] == step_id
            and r["suggestion"] == suggestion
            and counts_in(r["scope"], derived["values"], scope)
        )
        return rows[max(0, len(rows) - window) :]

    def windows(self, keys: Sequence[WindowKey]) -> dict[WindowKey, list[str]]:
        return {key: [r[3] for r in self.window_rows(key)] for key in keys}

    def trend(self, workflow_id: str, n: int) -> list[float | None]:
        return [
            d["accepted"] / d["suggestions"] if d["suggestions"] else None
            for _, d in self.sessions.get(workflow_id, [])[-n:]
        ]

    def metrics(self, query: MetricsQuery) -> MetricsAnswer:
        return {
            "windows": self.windows(query["windows"]),
            "session_counts": {wf: len(self.sessions.get(wf, [])) for wf in query["workflows"]},
            "trends": {wf: self.trend(wf, query["trend"]) for wf in query["workflows"]},
            "bad": list(self.bad),
        }

    def workflow_ids(self) -> list[str]:
        return list(self.sessions)

    def latest(self, workflow_id: str) -> dict[str, Any] | None:
        found = self.sessions.get(workflow_id)
        return found[-1][0] if found else None
