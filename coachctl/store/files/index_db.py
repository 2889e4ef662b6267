"""The index's SQLite file: its schema, opening it safely, and its one write transaction.

Why SQLite (stdlib, WAL): one indexed range query answers "the last `window` decisions on this
step's exact suggestion", a decision updates a few rows instead of rewriting a big JSON blob,
and readers never block the writer. The session files stay the only truth: the index can be
deleted at any time and is rebuilt from them silently. Why its own module: how the file is
created (owner-only, never through a link), versioned and locked is separate from what is
kept in it (index_load.py), read from it (index_query.py) and how it follows the files
(index.py).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from coachctl.errors import CoachctlError
from coachctl.store.base import Derive, FastDerive
from coachctl.store.files.fs import NOFOLLOW, drop_link
from coachctl.store.files.layout import INDEX_DIR, INDEX_FILE, LOCK_STORE

if TYPE_CHECKING:
    import sqlite3

    from coachctl.store.files.store import FileStore

# In its own folder (INDEX_DIR): SQLite's -wal/-shm files come and go, and must not move the
# mtime of sessions/ that tells a warm refresh nothing changed.
SCHEMA = "6"  # 4: sessions.summary (list_sessions w/o reading files); 5: scope; 6: values

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
INDEXES = (
    "CREATE INDEX IF NOT EXISTS sessions_wf ON sessions(workflow_id, id)",
    "CREATE INDEX IF NOT EXISTS decisions_step"
    " ON decisions(workflow_id, step_id, suggestion, scope, seq, session_id, pos, kind)",
    "CREATE INDEX IF NOT EXISTS decisions_seq ON decisions(seq)",
)
_DDL = _TABLES + "".join(f"{stmt};\n" for stmt in INDEXES)

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


class IndexUnavailable(Exception):
    """The index cannot be used here (read-only home, no sessions yet): recompute instead."""


class IndexFile:
    """The connection to one home's index file (the base of `Index`)."""

    def __init__(self, store: FileStore) -> None:
        self.store = store
        self.derive: Derive = store.derive
        self._load_fast = store.fast_derive
        self.path = store.sessions_dir / INDEX_DIR / INDEX_FILE
        self.conn: sqlite3.Connection | None = None
        self.refreshed_at = 0.0
        self.reads = 0  # session files read by this object (tests check decide reads none)
        self.workers = 0  # processes the last cold build forked (tests: none for small ones)
        self.fallbacks = 0  # forked builds that failed and were redone one by one (tests)

    def fast_derive(self) -> FastDerive | None:
        """The engine's one-pass derive for a cold build, if it gave one (loaded now)."""
        return None if self._load_fast is None else self._load_fast()

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
