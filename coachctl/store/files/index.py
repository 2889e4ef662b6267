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
import errno
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coachctl.errors import CoachctlError
from coachctl.store.base import (
    BadFile,
    Derive,
    Derived,
    LevelChange,
    SessionSummary,
    WindowKey,
)
from coachctl.store.files.fs import NOFOLLOW, dir_stamp, drop_link
from coachctl.store.files.layout import INDEX_DIR, INDEX_FILE, LOCK_STORE, SESSION_SUFFIX
from coachctl.store.files.records import (
    DecisionRow,
    SessionRow,
    guess_workflow,
    read_session_bytes,
    rows_of,
)
from coachctl.store.ids import ID_RE

if TYPE_CHECKING:
    import sqlite3

    from coachctl.store.files.store import FileStore

# In its own folder (INDEX_DIR): SQLite's -wal/-shm files come and go, and must not move the
# mtime of sessions/ that tells a warm refresh nothing changed.
SCHEMA = "5"  # 4: sessions.summary (list_sessions without reading files); 5: its scope
PENDING = "pending:"  # meta 'dir' of a stamp vouched for by writers, checked by listing
RACY_NS = 1_000_000_000  # a timestamp this young may still change within the same tick
BATCH = 2000
TREND_SESSIONS = 20

_TABLES = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions(
    id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL, mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL, status TEXT, accepted INTEGER NOT NULL,
    suggestions INTEGER NOT NULL, ino INTEGER NOT NULL DEFAULT -1,
    folds INTEGER NOT NULL DEFAULT 0, summary TEXT NOT NULL DEFAULT '') WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS decisions(
    session_id TEXT NOT NULL, pos INTEGER NOT NULL, seq INTEGER NOT NULL,
    workflow_id TEXT NOT NULL, step_id TEXT NOT NULL, suggestion TEXT, scope TEXT NOT NULL,
    kind TEXT NOT NULL, decided_at TEXT NOT NULL,
    PRIMARY KEY(session_id, pos)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bad(
    id TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,
    workflow_id TEXT, reason TEXT NOT NULL, ino INTEGER NOT NULL DEFAULT -1) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS levels(
    workflow_id TEXT NOT NULL, scope TEXT NOT NULL, step_id TEXT NOT NULL, level TEXT NOT NULL,
    PRIMARY KEY(workflow_id, scope, step_id)) WITHOUT ROWID;
"""
# The secondary indexes, one statement each: a cold build drops them and creates them after
# its load (sorting once is far cheaper than keeping them up to date row by row).
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS sessions_wf ON sessions(workflow_id, id)",
    "CREATE INDEX IF NOT EXISTS decisions_step"
    " ON decisions(workflow_id, step_id, suggestion, scope, seq, session_id, pos, kind)",
    "CREATE INDEX IF NOT EXISTS decisions_seq ON decisions(seq)",
)
_DDL = _TABLES + "".join(f"{stmt};\n" for stmt in _INDEXES)

_NAMES = {
    "meta",
    "sessions",
    "sessions_wf",
    "decisions",
    "decisions_step",
    "decisions_seq",
    "bad",
    "levels",
}


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


def _unreadable(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return f"unreadable session file {path}: a symlink (refused)"
    return f"cannot read {path}: {exc.strerror or exc}"


def _nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | NOFOLLOW)


def _stable_mtime(mtime_ns: int, now_ns: int) -> int:
    """A young mtime may change again within its tick: store -1 so it is re-read."""
    return -1 if now_ns - mtime_ns < RACY_NS else mtime_ns


# -- the index ----------------------------------------------------------------------------


class Index:
    """One home's index file; every method is safe to call from concurrent processes."""

    def __init__(self, store: FileStore) -> None:
        self.store = store
        self.derive: Derive = store.derive
        self.path = store.sessions_dir / INDEX_DIR / INDEX_FILE
        self.conn: sqlite3.Connection | None = None
        self.refreshed_at = 0.0
        self.reads = 0  # session files read by this object (tests check decide reads none)
        self.workers = 0  # processes the last cold build forked (tests: none for small ones)

    # -- opening ------------------------------------------------------------------------

    @classmethod
    def open(cls, store: FileStore) -> Index:
        """Open (creating or silently rebuilding) the index; IndexUnavailable if we cannot."""
        if not store.sessions_dir.is_dir():
            raise IndexUnavailable("no sessions yet")
        import sqlite3

        idx = cls(store)
        try:
            idx._connect()
        except IndexUnavailable:
            raise
        except sqlite3.OperationalError as exc:
            # Busy (another process checkpoints, a doctor rebuilds): not damage. Deleting
            # the files now would pull them from under every other process.
            idx.close()
            raise IndexUnavailable(f"cannot use {idx.path} now: {exc}") from exc
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
            self.store.make_dir(self.path.parent)
        except (OSError, CoachctlError) as exc:
            raise IndexUnavailable(f"cannot create {self.path.parent}: {exc}") from exc
        for suffix in ("", "-wal", "-shm", "-journal"):  # derived: a link is replaced
            drop_link(Path(f"{self.path}{suffix}"))
        # Created owner-only before SQLite opens it (it would use the umask: 0644); its -wal
        # and -shm files take the database file's mode. Only ever O_EXCL: closing a
        # descriptor of a database this process has open would drop SQLite's POSIX locks.
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o600))
        except FileExistsError:
            pass
        except OSError as exc:
            raise IndexUnavailable(f"cannot create {self.path}: {exc}") from exc
        with contextlib.suppress(OSError):
            if os.lstat(self.path).st_mode & 0o077:
                os.chmod(self.path, 0o600)
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
        with self.store.lock(LOCK_STORE, "index"):
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
        present: dict[str, tuple[int, int] | None] = {}
        suffix, cut, valid = SESSION_SUFFIX, -len(SESSION_SUFFIX), ID_RE.match
        cold = not known  # every file is new: its stat is taken when it is read, not twice
        with os.scandir(self.store.sessions_dir) as entries:
            for entry in entries:
                name = entry.name
                if not name.endswith(suffix) or name[0] == ".":
                    continue
                sid = name[:cut]
                if sid not in known and not valid(sid):
                    continue
                if cold:
                    present[sid] = None
                    continue
                try:
                    st = entry.stat()
                except OSError:
                    continue
                present[sid] = (st.st_mtime_ns, st.st_size)
        stale = sorted(sid for sid, st in present.items() if cold or known.get(sid) != st)
        result.removed = sorted(set(known) - set(present))
        result.added = sorted(sid for sid in stale if sid not in known)
        result.changed = sorted(sid for sid in stale if sid in known)
        if len(stale) > BATCH:  # a build: keep the decisions index's pages in memory (64 MB)
            self.db.execute("PRAGMA cache_size=-65536")
        built = None
        if cold and len(stale) >= BATCH:
            from coachctl.store.files.coldbuild import COLD_MIN

            built = self._cold(stale, now_ns) if len(stale) >= COLD_MIN else None
        clean = True if built is None else built
        for start in range(0, len(stale) if built is None else 0, BATCH):
            clean &= self._ingest(stale[start : start + BATCH], now_ns)
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

    def _cold(self, ids: Sequence[str], now_ns: int) -> bool | None:
        """Fill the empty tables with the rows of all these files in one transaction
        (see coldbuild); False if any entry stays unsure, None when the tables were not
        empty after all or a worker failed (then the one-by-one path does it)."""
        from coachctl.store.files import coldbuild

        if self._rows_exist():
            return None
        folder = str(self.store.sessions_dir)
        self.workers = coldbuild.worker_count(len(ids))
        # Forked before any lock is taken: a worker holds none of the parent's locks.
        try:
            workers = coldbuild.Workers(folder, ids, self.derive, now_ns, self.workers)
        except OSError:  # no fork now (EAGAIN, ENOMEM): the same build in this process
            self.workers = 0
            workers = coldbuild.Workers(folder, ids, self.derive, now_ns, 0)
        try:
            chunks = (
                workers if self.workers else coldbuild.in_process(folder, ids, self.derive, now_ns)
            )
            # Derived data: a crash mid-build loses nothing that a rebuild does not restore.
            self.db.execute("PRAGMA synchronous=OFF")
            with self._write() as db:
                if self._rows_exist():
                    return None  # another process filled them meanwhile
                for stmt in _INDEXES:
                    db.execute("DROP INDEX IF EXISTS " + stmt.split()[5])
                clean, read = True, 0
                for srows, drows, bads, reads, unsure in chunks:
                    read += reads
                    clean &= not unsure
                    self._insert_chunk(db, srows, drows, bads)
                for stmt in _INDEXES:
                    db.execute(stmt)
            self.reads += read
            return clean
        except coldbuild.WorkerFailed:
            return None
        finally:
            workers.close()
            with contextlib.suppress(Exception):
                self.db.execute("PRAGMA synchronous=NORMAL")

    def _rows_exist(self) -> bool:
        return any(
            self.db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()
            for table in ("sessions", "decisions", "bad")
        )

    @staticmethod
    def _insert_chunk(
        db: sqlite3.Connection,
        srows: Sequence[tuple[Any, ...]],
        drows: Sequence[tuple[Any, ...]],
        bads: Sequence[tuple[Any, ...]],
    ) -> None:
        """Plain inserts of a cold build's batch; one session's invalid text (a lone
        surrogate cannot be stored) makes that session a bad file, as in `_ingest`."""
        sql_s = (
            "INSERT INTO sessions(id, workflow_id, mtime_ns, size, status, accepted,"
            " suggestions, ino, folds, summary) VALUES(?,?,?,?,?,?,?,?,?,?)"
        )
        sql_d = "INSERT INTO decisions VALUES(?,?,?,?,?,?,?,?,?)"
        sql_b = "INSERT INTO bad(id, mtime_ns, size, workflow_id, reason, ino) VALUES(?,?,?,?,?,?)"
        db.execute("SAVEPOINT batch")
        try:
            db.executemany(sql_s, srows)
            db.executemany(sql_d, drows)
            db.executemany(sql_b, bads)
            db.execute("RELEASE batch")
            return
        except UnicodeEncodeError:
            db.execute("ROLLBACK TO batch")
            db.execute("RELEASE batch")
        by_session: dict[str, list[tuple[Any, ...]]] = {}
        for row in drows:
            by_session.setdefault(row[0], []).append(row)
        for srow in srows:
            db.execute("SAVEPOINT put")
            try:
                db.execute(sql_s, srow)
                db.executemany(sql_d, by_session.get(srow[0], []))
            except UnicodeEncodeError:
                db.execute("ROLLBACK TO put")
                bads = [
                    *bads,
                    (srow[0], srow[2], srow[3], srow[1], "cannot index: invalid text", srow[7]),
                ]
            db.execute("RELEASE put")
        for bad in bads:
            try:
                db.execute(sql_b, bad)
            except UnicodeEncodeError:
                db.execute(sql_b, (*bad[:3], None, *bad[4:]))

    def _ingest(self, ids: Sequence[str], now_ns: int) -> bool:
        """Re-read these files and replace their rows; False if any entry stays unsure."""
        loaded: list[tuple[str, os.stat_result, tuple[Any, Derived] | None, BadFile | None]] = []
        for sid in ids:
            path = self.store.sessions_dir / f"{sid}{SESSION_SUFFIX}"
            try:
                with open(path, "rb", opener=_nofollow) as fh:
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
                            BadFile(sid, str(path), _unreadable(path, exc)),
                        )
                    )
                continue
            self.reads += 1
            try:
                data, derived = read_session_bytes(raw, path, self.derive)
                loaded.append((sid, st, (data, derived), None))
            except CoachctlError as exc:
                loaded.append(
                    (sid, st, None, BadFile(sid, str(path), exc.message, guess_workflow(raw)))
                )
        clean = True
        puts: list[tuple[Any, Derived, int, int, int]] = []  # (data, rows, mtime, size, ino)
        with self._write() as db:
            for sid, st, parsed, bad in loaded:
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
                if parsed is not None:
                    puts.append((parsed[0], parsed[1], mtime, st.st_size, st.st_ino))
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
                for sdata, derived, mtime, size, ino in puts:
                    try:
                        self._put(db, sdata, derived, mtime, size, ino)
                    except UnicodeEncodeError:
                        sid = str(sdata["id"])
                        bad = BadFile(
                            sid,
                            str(self.store.sessions_dir / f"{sid}{SESSION_SUFFIX}"),
                            "cannot index: invalid text",
                            str(sdata.get("workflow_id")),
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
        db: sqlite3.Connection, items: Sequence[tuple[Mapping[str, Any], Derived, int, int, int]]
    ) -> None:
        """`_put` for many sessions at once (same rows, far fewer statements)."""
        srows: list[tuple[Any, ...]] = []
        drows: list[DecisionRow] = []
        for data, derived, mtime, size, ino in items:
            srow, rows = rows_of(data, derived)
            srows.append(
                (srow[0], srow[1], mtime, size, srow[2], srow[3], srow[4], ino, srow[5], srow[6])
            )
            drows.extend(rows)
        ids = [(r[0],) for r in srows]
        db.executemany("DELETE FROM sessions WHERE id=?", ids)
        db.executemany("DELETE FROM decisions WHERE session_id=?", ids)
        db.executemany("DELETE FROM bad WHERE id=?", ids)
        db.executemany(
            "INSERT INTO sessions(id, workflow_id, mtime_ns, size, status, accepted,"
            " suggestions, ino, folds, summary) VALUES(?,?,?,?,?,?,?,?,?,?)",
            srows,
        )
        db.executemany("INSERT INTO decisions VALUES(?,?,?,?,?,?,?,?,?)", drows)

    @staticmethod
    def _drop(db: sqlite3.Connection, sid: str) -> None:
        db.execute("DELETE FROM sessions WHERE id=?", (sid,))
        db.execute("DELETE FROM decisions WHERE session_id=?", (sid,))
        db.execute("DELETE FROM bad WHERE id=?", (sid,))

    def _put(
        self,
        db: sqlite3.Connection,
        data: Mapping[str, Any],
        derived: Derived,
        mtime: int,
        size: int,
        ino: int,
    ) -> None:
        srow, drows = rows_of(data, derived)
        db.execute("SAVEPOINT put")
        try:
            self._drop(db, srow[0])
            db.execute(
                "INSERT INTO sessions(id, workflow_id, mtime_ns, size, status, accepted,"
                " suggestions, ino, folds, summary) VALUES(?,?,?,?,?,?,?,?,?,?)",
                (srow[0], srow[1], mtime, size, srow[2], srow[3], srow[4], ino, srow[5], srow[6]),
            )
            db.executemany("INSERT INTO decisions VALUES(?,?,?,?,?,?,?,?,?)", drows)
        except BaseException:
            db.execute("ROLLBACK TO put")
            db.execute("RELEASE put")
            raise
        db.execute("RELEASE put")

    # -- the incremental path -----------------------------------------------------------

    def update(
        self,
        data: Mapping[str, Any],
        derived: Derived,
        levels: Sequence[LevelChange] = (),
        *,
        dir_before: str | None = None,
        written: os.stat_result | None = None,
    ) -> None:
        """One session was just written: replace its rows (O(its decisions)) and record the
        level changes the engine computed for it.

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
            self._put(db, data, derived, mtime, size, ino)
            if self._meta("complete") != "1":
                return  # levels from a partial index would be wrong: wait for a full scan
            if dir_before is not None:
                seen = self._meta("dir")
                if seen in (dir_before, PENDING + dir_before):
                    after, _ = self._dir_fingerprint()
                    db.execute("UPDATE meta SET value=? WHERE key='dir'", (PENDING + after,))
            db.executemany(
                "INSERT OR REPLACE INTO levels VALUES(?,?,?,?)",
                [(c["workflow_id"], c["scope"], c["step_id"], c["level"]) for c in levels],
            )

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

    # -- queries ------------------------------------------------------------------------

    def window_rows(
        self, key: WindowKey, exclude: str | None = None
    ) -> list[tuple[int, str, int, str]]:
        """The last `window` (seq, session_id, pos, kind) on exactly this suggestion and
        scope, newest first, in order of record (`seq`), leaving out session `exclude`."""
        workflow_id, step_id, suggestion, scope, window = key
        return self.db.execute(
            "SELECT seq, session_id, pos, kind FROM decisions"
            " WHERE workflow_id=? AND step_id=? AND suggestion=? AND scope=? AND session_id!=?"
            " ORDER BY seq DESC, session_id DESC, pos DESC LIMIT ?",
            (workflow_id, step_id, suggestion, scope, exclude or "", window),
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
        import json

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

    def rebuild(self) -> RefreshResult:
        """Start from nothing: drop the file and scan every session file again."""
        with self._write() as db:
            for table in ("sessions", "decisions", "bad"):
                db.execute(f"DELETE FROM {table}")
            db.execute("DELETE FROM meta WHERE key IN ('complete', 'dir')")
        return self.refresh(force_scan=True)
