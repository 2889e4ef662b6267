"""The session transaction on PostgreSQL: one database transaction, few round trips.

`BEGIN` and `SELECT … FOR UPDATE` go in one round trip, and the same query brings what a
decision needs next (a sequence number, the workflow's levels and pack). Writes are
staged as SQL and sent together: with a window query when the engine asks for one inside
the transaction (it must see the staged rows), else with `COMMIT`. Events are appended
under a transaction-level advisory lock taken just before their insert and held to the
commit, so event ids are in commit order; `NOTIFY` in the same transaction is delivered
by the server only after the commit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from coachctl.errors import SessionNotFound, StateError
from coachctl.store.base import Derived, LevelChange, WindowKey
from coachctl.store.postgres import schema
from coachctl.store.summary import summary_of

if TYPE_CHECKING:
    from coachctl.store.postgres.store import PostgresStore

NOTIFY_CHANNEL = "coachctl_events"

_LOCK_AND_LOAD = (
    "BEGIN; SELECT s.body, nextval('coachctl_decision_seq'),"
    " (SELECT coalesce(json_agg(json_build_array(l.step_id, l.scope, l.level)), '[]')"
    "  FROM coachctl_levels l WHERE l.workflow_id = s.workflow_id), s.folds"
    " FROM coachctl_sessions s WHERE s.id = %s FOR UPDATE OF s"
)
#: A workflow's pack is read and written under a transaction-level advisory lock: two
#: sessions of one workflow that both teach it never lose each other's fold.
PACK_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('coachctl pack ' || %s, 0))"
#: The stored pack with what it must have folded: {session id: folds} of teaching sessions.
PACK_QUERY = (
    "SELECT (SELECT body FROM coachctl_packs WHERE workflow_id = %s),"
    " (SELECT coalesce(json_object_agg(id, folds), '{}') FROM coachctl_sessions"
    "  WHERE workflow_id = %s AND folds > 0)"
)


def current_pack(body: Any, want: Mapping[str, Any]) -> dict[str, Any] | None:
    """The pack when it is well-formed and has folded exactly what the sessions hold;
    None when missing, damaged or stale (the engine then rebuilds it)."""
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("steps"), dict)
        or not isinstance(body.get("folded"), dict)
        or not isinstance(body.get("version"), int)
    ):
        return None
    if {str(k): v for k, v in body["folded"].items()} != dict(want):
        return None
    return body


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def session_writes(
    cur: Any, session: Mapping[str, Any], derived: Derived, *, insert: bool
) -> list[bytes]:
    """SQL that stores a session and replaces all its decision rows."""
    sid = str(session["id"])
    body = dumps(session)
    summ = dumps(summary_of(session, derived))
    values: tuple[Any, ...] = (
        sid,
        str(session["workflow_id"]),
        str(session.get("status")),
        str(session.get("mode")),
        str(session.get("created_at") or ""),
        str(session.get("updated_at") or ""),
        derived["accepted"],
        derived["suggestions"],
        int(derived.get("folds", 0)),
        body,
        summ,
    )
    if insert:
        sql = [
            cur.mogrify(
                "INSERT INTO coachctl_workflows (workflow_id, sessions) VALUES (%s, 1)"
                " ON CONFLICT (workflow_id) DO UPDATE"
                " SET sessions = coachctl_workflows.sessions + 1",
                (str(session["workflow_id"]),),
            ),
            cur.mogrify(
                "INSERT INTO coachctl_sessions (id, workflow_id, status, mode, created_at,"
                " updated_at, accepted, suggestions, folds, body, summary)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb)",
                values,
            ),
        ]
    else:
        sql = [
            cur.mogrify(
                "UPDATE coachctl_sessions SET workflow_id = %s, status = %s, mode = %s,"
                " created_at = %s, updated_at = %s, accepted = %s, suggestions = %s,"
                " folds = %s, body = %s::jsonb, summary = %s::jsonb WHERE id = %s",
                (*values[1:], sid),
            ),
            cur.mogrify("DELETE FROM coachctl_decisions WHERE session_id = %s", (sid,)),
        ]
    rows = derived["rows"]
    if rows:
        cols = list(zip(*[_row(r) for r in rows], strict=True))
        sql.append(
            cur.mogrify(
                "INSERT INTO coachctl_decisions (session_id, pos, seq, workflow_id, step_id,"
                " suggestion, scope, kind, decided_at) SELECT * FROM unnest(%s::text[],"
                " %s::int[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[],"
                " %s::text[], %s::text[])",
                [list(c) for c in cols],
            )
        )
        top = max(int(r["seq"]) for r in rows)
        # A seq recorded elsewhere (a migrated store) must stay below every new one.
        sql.append(
            cur.mogrify(
                "SELECT setval('coachctl_decision_seq', %s)"
                " WHERE (SELECT last_value FROM coachctl_decision_seq) < %s",
                (top, top),
            )
        )
    return sql


def _row(r: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        r["session_id"],
        r["pos"],
        r["seq"],
        r["workflow_id"],
        r["step_id"],
        r["suggestion"],
        r["scope"],
        r["kind"],
        r["decided_at"],
    )


def event_writes(cur: Any, events: Sequence[Mapping[str, Any]]) -> list[bytes]:
    """SQL that appends events in order, serialised with every other append (commit order),
    and notifies followers (delivered by the server after the commit)."""
    if not events:
        return []
    sids = [e.get("session_id") if isinstance(e.get("session_id"), str) else None for e in events]
    wfs = [e.get("workflow_id") if isinstance(e.get("workflow_id"), str) else None for e in events]
    bodies = [dumps(e) for e in events]
    return [
        cur.mogrify(
            "SELECT pg_advisory_xact_lock(%s, %s)", (schema.LOCK_SPACE, schema.EVENTS_LOCK)
        ),
        cur.mogrify(
            "INSERT INTO coachctl_events (session_id, workflow_id, body)"
            " SELECT s, w, b::jsonb FROM unnest(%s::text[], %s::text[], %s::text[])"
            " WITH ORDINALITY AS t(s, w, b, n) ORDER BY n",
            (sids, wfs, bodies),
        ),
        f"NOTIFY {NOTIFY_CHANNEL}".encode(),
    ]


class PgSessionTxn:
    """One locked session; see the module docstring for what goes when."""

    def __init__(self, store: PostgresStore, session_id: str) -> None:
        self.store = store
        self.session_id = session_id
        self.warnings: list[str] = []
        self.cur = store.conn().cursor()
        self.pending: list[bytes] = []
        self.events: list[Mapping[str, Any]] = []
        self._seqs: list[int] = []
        self._folds = 0  # this session's folds as committed (before this transaction)
        self._levels: dict[tuple[str, str], dict[str, str]] = {}
        self._levels_of: set[str] = set()  # workflows whose levels (all scopes) are here
        self._packs: dict[str, dict[str, Any] | None] = {}
        self.session: dict[str, Any] = {}

    def begin(self) -> None:
        self.cur.execute(_LOCK_AND_LOAD, (self.session_id,))
        row = self.cur.fetchone()
        if row is None:
            raise SessionNotFound(f"unknown session: {self.session_id} in {self.store.describe()}")
        from coachctl.store.postgres.store import readable

        body, seq, levels, self._folds = row
        self.session = readable(body, self.session_id, self.store.describe())
        self._seqs.append(int(seq))
        wf = str(body.get("workflow_id"))
        self._levels_of.add(wf)
        for step_id, scope, level in levels:
            self._levels.setdefault((wf, scope), {})[step_id] = level

    # -- what the engine calls -------------------------------------------------------

    def next_seq(self) -> int:
        if self._seqs:
            return self._seqs.pop()
        self.cur.execute("SELECT nextval('coachctl_decision_seq')")
        return int(self.cur.fetchone()[0])

    def save(self, session: Mapping[str, Any], derived: Derived) -> None:
        self.session = dict(session)
        self.pending += session_writes(self.cur, session, derived, insert=False)

    def windows(self, keys: Sequence[WindowKey]) -> dict[WindowKey, list[str]]:
        from coachctl.store.postgres.metrics import windows_query

        if not keys:
            return {}
        sql = windows_query(self.cur, keys)
        self.cur.execute(b";".join([*self.pending, sql]))
        self.pending = []
        found = dict(self.cur.fetchall())
        return {key: list(found.get(i) or []) for i, key in enumerate(keys)}

    def levels(self, workflow_id: str, scope: str) -> dict[str, str]:
        if workflow_id not in self._levels_of:
            self.cur.execute(
                "SELECT step_id, scope, level FROM coachctl_levels WHERE workflow_id = %s",
                (workflow_id,),
            )
            self._levels_of.add(workflow_id)
            for step_id, sc, level in self.cur.fetchall():
                self._levels.setdefault((workflow_id, sc), {})[step_id] = level
        return dict(self._levels.get((workflow_id, scope), {}))

    def set_levels(self, changes: Sequence[LevelChange]) -> None:
        for c in changes:
            self._levels.setdefault((c["workflow_id"], c["scope"]), {})[c["step_id"]] = c["level"]
            self.pending.append(
                self.cur.mogrify(
                    "INSERT INTO coachctl_levels (workflow_id, step_id, scope, level)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (workflow_id, step_id, scope)"
                    " DO UPDATE SET level = excluded.level",
                    (c["workflow_id"], c["step_id"], c["scope"], c["level"]),
                )
            )

    def pack(self, workflow_id: str) -> dict[str, Any] | None:
        if workflow_id not in self._packs:
            self.cur.execute(
                b";".join(
                    [
                        *self.pending,
                        self.cur.mogrify(PACK_LOCK, (workflow_id,)),
                        self.cur.mogrify(PACK_QUERY, (workflow_id, workflow_id)),
                    ]
                )
            )
            self.pending = []
            body, want = self.cur.fetchone()
            # The pack must have folded what is committed: this session as it was before
            # this transaction, not its staged (maybe already flushed) new state.
            if str(self.session.get("workflow_id")) == workflow_id:
                want = {k: v for k, v in want.items() if k != self.session_id}
                if self._folds:
                    want[self.session_id] = self._folds
            self._packs[workflow_id] = current_pack(body, want)
        found = self._packs[workflow_id]
        return json.loads(json.dumps(found)) if found is not None else None

    def put_pack(self, workflow_id: str, pack: Mapping[str, Any]) -> None:
        self._packs[workflow_id] = dict(pack)
        self.pending.append(pack_write(self.cur, workflow_id, pack))

    def append_events(self, events: Sequence[Mapping[str, Any]]) -> None:
        self.events.extend(events)

    # -- the end -----------------------------------------------------------------------

    def commit(self) -> None:
        self.cur.execute(
            b";".join([*self.pending, *event_writes(self.cur, self.events), b"COMMIT"])
        )
        self.pending = []

    def rollback(self) -> None:
        self.store.rollback()


def pack_write(cur: Any, workflow_id: str, pack: Mapping[str, Any]) -> bytes:
    return bytes(
        cur.mogrify(
            "INSERT INTO coachctl_packs (workflow_id, body) VALUES (%s, %s::jsonb)"
            " ON CONFLICT (workflow_id) DO UPDATE SET body = excluded.body",
            (workflow_id, dumps(pack)),
        )
    )


class PgHandTxn:
    """A workflow's hand choices, row-locked (a new record is created locked)."""

    def __init__(self, store: PostgresStore, workflow_id: str) -> None:
        self.store = store
        self.workflow_id = workflow_id
        self.cur = store.conn().cursor()
        self.choices: dict[str, Any] = {}
        self.pending: list[bytes] = []
        self.events: list[Mapping[str, Any]] = []
        self._pack: dict[str, Any] | None = None

    def begin(self) -> None:
        # The pack lock first (the same order as a session that teaches), then the record.
        self.cur.execute(
            b";".join(
                [
                    b"BEGIN",
                    self.cur.mogrify(PACK_LOCK, (self.workflow_id,)),
                    self.cur.mogrify(
                        "SELECT (SELECT body FROM coachctl_hand_choices WHERE workflow_id = %s),"
                        " q.* FROM (" + PACK_QUERY + ") q",
                        (self.workflow_id, self.workflow_id, self.workflow_id),
                    ),
                ]
            )
        )
        body, pack, want = self.cur.fetchone()
        self._pack = current_pack(pack, want)
        if body is not None and not isinstance(body, dict):
            raise StateError(
                f"damaged hand choices of {self.workflow_id} in {self.store.describe()}"
            )
        self.choices = body or {}

    def put(self, choices: Mapping[str, Any]) -> None:
        self.choices = dict(choices)
        self.pending.append(
            self.cur.mogrify(
                "INSERT INTO coachctl_hand_choices (workflow_id, body) VALUES (%s, %s::jsonb)"
                " ON CONFLICT (workflow_id) DO UPDATE SET body = excluded.body",
                (self.workflow_id, dumps(choices)),
            )
        )

    def pack(self) -> dict[str, Any] | None:
        return json.loads(json.dumps(self._pack)) if self._pack is not None else None

    def put_pack(self, pack: Mapping[str, Any]) -> None:
        self._pack = dict(pack)
        self.pending.append(pack_write(self.cur, self.workflow_id, pack))

    def append_events(self, events: Sequence[Mapping[str, Any]]) -> None:
        self.events.extend(events)

    def commit(self) -> None:
        self.cur.execute(
            b";".join([*self.pending, *event_writes(self.cur, self.events), b"COMMIT"])
        )
