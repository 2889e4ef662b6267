"""Putting session files into the index: re-reading changed ones, and a cold build's load.

Why its own module: this is where a file's bytes become rows, with the checks that keep the
index honest about what it read (the stat of exactly what was read, a file changed while
read, a young "racy" mtime stored as -1 so it is read again, invalid text made a bad file).
The worker side of a cold build is coldbuild.py; this is the parent's side.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coachctl.errors import CoachctlError
from coachctl.store.base import BadFile, Derived
from coachctl.store.files.fs import open_read
from coachctl.store.files.index_db import INDEXES, IndexFile
from coachctl.store.files.layout import SESSION_SUFFIX
from coachctl.store.files.records import (
    DecisionRow,
    guess_workflow,
    read_session_bytes,
    rows_of,
)

if TYPE_CHECKING:
    import sqlite3

RACY_NS = 1_000_000_000  # a timestamp this young may still change within the same tick


def _unreadable(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return f"unreadable session file {path}: a symlink (refused)"
    return f"cannot read {path}: {exc.strerror or exc}"


def stable_mtime(mtime_ns: int, now_ns: int) -> int:
    """A young mtime may change again within its tick: store -1 so it is re-read."""
    return -1 if now_ns - mtime_ns < RACY_NS else mtime_ns


class IndexLoad(IndexFile):
    """Writing session rows (a mixin of `Index`; `refresh` and `update` decide when)."""

    def _cold(self, ids: Sequence[str], now_ns: int) -> bool | None:
        """Fill the empty tables with the rows of all these files in one transaction
        (see coldbuild); False if any entry stays unsure, None when the tables were not
        empty after all or a worker failed (then the one-by-one path does it)."""
        from coachctl.store.files import coldbuild

        if self._rows_exist():
            return None
        self.workers = coldbuild.worker_count(len(ids))
        if self.workers:
            try:
                return self._cold_forked(ids, now_ns)
            except coldbuild.WorkerFailed:
                self.fallbacks += 1
                return None
            except OSError:  # no fork or no scratch file now (EAGAIN, ENOMEM, no flock)
                pass
        self.workers = 0
        return self._cold_here(ids, now_ns)

    def _cold_here(self, ids: Sequence[str], now_ns: int) -> bool | None:
        """The build in this process (one CPU, or no fork): batches inserted as parsed."""
        from coachctl.store.files import coldbuild

        folder = str(self.store.sessions_dir)
        with self._bulk() as db:
            if db is None:
                return None
            clean, read = True, 0
            for srows, drows, bads, reads, unsure in coldbuild.in_process(
                folder, ids, self.derive, self.fast_derive(), now_ns
            ):
                read += reads
                clean &= not unsure
                coldbuild.insert_rows(db, srows, drows, bads)
        self.reads += read
        return clean

    def _cold_forked(self, ids: Sequence[str], now_ns: int) -> bool | None:
        """Workers parse their shares into scratch databases, forked before any lock is
        taken (so none holds one); this process then copies their tables in one
        transaction, checking each copied exactly the rows its worker reported."""
        from coachctl.store.files import coldbuild

        folder = str(self.store.sessions_dir)
        scratch = coldbuild.Scratch(str(self.path.parent), self.workers)
        attached: list[str] = []
        try:
            workers = coldbuild.Workers(
                folder, ids, self.derive, self.fast_derive(), now_ns, scratch.paths
            )
            try:
                done = workers.wait()
            finally:
                workers.close()
            scratch.check()
            for k, path in enumerate(scratch.paths):
                self.db.execute(f"ATTACH DATABASE ? AS cold{k}", (path,))
                attached.append(f"cold{k}")
            with self._bulk() as db:
                if db is None:
                    return None
                tables = ("sessions", "decisions", "bad")
                for name, report in zip(attached, done, strict=True):
                    for table, want in zip(tables, report[2:], strict=True):
                        cur = db.execute(f"INSERT INTO main.{table} SELECT * FROM {name}.{table}")
                        if cur.rowcount != want:
                            raise coldbuild.WorkerFailed(f"{name}.{table}: not what was written")
        finally:
            for name in attached:
                with contextlib.suppress(Exception):
                    self.db.execute(f"DETACH DATABASE {name}")
            scratch.close()
        self.reads += sum(report[0] for report in done)
        return not any(report[1] for report in done)

    @contextlib.contextmanager
    def _bulk(self) -> Iterator[sqlite3.Connection | None]:
        """The write transaction of a cold build: None when the tables were filled
        meanwhile; else the secondary indexes are dropped for the load and created after
        it (sorting once is far cheaper than keeping them up to date row by row)."""
        # Derived data: a crash mid-build loses nothing that a rebuild does not restore.
        self.db.execute("PRAGMA synchronous=OFF")
        # The index sort is the serial end of a forked build: the workers' CPUs are idle by
        # then, and SQLite's sorter can use them (10-20% of it at 1,000,000 decisions).
        self.db.execute(f"PRAGMA threads={self.workers}")
        try:
            with self._write() as db:
                if self._rows_exist():
                    yield None  # another process filled them meanwhile
                    return
                for stmt in INDEXES:
                    db.execute("DROP INDEX IF EXISTS " + stmt.split()[5])
                yield db
                for stmt in INDEXES:
                    db.execute(stmt)
        finally:
            with contextlib.suppress(Exception):
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.execute("PRAGMA threads=0")

    def _rows_exist(self) -> bool:
        return any(
            self.db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()
            for table in ("sessions", "decisions", "bad")
        )

    def _ingest(self, ids: Sequence[str], now_ns: int) -> bool:
        """Re-read these files and replace their rows; False if any entry stays unsure."""
        loaded: list[tuple[str, os.stat_result, tuple[Any, Derived] | None, BadFile | None]] = []
        for sid in ids:
            path = self.store.sessions_dir / f"{sid}{SESSION_SUFFIX}"
            try:
                with open(path, "rb", opener=open_read) as fh:
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
                mtime = stable_mtime(st.st_mtime_ns, now_ns)
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
