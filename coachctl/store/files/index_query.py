"""What the index answers: windows, levels, summaries, trends, bad files.

Why its own module: every read of the derived data is one query here, so commands and the
store never write SQL, and the refresh logic (index.py) stays apart from what is asked.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from coachctl.store.base import BadFile, SessionSummary, WindowKey
from coachctl.store.files.index_db import IndexFile
from coachctl.store.files.layout import SESSION_SUFFIX
from coachctl.store.files.records import DecisionRow, SessionRow
from coachctl.store.scopes import legacy_terms

if TYPE_CHECKING:
    from collections.abc import Sequence

TREND_SESSIONS = 20


class IndexQueries(IndexFile):
    """Reads of the index (a mixin of `Index`; the caller refreshed it first)."""

    def levels(self, workflow_id: str, scope: str) -> dict[str, str]:
        return dict(
            self.db.execute(
                "SELECT step_id, level FROM levels WHERE workflow_id=? AND scope=?",
                (workflow_id, scope),
            )
        )

    def max_seq(self) -> int:
        row = self.db.execute("SELECT max(seq) FROM decisions").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def window_rows(
        self, key: WindowKey, exclude: str | None = None
    ) -> list[tuple[int, str, int, str]]:
        """The last `window` (seq, session_id, pos, kind) counting toward exactly this
        suggestion and scope, newest first, in order of record (`seq`), leaving out session
        `exclude`. On a scope: two index-backed top-Ns, the rows recorded with it and the
        unscoped rows whose session's kept values match it (store/scopes.py), merged."""
        workflow_id, step_id, suggestion, scope, window = key
        own = (
            "SELECT seq, session_id, pos, kind FROM decisions"
            " WHERE workflow_id=? AND step_id=? AND suggestion=? AND scope=? AND session_id!=?"
            " ORDER BY seq DESC, session_id DESC, pos DESC LIMIT ?"
        )
        params: list[object] = [workflow_id, step_id, suggestion, scope, exclude or "", window]
        terms = legacy_terms(scope)
        if terms is None:
            return self.db.execute(own, params).fetchall()
        want, absent = terms
        match = [(name, want.get(name)) for name in sorted({*want, *absent})]
        # CROSS JOIN keeps decisions outer: walk its index newest first, look each session up.
        legacy = (
            "SELECT d.seq, d.session_id, d.pos, d.kind FROM decisions d CROSS JOIN sessions s"
            " ON s.id = d.session_id WHERE d.workflow_id=? AND d.step_id=? AND d.suggestion=?"
            " AND d.scope='' AND d.session_id!=?"
            + "".join(" AND json_extract(s.summary, ?) IS ?" for _ in match)
            + " ORDER BY d.seq DESC, d.session_id DESC, d.pos DESC LIMIT ?"
        )
        params += [workflow_id, step_id, suggestion, exclude or ""]
        for name, value in match:
            params += [f"$.values.{json.dumps(name)}", value]
        params += [window, window]
        return self.db.execute(
            f"SELECT * FROM ({own}) UNION ALL SELECT * FROM ({legacy})"
            " ORDER BY 1 DESC, 2 DESC, 3 DESC LIMIT ?",
            params,
        ).fetchall()

    def windows(self, keys: Sequence[WindowKey]) -> dict[WindowKey, list[str]]:
        """Kinds of each window, oldest first."""
        return {key: [r[3] for r in reversed(self.window_rows(key))] for key in keys}

    def session_count(self, workflow_id: str) -> int:
        row = self.db.execute(
            "SELECT count(*) FROM sessions WHERE workflow_id=?", (workflow_id,)
        ).fetchone()
        return int(row[0])

    def trend(self, workflow_id: str, n: int = TREND_SESSIONS) -> list[float | None]:
        """Acceptance rate of each of the workflow's last `n` sessions, oldest first."""
        rows = self.db.execute(
            "SELECT accepted, suggestions FROM sessions WHERE workflow_id=?"
            " ORDER BY id DESC LIMIT ?",
            (workflow_id, n),
        ).fetchall()
        return [a / s if s else None for a, s in reversed(rows)]

    def workflow_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT workflow_id FROM sessions")]

    def latest_ids(self, workflow_id: str, n: int = 5) -> list[str]:
        return [
            r[0]
            for r in self.db.execute(
                "SELECT id FROM sessions WHERE workflow_id=? ORDER BY id DESC LIMIT ?",
                (workflow_id, n),
            )
        ]

    def bad_files(self) -> list[BadFile]:
        return [
            BadFile(sid, str(self.store.sessions_dir / f"{sid}{SESSION_SUFFIX}"), reason, wf)
            for sid, reason, wf in self.db.execute(
                "SELECT id, reason, workflow_id FROM bad ORDER BY id"
            )
        ]

    def session_rows(self) -> dict[str, SessionRow]:
        return {
            r[0]: (r[0], r[1], r[2], r[3], r[4], r[5], r[6])
            for r in self.db.execute(
                "SELECT id, workflow_id, status, accepted, suggestions, folds, summary"
                " FROM sessions"
            )
        }

    def summaries(self, workflow_id: str | None = None) -> list[SessionSummary]:
        """The kept `list_sessions` rows (of one workflow), in id order."""
        if workflow_id is None:
            cur = self.db.execute("SELECT summary FROM sessions ORDER BY id")
        else:
            cur = self.db.execute(
                "SELECT summary FROM sessions WHERE workflow_id=? ORDER BY id", (workflow_id,)
            )
        loads = json.loads
        return [loads(r[0]) for r in cur]

    def folds(self, workflow_id: str) -> dict[str, int]:
        """{session id: decisions its workflow's pack must have folded} (teaching ones)."""
        return dict(
            self.db.execute(
                "SELECT id, folds FROM sessions WHERE workflow_id=? AND folds>0", (workflow_id,)
            )
        )

    def decision_rows(self) -> dict[str, list[DecisionRow]]:
        out: dict[str, list[DecisionRow]] = {}
        for r in self.db.execute("SELECT * FROM decisions ORDER BY session_id, pos"):
            out.setdefault(r[0], []).append((r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]))
        return out
