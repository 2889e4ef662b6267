"""The team store (CONTRACT §7): one PostgreSQL database, shared by every machine.

One connection per command, opened on first use; its first query checks the schema
version (and whether the store was moved) once. Sessions are rows with their JSON body
in JSONB, their counted decisions in `coachctl_decisions`; a decision is one transaction
(`txn.py`). The runner's lease is a session-level advisory lock on the runner's own
connection: it goes away with the process, or with its connection when a laptop freezes
(keepalives), and a row lock can never be held idle longer than
`idle_in_transaction_session_timeout`.
"""

from __future__ import annotations

import contextlib
import select
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

from coachctl.errors import CoachctlError, ConflictError, SessionNotFound, StateError
from coachctl.store.base import (
    BadFile,
    Derive,
    Finding,
    MetricsAnswer,
    MetricsQuery,
    SessionSummary,
    Store,
)
from coachctl.store.ids import check_id, resolve_among
from coachctl.store.postgres import connect as pgc
from coachctl.store.postgres import schema
from coachctl.store.postgres.txn import (
    NOTIFY_CHANNEL,
    PACK_LOCK,
    PACK_QUERY,
    PgHandTxn,
    PgSessionTxn,
    current_pack,
    event_writes,
    pack_write,
    session_writes,
)

_Txn = TypeVar("_Txn", PgSessionTxn, PgHandTxn)

BATCH = 500  # rows per round trip when streaming sessions or events
_CHECK = (
    "SELECT (SELECT coalesce(max(version), 0) FROM coachctl_schema),"
    " (SELECT value FROM coachctl_meta WHERE key = 'moved_to')"
)


class PostgresStore:
    kind = "postgres"

    def __init__(self, url: str, home: Path, lock_timeout: float = 10.0, *, derive: Derive) -> None:
        self.url = url
        self.home = home
        self.lock_timeout = lock_timeout
        self.derive = derive
        self._conn: Any = None
        self._moved: str | None = None
        self._listening = False

    def describe(self) -> str:
        return f"postgres store {pgc.mask(self.url)}"

    # -- the connection ----------------------------------------------------------------

    def conn(self) -> Any:
        """The connection, opened and checked once (schema version, moved marker)."""
        if self._conn is None:
            conn = pgc.connect(self.url, self.lock_timeout)
            try:
                with conn.cursor() as cur:
                    cur.execute(_CHECK)
                    found, moved = cur.fetchone()
            except pgc.driver().Error as exc:
                conn.close()
                if getattr(exc, "pgcode", None) == pgc.UNDEFINED_TABLE:
                    found, moved = 0, None
                else:
                    raise pgc.translate(exc, self.describe(), self.url) from None
            if found != schema.latest():
                conn.close()
                schema.check(int(found), self.describe())
            self._conn = conn
            self._moved = moved
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
            self._listening = False

    def rollback(self) -> None:
        """After a failed statement: end the transaction, or drop a broken connection."""
        conn = self._conn
        if conn is None:
            return
        try:
            if conn.closed:
                raise OSError("closed")
            with conn.cursor() as cur:
                cur.execute("ROLLBACK")
        except Exception:
            self.close()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Driver errors → the contract's (exit 3 for a lock not had, 1 for a lost link)."""
        psycopg2 = pgc.driver()
        try:
            yield
        except psycopg2.Error as exc:
            raise pgc.translate(exc, self.describe(), self.url) from None

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self._errors(), self.conn().cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._errors(), self.conn().cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    def check_writable(self) -> None:
        self.conn()
        if self._moved:
            raise StateError(f"{self.describe()} was moved to {self._moved}: use that store")

    # -- sessions ----------------------------------------------------------------------

    def list_sessions(
        self, workflow_id: str | None = None
    ) -> tuple[list[SessionSummary], list[BadFile]]:
        """Summaries are kept in each row (written with the session): one query."""
        if workflow_id is None:
            rows = self._all("SELECT summary FROM coachctl_sessions ORDER BY id")
        else:
            rows = self._all(
                "SELECT summary FROM coachctl_sessions WHERE workflow_id = %s ORDER BY id",
                (workflow_id,),
            )
        return [r[0] for r in rows], []

    def list_ids(self) -> list[str]:
        return [r[0] for r in self._all("SELECT id FROM coachctl_sessions ORDER BY id")]

    def resolve(self, ref: str) -> str:
        check_id(ref, "session reference")
        like = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._all(
            "SELECT id FROM coachctl_sessions WHERE id = %s"
            " OR (length(%s) >= 4 AND id LIKE %s || '%%')"
            " OR (strpos(%s, '-') = 0 AND id LIKE '%%-' || %s) ORDER BY id LIMIT 6",
            (ref, ref, like, ref, like),
        )
        return resolve_among(ref, [r[0] for r in rows], self.describe())

    def load(self, session_id: str) -> dict[str, Any]:
        check_id(session_id, "session id")
        row = self._one("SELECT body FROM coachctl_sessions WHERE id = %s", (session_id,))
        if row is None:
            raise SessionNotFound(f"unknown session: {session_id} in {self.describe()}")
        return readable(row[0], session_id, self.describe())

    def create(self, session: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> list[str]:
        self.check_writable()
        derived = self.derive(session)
        with self._errors(), self.conn().cursor() as cur:
            sql = session_writes(cur, session, derived, insert=True)
            try:
                cur.execute(b";".join([b"BEGIN", *sql, *event_writes(cur, events), b"COMMIT"]))
            except pgc.driver().IntegrityError:
                self.rollback()
                raise ConflictError(
                    f"session {session['id']} already exists in {self.describe()}"
                ) from None
            except BaseException:
                self.rollback()
                raise
        return []

    def transaction(self, session_id: str) -> AbstractContextManager[PgSessionTxn]:
        check_id(session_id, "session id")
        self.check_writable()
        return self._committed(PgSessionTxn(self, session_id))

    @contextlib.contextmanager
    def _committed(self, txn: _Txn) -> Iterator[_Txn]:
        """Begin `txn`, hand it out, commit it when the block ends; roll back on anything
        raised (the connection is dropped when it broke)."""
        try:
            with self._errors():
                txn.begin()
            yield txn
            with self._errors():
                txn.commit()
        except BaseException:
            self.rollback()
            raise

    def iter_sessions(
        self, workflow_id: str | None = None, *, teaching: bool = False
    ) -> Iterator[dict[str, Any]]:
        last = ""
        while True:
            rows = self._all(
                "SELECT id, body FROM coachctl_sessions WHERE id > %s"
                " AND (%s::text IS NULL OR workflow_id = %s) AND (NOT %s OR folds > 0)"
                " ORDER BY id LIMIT %s",
                (last, workflow_id, workflow_id, teaching, BATCH),
            )
            for sid, body in rows:
                yield body
                last = sid
            if len(rows) < BATCH:
                return

    def bad_sessions(self) -> list[BadFile]:
        """Rows are JSONB, checked on the way in: none is unreadable."""
        return []

    # -- the runner lease --------------------------------------------------------------

    @staticmethod
    def _lease_key(session_id: str, token: str) -> str:
        return f"{session_id}:{token}"

    @contextlib.contextmanager
    def lease(self, session_id: str, token: str) -> Iterator[None]:
        key = self._lease_key(session_id, token)
        row = self._one("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,))
        if not row[0]:
            raise ConflictError(f"session {session_id} has a step running")
        try:
            yield
        finally:
            with contextlib.suppress(CoachctlError):
                self._one("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))

    def lease_alive(self, session_id: str, token: str) -> bool | None:
        """Another connection holds it (True), or nobody does (False): the lock is tried,
        and released at once when had. A lock that this very connection holds counts as
        alive (pg_locks names the holder's pid)."""
        key = self._lease_key(session_id, token)
        row = self._one(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND pid = pg_backend_pid() AND objsubid = 1"
            " AND ((classid::bigint << 32) | objid::bigint) = hashtextextended(%s, 0)),"
            " pg_try_advisory_lock(hashtextextended(%s, 0))",
            (key, key),
        )
        mine, had = row
        if mine:
            self._one("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
            return True
        if had:
            self._one("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
            return False
        return True

    # -- metrics -----------------------------------------------------------------------

    def metrics(self, query: MetricsQuery) -> MetricsAnswer:
        from coachctl.store.postgres.metrics import answer, metrics_query

        with self._errors(), self.conn().cursor() as cur:
            cur.execute(metrics_query(cur, query))
            return answer(query, cur.fetchone()[0])

    def workflow_ids(self) -> list[str]:
        rows = self._all("SELECT workflow_id FROM coachctl_workflows WHERE sessions > 0 ORDER BY 1")
        return [r[0] for r in rows]

    def latest_session(self, workflow_id: str) -> dict[str, Any] | None:
        row = self._one(
            "SELECT body FROM coachctl_sessions WHERE workflow_id = %s ORDER BY id DESC LIMIT 1",
            (workflow_id,),
        )
        return row[0] if row else None

    # -- events ------------------------------------------------------------------------

    def append_events(self, events: Sequence[Mapping[str, Any]]) -> None:
        if not events:
            return
        self.check_writable()
        with self._errors(), self.conn().cursor() as cur:
            try:
                cur.execute(b";".join([b"BEGIN", *event_writes(cur, events), b"COMMIT"]))
            except BaseException:
                self.rollback()
                raise

    def read_events(
        self, cursor: str = "", kinds: Collection[str] | None = None
    ) -> Iterator[tuple[dict[str, Any], str]]:
        last = _event_id(cursor)
        wanted = None if kinds is None else sorted(kinds)
        while True:
            if wanted is None:
                rows = self._all(
                    "SELECT id, body FROM coachctl_events WHERE id > %s ORDER BY id LIMIT %s",
                    (last, BATCH),
                )
            else:  # a string "event" only, as the file store checks it
                rows = self._all(
                    "SELECT id, body FROM coachctl_events WHERE id > %s"
                    " AND jsonb_typeof(body->'event') = 'string' AND body->>'event' = ANY(%s)"
                    " ORDER BY id LIMIT %s",
                    (last, wanted, BATCH),
                )
            for eid, body in rows:
                last = int(eid)
                yield body, str(last)
            if len(rows) < BATCH:
                return

    def events_end(self) -> str:
        return str(self._one("SELECT coalesce(max(id), 0) FROM coachctl_events")[0])

    def wait_events(self, cursor: str, timeout: float) -> None:
        """LISTEN (once per connection), look past the cursor, then wait for a NOTIFY;
        the timeout doubles as a poll. A lost connection is reopened, waiting out an outage
        (a restart, a network cut) with backoff; the caller then reads on from its cursor."""
        deadline = time.monotonic() + timeout
        try:
            conn = self.conn()
            if not self._listening:
                with conn.cursor() as cur:
                    cur.execute(f"LISTEN {NOTIFY_CHANNEL}")
                self._listening = True
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT EXISTS (SELECT 1 FROM coachctl_events WHERE id > %s)",
                    (_event_id(cursor),),
                )
                if cur.fetchone()[0]:
                    return
            left = deadline - time.monotonic()
            if left > 0 and not conn.notifies:
                select.select([conn], [], [], left)
                conn.poll()
            conn.notifies.clear()
        except pgc.driver().Error:
            self.close()
            self._reopen()

    def _reopen(self) -> None:
        """Until a new connection (checked as every first one) can be had."""
        pause = 0.1
        while True:
            try:
                self.conn()
                return
            except pgc.Unreachable:
                time.sleep(pause)
                pause = min(pause * 2, 2.0)

    # -- packs and hand choices ----------------------------------------------------------

    def pack(self, workflow_id: str) -> dict[str, Any] | None:
        body, want = self._one(PACK_QUERY, (workflow_id, workflow_id))
        return current_pack(body, want)

    def put_pack(self, workflow_id: str, pack: Mapping[str, Any]) -> None:
        """A rebuild, written under the workflow's pack lock; one that raced a teaching
        decision is seen as stale by the next reader and rebuilt again."""
        self.check_writable()
        with self._errors(), self.conn().cursor() as cur:
            try:
                cur.execute(
                    b";".join(
                        [
                            b"BEGIN",
                            cur.mogrify(PACK_LOCK, (workflow_id,)),
                            pack_write(cur, workflow_id, pack),
                            b"COMMIT",
                        ]
                    )
                )
            except BaseException:
                self.rollback()
                raise

    def pack_ids(self) -> list[str]:
        rows = self._all(
            "SELECT workflow_id FROM coachctl_packs UNION SELECT workflow_id FROM"
            " coachctl_hand_choices WHERE body <> 'null' ORDER BY 1"
        )
        return [r[0] for r in rows]

    def hand_choices(self, workflow_id: str) -> dict[str, Any]:
        row = self._one(
            "SELECT body FROM coachctl_hand_choices WHERE workflow_id = %s", (workflow_id,)
        )
        body = row[0] if row else None
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise StateError(f"damaged hand choices of {workflow_id} in {self.describe()}")
        return body

    def hand_transaction(self, workflow_id: str) -> AbstractContextManager[PgHandTxn]:
        check_id(workflow_id, "workflow id")
        self.check_writable()
        return self._committed(PgHandTxn(self, workflow_id))

    # -- reports -------------------------------------------------------------------------

    def recent_decisions(
        self, workflow_id: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        rows = self._all(
            "SELECT d.session_id, d.workflow_id, d.seq, s.body->'decisions'->d.pos"
            " FROM coachctl_decisions d JOIN coachctl_sessions s ON s.id = d.session_id"
            " WHERE (%s::text IS NULL OR d.workflow_id = %s)"
            " ORDER BY d.seq DESC, d.session_id DESC LIMIT %s",
            (workflow_id, workflow_id, limit),
        )
        out = []
        for sid, wf, seq, d in rows:
            d = d if isinstance(d, dict) else {}
            out.append(
                {
                    "session_id": sid,
                    "workflow_id": wf,
                    "step_id": d.get("step_id"),
                    "decision": d.get("decision"),
                    "decided_by": d.get("decided_by"),
                    "decided_at": d.get("decided_at"),
                    "outcome": d.get("outcome"),
                    "feedback": d.get("feedback"),
                    "seq": int(seq),
                }
            )
        return out

    # -- upkeep ----------------------------------------------------------------------------

    def doctor(self, *, repair: bool = False) -> tuple[list[Finding], int]:
        from coachctl.store.postgres.doctor import check

        return check(self, repair=repair)

    def moved_to(self) -> str | None:
        self.conn()
        return self._moved

    def mark_moved(self, target: str) -> None:
        self._one(
            "INSERT INTO coachctl_meta (key, value) VALUES ('moved_to', %s)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value RETURNING value",
            (target,),
        )
        self._moved = target


def readable(body: Any, session_id: str, where: str) -> dict[str, Any]:
    """A session row's JSON, refused (exit 2) when it is not a session this coachctl can
    read: written by a newer coachctl (its record layout), or not an object at all."""
    from coachctl.store.base import SCHEMA_VERSION

    if not isinstance(body, dict):
        raise StateError(f"unreadable session {session_id} in {where}: not a coachctl session")
    version = body.get("schema_version", 1)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise StateError(
            f"session {session_id} in {where} has schema_version {version!r}, written by a "
            f"newer coachctl (this one reads up to {SCHEMA_VERSION}): upgrade coachctl"
        )
    return body


def _event_id(cursor: str) -> int:
    try:
        return max(int(cursor or 0), 0)
    except ValueError:
        return 0


def _conforms(store: PostgresStore) -> Store:
    """mypy checks here that PostgresStore keeps the whole Store interface."""
    return store
