"""The derived index: the few fields metrics need, so `stats` never re-reads 100,000 files.

Why SQLite (stdlib, WAL): one indexed range query answers "the last `window` decisions on this
step's exact suggestion", a decision updates a few rows instead of rewriting a big JSON blob,
and readers never block the writer. The session files stay the only truth: the index can be
deleted at any time and is rebuilt from them silently.

Refresh notices changes by itself. Every coachctl write is a rename in `sessions/`, which
moves the folder's mtime; when the folder is unchanged since the last full scan nothing was
added, removed or replaced, so a warm refresh costs one `stat`. Otherwise every session file's
name, mtime_ns and size are compared with the table and only what differs is re-read. (A file
rewritten in place, without touching the folder, is found by `doctor`, which compares
everything.) Timestamps younger than a second are never trusted ("racy" entries are re-read).

A coachctl write vouches for itself (`update`): when the folder's stamp just before the write
is the one the index last saw, the index records the stamp after it as *pending*. The next
refresh then only lists the folder (names and inodes, no `stat` per file): it must hold
exactly the files the index knows, each with the inode the index recorded (a file replaced by
a rename has a new inode); the racy entries are re-read. Anything else, e.g. a file a sync
tool added during the write, or a writer killed between its write and its update, falls back
to the full comparison.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coachctl.engine import metrics
from coachctl.engine.store import (
    ID_RE,
    SESSION_SUFFIX,
    Store,
    _read_nofollow,
    dir_stamp,
    parse_session_bytes,
)
from coachctl.errors import CoachctlError, StateError

if TYPE_CHECKING:
    import sqlite3

# In its own folder: SQLite's -wal/-shm files come and go, and must not move the mtime of
# sessions/ that tells a warm refresh nothing changed.
INDEX_DIR = ".index"
INDEX_FILE = "index.sqlite"
SCHEMA = "3"  # 3: sessions.mode and sessions.auto_runs (for `report`)
PENDING = "pending:"  # meta 'dir' of a stamp vouched for by writers, checked by listing
RACY_NS = 1_000_000_000  # a timestamp this young may still change within the same tick
BATCH = 2000
TREND_SESSIONS = 20

_DDL = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions(
    id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL, mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL, status TEXT, accepted INTEGER NOT NULL,
    suggestions INTEGER NOT NULL, ino INTEGER NOT NULL DEFAULT -1, mode TEXT,
    auto_runs INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_wf ON sessions(workflow_id, id);
CREATE TABLE IF NOT EXISTS decisions(
    session_id TEXT NOT NULL, seq INTEGER NOT NULL, workflow_id TEXT NOT NULL,
    step_id TEXT NOT NULL, suggestion TEXT, kind TEXT NOT NULL, decided_at TEXT NOT NULL,
    PRIMARY KEY(session_id, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS decisions_step
    ON decisions(workflow_id, step_id, suggestion, decided_at, session_id, seq, kind);
CREATE TABLE IF NOT EXISTS bad(
    id TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,
    workflow_id TEXT, reason TEXT NOT NULL, ino INTEGER NOT NULL DEFAULT -1) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS levels(
    workflow_id TEXT NOT NULL, step_id TEXT NOT NULL, level TEXT NOT NULL,
    PRIMARY KEY(workflow_id, step_id)) WITHOUT ROWID;
"""

_NAMES = {"meta", "sessions", "sessions_wf", "decisions", "decisions_step", "bad", "levels"}

# (session_id, seq, workflow_id, step_id, suggestion, kind, decided_at)
DecisionRow = tuple[str, int, str, str, "str | None", str, str]
# (id, workflow_id, status, accepted, suggestions, mode, auto_runs)
SessionRow = tuple[str, str, "str | None", int, int, "str | None", int]


class BadFile:
    """A session file that cannot be read: left out of every metric, named to the user.

    (A plain class: creating a NamedTuple class costs about a millisecond of every `decide`.)
    """

    __slots__ = ("path", "reason", "session_id", "workflow_id")

    def __init__(
        self, session_id: str, path: str, reason: str, workflow_id: str | None = None
    ) -> None:
        self.session_id = session_id
        self.path = path
        self.reason = reason
        self.workflow_id = workflow_id

    def _key(self) -> tuple[str, str, str, str | None]:
        return (self.session_id, self.path, self.reason, self.workflow_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BadFile) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "BadFile({!r}, {!r}, {!r}, {!r})".format(*self._key())


class RefreshResult:
    """What a refresh saw (no dataclass: `decide` must not pay for `inspect`)."""

    def __init__(self, scanned: bool = False) -> None:
        self.scanned = scanned
        self.added: list[str] = []
        self.changed: list[str] = []
        self.removed: list[str] = []
        self.bad: list[BadFile] = []


class IndexUnavailable(Exception):
    """The index cannot be used here (read-only home, no sessions yet): recompute instead."""


# -- reading session files (shared by the index and the full recomputation) -------------


def read_session_bytes(data: bytes, path: Path) -> dict[str, Any]:
    """Parse and validate one session file; StateError (with the reason) when unreadable.

    Both the index and the full recomputation read files through here, so they agree on
    which files count.
    """
    from coachctl.engine.session import Session

    obj = parse_session_bytes(data, path)
    if not isinstance(obj.get("workflow_id"), str):
        raise StateError(f"unreadable session file {path}: no workflow_id")
    try:
        Session.from_dict(obj)
    except StateError as exc:
        raise StateError(f"unreadable session file {path}: {exc.message}") from None
    return obj


def read_session_file(path: Path) -> dict[str, Any]:
    try:
        data = _read_nofollow(path)
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return read_session_bytes(data, path)


def guess_workflow(data: bytes) -> str | None:
    """The workflow an unreadable file claims, when it says so (for failing closed)."""
    import json

    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    wf = obj.get("workflow_id") if isinstance(obj, dict) else None
    return wf if isinstance(wf, str) else None


def session_id_of(name: str) -> str | None:
    """`<id>.json` → id, for the names `Store.list_ids` also accepts; else None."""
    if not name.endswith(SESSION_SUFFIX) or name.startswith("."):
        return None
    sid = name[: -len(SESSION_SUFFIX)]
    return sid if ID_RE.match(sid) else None


def extract(data: Mapping[str, Any]) -> tuple[SessionRow, list[DecisionRow]]:
    """The rows a session contributes: its trend numbers and its counted decisions."""
    sid = str(data["id"])
    wf = str(data["workflow_id"])
    rows: list[DecisionRow] = []
    all_kinds: list[str] = []
    auto_runs = 0
    for seq, d in enumerate(data.get("decisions") or []):
        if not isinstance(d, dict):
            continue
        auto_runs += d.get("decided_by") == "auto"
        kind = metrics.classify(d)
        if kind is None:
            continue
        all_kinds.append(kind)
        step_id = d.get("step_id")
        if not isinstance(step_id, str):
            continue
        suggestion = d.get("suggestion")
        rows.append(
            (
                sid,
                seq,
                wf,
                step_id,
                suggestion if isinstance(suggestion, str) else None,
                kind,
                str(d.get("decided_at", "")),
            )
        )
    c = metrics.counts(all_kinds)
    status, mode = data.get("status"), data.get("mode")
    session_row: SessionRow = (
        sid,
        wf,
        status if isinstance(status, str) else None,
        c["accepted"],
        c["suggestions"],
        mode if isinstance(mode, str) else None,
        auto_runs,
    )
    return session_row, rows


def _stable_mtime(mtime_ns: int, now_ns: int) -> int:
    """A young mtime may change again within its tick: store -1 so it is re-read."""
    return -1 if now_ns - mtime_ns < RACY_NS else mtime_ns


# -- the index ----------------------------------------------------------------------------


class Index:
    """One home's index file; every method is safe to call from concurrent processes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.path = store.sessions_dir / INDEX_DIR / INDEX_FILE
        self.conn: sqlite3.Connection | None = None
        self.refreshed_at = 0.0
        self.reads = 0  # session files read by this object (tests check decide reads none)

    # -- opening ------------------------------------------------------------------------

    @classmethod
    def open(cls, store: Store) -> Index:
        """Open (creating or silently rebuilding) the index; IndexUnavailable if we cannot."""
        if not store.sessions_dir.is_dir():
            raise IndexUnavailable("no sessions yet")
        idx = cls(store)
        try:
            idx._connect()
        except IndexUnavailable:
            raise
        except Exception:
            idx.close()
            idx.discard()
            try:
                idx._connect()
            except Exception as exc:
                idx.close()
                raise IndexUnavailable(f"cannot use {idx.path}: {exc}") from exc
        return idx

    def _connect(self) -> None:
        import sqlite3

        if not os.access(self.store.sessions_dir, os.W_OK):
            raise IndexUnavailable(f"{self.store.sessions_dir} is read-only")
        try:
            self.path.parent.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise IndexUnavailable(f"cannot create {self.path.parent}: {exc}") from exc
        conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
        self.conn = conn
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        row = None
        with contextlib.suppress(sqlite3.OperationalError):
            row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is not None and row[0] == SCHEMA:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if names >= _NAMES:
                return
            # A table went missing: recreate it and let the next refresh scan everything.
            conn.executescript(_DDL)
            conn.execute("DELETE FROM meta WHERE key IN ('complete', 'dir')")
            return
        if row is not None:  # another schema: start again
            conn.close()
            self.conn = None
            self.discard()
            conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
            self.conn = conn
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_DDL)
        conn.execute("INSERT OR REPLACE INTO meta VALUES('schema', ?)", (SCHEMA,))

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None

    def discard(self) -> None:
        """Delete the index files (it is derived: nothing is lost)."""
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")

    @property
    def db(self) -> sqlite3.Connection:
        if self.conn is None:
            raise IndexUnavailable("index is closed")
        return self.conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """The index's own lock plus one write transaction."""
        with self.store.lock("index"):
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @property
    def complete(self) -> bool:
        """Has a full scan of the sessions folder ever been recorded?"""
        return self._meta("complete") == "1"

    # -- refresh ------------------------------------------------------------------------

    def _dir_fingerprint(self) -> tuple[str, int]:
        st = os.stat(self.store.sessions_dir)
        return dir_stamp(st), st.st_mtime_ns

    def refresh(self, *, force_scan: bool = False) -> RefreshResult:
        """Bring the index up to date with the session files; never raises for a bad file."""
        result = RefreshResult()
        fingerprint, dir_mtime = self._dir_fingerprint()
        seen = self._meta("dir") if not force_scan and self.complete else None
        if seen == fingerprint or (
            seen == PENDING + fingerprint and self._verify(result, fingerprint, dir_mtime)
        ):
            self.refreshed_at = time.monotonic()
            return result
        result = RefreshResult(scanned=True)
        now_ns = time.time_ns()
        known = {
            r[0]: (r[1], r[2]) for r in self.db.execute("SELECT id, mtime_ns, size FROM sessions")
        }
        known.update(
            {r[0]: (r[1], r[2]) for r in self.db.execute("SELECT id, mtime_ns, size FROM bad")}
        )
        # The per-file loop is the cost of a scan (100,000 files after every write), so it
        # stays tight: a known id was checked against ID_RE when it entered the index.
        present: dict[str, tuple[int, int]] = {}
        suffix, cut, valid = SESSION_SUFFIX, -len(SESSION_SUFFIX), ID_RE.match
        with os.scandir(self.store.sessions_dir) as entries:
            for entry in entries:
                name = entry.name
                if not name.endswith(suffix) or name[0] == ".":
                    continue
                sid = name[:cut]
                if sid not in known and not valid(sid):
                    continue
                try:
                    st = entry.stat()
                except OSError:
                    continue
                present[sid] = (st.st_mtime_ns, st.st_size)
        stale = [sid for sid, st in present.items() if known.get(sid) != st]
        result.removed = sorted(set(known) - set(present))
        result.added = sorted(sid for sid in stale if sid not in known)
        result.changed = sorted(sid for sid in stale if sid in known)
        clean = True
        if len(stale) > BATCH:  # a build: keep the decisions index's pages in memory (64 MB)
            self.db.execute("PRAGMA cache_size=-65536")
        for start in range(0, len(stale), BATCH):
            clean &= self._ingest(sorted(stale)[start : start + BATCH], now_ns)
        if result.removed:
            with self._write() as db:
                for sid in result.removed:
                    db.execute("DELETE FROM sessions WHERE id=?", (sid,))
                    db.execute("DELETE FROM decisions WHERE session_id=?", (sid,))
                    db.execute("DELETE FROM bad WHERE id=?", (sid,))
        after, _ = self._dir_fingerprint()
        trusted = clean and after == fingerprint and now_ns - dir_mtime >= RACY_NS
        # Not trusted but unmoved (young, or a file changed while read): pending, so writes
        # can still vouch and the next refresh checks by a listing (a stale row has the old
        # inode, a skipped file is unknown: either sends it back here).
        seen = fingerprint if trusted else PENDING + fingerprint if after == fingerprint else ""
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES('complete', '1')")
            db.execute("INSERT OR REPLACE INTO meta VALUES('dir', ?)", (seen,))
        result.bad = self.bad_files()
        self.refreshed_at = time.monotonic()
        return result

    def _verify(self, result: RefreshResult, fingerprint: str, dir_mtime: int) -> bool:
        """The folder moved only by writes that vouched for themselves: check that by a
        listing (no stat per file). False when anything differs: then scan everything."""
        now_ns = time.time_ns()
        known: dict[str, int] = dict(self.db.execute("SELECT id, ino FROM sessions"))
        known.update(self.db.execute("SELECT id, ino FROM bad"))
        unseen = len(known)
        suffix, cut, get = SESSION_SUFFIX, -len(SESSION_SUFFIX), known.get
        with os.scandir(self.store.sessions_dir) as entries:
            for entry in entries:
                name = entry.name
                if not name.endswith(suffix) or name[0] == ".":
                    continue
                ino = get(name[:cut])
                if ino is None:
                    if ID_RE.match(name[:cut]):
                        return False  # a file the index does not know
                    continue  # not a session file name (session_id_of refuses it)
                if ino != entry.inode():
                    return False  # replaced (a rename brings a new inode), or not ours
                unseen -= 1
        if unseen:
            return False  # removed
        racy = [r[0] for r in self.db.execute("SELECT id FROM sessions WHERE mtime_ns < 0")]
        racy += [r[0] for r in self.db.execute("SELECT id FROM bad WHERE mtime_ns < 0")]
        clean = self._ingest(sorted(racy), now_ns) if racy else True
        if self._dir_fingerprint()[0] != fingerprint:
            return False  # moved while we looked
        trusted = clean and now_ns - dir_mtime >= RACY_NS
        with self._write() as db:
            db.execute(
                "UPDATE meta SET value=? WHERE key='dir' AND value=?",
                (fingerprint if trusted else PENDING + fingerprint, PENDING + fingerprint),
            )
        result.changed = sorted(racy)
        result.bad = self.bad_files()
        return True

    def _ingest(self, ids: Sequence[str], now_ns: int) -> bool:
        """Re-read these files and replace their rows; False if any entry stays unsure."""
        loaded: list[tuple[str, os.stat_result, dict[str, Any] | None, BadFile | None]] = []
        data: dict[str, Any] | None
        for sid in ids:
            path = self.store.sessions_dir / f"{sid}{SESSION_SUFFIX}"
            try:
                with open(path, "rb") as fh:
                    st = os.fstat(fh.fileno())  # the stat of exactly what we read
                    raw = fh.read()
            except FileNotFoundError:
                continue  # removed meanwhile: the next scan drops it
            except OSError as exc:
                with contextlib.suppress(OSError):
                    st = os.stat(path)
                    loaded.append(
                        (
                            sid,
                            st,
                            None,
                            BadFile(sid, str(path), f"cannot read {path}: {exc.strerror or exc}"),
                        )
                    )
                continue
            self.reads += 1
            try:
                data = read_session_bytes(raw, path)
                loaded.append((sid, st, data, None))
            except CoachctlError as exc:
                loaded.append(
                    (sid, st, None, BadFile(sid, str(path), exc.message, guess_workflow(raw)))
                )
        clean = True
        puts: list[tuple[dict[str, Any], int, int, int]] = []  # (data, mtime, size, ino)
        with self._write() as db:
            for sid, st, data, bad in loaded:
                try:
                    now = os.stat(self.store.sessions_dir / f"{sid}{SESSION_SUFFIX}")
                except OSError:
                    clean = False
                    continue
                if (now.st_mtime_ns, now.st_size, now.st_ino) != (
                    st.st_mtime_ns,
                    st.st_size,
                    st.st_ino,
                ):
                    clean = False  # changed while we read it: its writer or the next scan wins
                    continue
                mtime = _stable_mtime(st.st_mtime_ns, now_ns)
                clean &= mtime >= 0
                if data is not None:
                    puts.append((data, mtime, st.st_size, st.st_ino))
                    continue
                assert bad is not None
                self._put_bad(db, sid, mtime, st.st_size, st.st_ino, bad)
            # One statement per table for the whole batch (a cold build of 100,000 sessions
            # was 700,000 statements); one session's invalid text falls back to one by one.
            db.execute("SAVEPOINT batch")
            try:
                self._put_many(db, puts)
                db.execute("RELEASE batch")
            except UnicodeEncodeError:
                db.execute("ROLLBACK TO batch")
                db.execute("RELEASE batch")
                for data, mtime, size, ino in puts:
                    try:
                        self._put(db, data, mtime, size, ino)
                    except UnicodeEncodeError:
                        sid = str(data["id"])
                        bad = BadFile(
                            sid,
                            str(self.store.sessions_dir / f"{sid}{SESSION_SUFFIX}"),
                            "cannot index: invalid text",
                            str(data.get("workflow_id")),
                        )
                        self._put_bad(db, sid, mtime, size, ino, bad)
        return clean

    def _put_bad(
        self, db: sqlite3.Connection, sid: str, mtime: int, size: int, ino: int, bad: BadFile
    ) -> None:
        self._drop(db, sid)
        db.execute(
            "INSERT OR REPLACE INTO bad(id, mtime_ns, size, workflow_id, reason, ino)"
            " VALUES(?,?,?,?,?,?)",
            (sid, mtime, size, bad.workflow_id, bad.reason, ino),
        )

    @staticmethod
    def _put_many(
        db: sqlite3.Connection, items: Sequence[tuple[Mapping[str, Any], int, int, int]]
    ) -> None:
        """`_put` for many sessions at once (same rows, far fewer statements)."""
        srows: list[tuple[Any, ...]] = []
        drows: list[DecisionRow] = []
        for data, mtime, size, ino in items:
            srow, rows = extract(data)
            srows.append((*srow[:2], mtime, size, *srow[2:5], ino, *srow[5:]))
            drows.extend(rows)
        ids = [(r[0],) for r in srows]
        db.executemany("DELETE FROM sessions WHERE id=?", ids)
        db.executemany("DELETE FROM decisions WHERE session_id=?", ids)
        db.executemany("DELETE FROM bad WHERE id=?", ids)
        db.executemany(
            "INSERT INTO sessions(id, workflow_id, mtime_ns, size, status, accepted,"
            " suggestions, ino, mode, auto_runs) VALUES(?,?,?,?,?,?,?,?,?,?)",
            srows,
        )
        db.executemany("INSERT INTO decisions VALUES(?,?,?,?,?,?,?)", drows)

    @staticmethod
    def _drop(db: sqlite3.Connection, sid: str) -> None:
        db.execute("DELETE FROM sessions WHERE id=?", (sid,))
        db.execute("DELETE FROM decisions WHERE session_id=?", (sid,))
        db.execute("DELETE FROM bad WHERE id=?", (sid,))

    def _put(
        self, db: sqlite3.Connection, data: Mapping[str, Any], mtime: int, size: int, ino: int
    ) -> None:
        srow, drows = extract(data)
        db.execute("SAVEPOINT put")
        try:
            self._drop(db, srow[0])
            db.execute(
                "INSERT INTO sessions(id, workflow_id, mtime_ns, size, status, accepted,"
                " suggestions, ino, mode, auto_runs) VALUES(?,?,?,?,?,?,?,?,?,?)",
                (*srow[:2], mtime, size, *srow[2:5], ino, *srow[5:]),
            )
            db.executemany("INSERT INTO decisions VALUES(?,?,?,?,?,?,?)", drows)
        except BaseException:
            db.execute("ROLLBACK TO put")
            db.execute("RELEASE put")
            raise
        db.execute("RELEASE put")

    # -- the incremental path -----------------------------------------------------------

    def update(
        self,
        data: Mapping[str, Any],
        rules: metrics.Rules,
        *,
        dir_before: str | None = None,
        written: os.stat_result | None = None,
    ) -> list[dict[str, Any]]:
        """One session was just written: replace its rows (O(its decisions)), then compare
        the levels of its steps with the last known ones; level_changed events for changes.

        `written` is the stat of the file as written (else the file is stat'ed now). With
        `dir_before`, the folder's stamp taken just before the write: if the index had seen
        exactly that stamp, this write vouches for the folder's new stamp as *pending* (the
        next refresh checks it by a listing, see `_verify`), so the index stays in sync
        without a scan of every file.
        """
        sid = str(data["id"])
        path = self.store.sessions_dir / f"{sid}{SESSION_SUFFIX}"
        st: os.stat_result | None = written
        if st is None:
            with contextlib.suppress(OSError):
                st = os.stat(path)
        if st is None:
            mtime, size, ino = -1, -1, -1
        else:
            mtime, size = _stable_mtime(st.st_mtime_ns, time.time_ns()), st.st_size
            ino = st.st_ino if written is not None else -1
        with self._write() as db:
            self._put(db, data, mtime, size, ino)
            if self._meta("complete") != "1":
                return []  # levels from a partial index would be wrong: wait for a full scan
            if dir_before is not None:
                seen = self._meta("dir")
                if seen in (dir_before, PENDING + dir_before):
                    after, _ = self._dir_fingerprint()
                    db.execute("UPDATE meta SET value=? WHERE key='dir'", (PENDING + after,))
            return self._levels(db, data, rules)

    def _levels(
        self, db: sqlite3.Connection, data: Mapping[str, Any], rules: metrics.Rules
    ) -> list[dict[str, Any]]:
        wf = str(data["workflow_id"])
        now: dict[str, str] = {}
        for step in data.get("steps") or []:
            step_id = step.get("id")
            if not isinstance(step_id, str) or not step_id:
                continue
            try:
                now[step_id] = self.step_level(step, wf, rules)
            except ValueError:
                continue  # an unknown max_level in a hand-edited file: no level to track
        if not now:
            return []
        now[""] = min(now.values(), key=metrics.LEVELS.index)
        known = dict(db.execute("SELECT step_id, level FROM levels WHERE workflow_id=?", (wf,)))
        events: list[dict[str, Any]] = []
        ts = _utcnow()
        for step_id, level in now.items():
            before = known.get(step_id)
            if before == level:
                continue
            db.execute("INSERT OR REPLACE INTO levels VALUES(?,?,?)", (wf, step_id, level))
            if before is not None:
                events.append(
                    {
                        "ts": ts,
                        "event": "level_changed",
                        "session_id": str(data["id"]),
                        "workflow_id": wf,
                        "step_id": step_id or None,
                        "from": before,
                        "to": level,
                    }
                )
        # The workflow's own change reads best after its steps'.
        events.sort(key=lambda e: e["step_id"] is None)
        return events

    def step_level(self, step: Mapping[str, Any], workflow_id: str, rules: metrics.Rules) -> str:
        """A snapshot step's level on the suggestion it carries (one indexed query)."""
        suggestion = step.get("suggestion")
        max_level = step.get("max_level")
        if not suggestion:
            return metrics.level_of(False, False, max_level)
        kinds = self.kinds(workflow_id, str(step["id"]), str(suggestion), rules.window)
        ready = metrics.is_ready(metrics.counts(kinds), rules)
        return metrics.level_of(True, ready, max_level)

    # -- queries ------------------------------------------------------------------------

    def kinds(self, workflow_id: str, step_id: str, suggestion: str, window: int) -> list[str]:
        """The last `window` kinds on this exact suggestion, oldest first."""
        rows = self.db.execute(
            "SELECT kind FROM decisions WHERE workflow_id=? AND step_id=? AND suggestion=?"
            " ORDER BY decided_at DESC, session_id DESC, seq DESC LIMIT ?",
            (workflow_id, step_id, suggestion, window),
        ).fetchall()
        return [r[0] for r in reversed(rows)]

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
                "SELECT id, workflow_id, status, accepted, suggestions, mode, auto_runs"
                " FROM sessions"
            )
        }

    def session_series(
        self, workflow_id: str, since_id: str = ""
    ) -> list[tuple[str, str | None, int, int, int]]:
        """(id, mode, accepted, suggestions, auto_runs) of a workflow's sessions, oldest
        first, from `since_id` on (ids sort by start time): one indexed range query."""
        return [
            (r[0], r[1], r[2], r[3], r[4])
            for r in self.db.execute(
                "SELECT id, mode, accepted, suggestions, auto_runs FROM sessions"
                " WHERE workflow_id=? AND id>=? ORDER BY id",
                (workflow_id, since_id),
            )
        ]

    def decision_rows(self) -> dict[str, list[DecisionRow]]:
        out: dict[str, list[DecisionRow]] = {}
        for r in self.db.execute("SELECT * FROM decisions ORDER BY session_id, seq"):
            out.setdefault(r[0], []).append((r[0], r[1], r[2], r[3], r[4], r[5], r[6]))
        return out

    def rebuild(self) -> RefreshResult:
        """Start from nothing: drop the file and scan every session file again."""
        with self._write() as db:
            for table in ("sessions", "decisions", "bad"):
                db.execute(f"DELETE FROM {table}")
            db.execute("DELETE FROM meta WHERE key IN ('complete', 'dir')")
        return self.refresh(force_scan=True)


def _utcnow() -> str:
    from coachctl.engine.session import utcnow

    return utcnow()
