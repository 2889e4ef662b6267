"""The derived index: the few fields metrics need, so `stats` never re-reads 100,000 files.

The index is derived: the session files stay the only truth, and it can be deleted at any
time (index_db.py has the file, index_load.py turns files into rows, index_query.py reads).
This module decides when rows change: opening (or rebuilding), refresh, and `update`.

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
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from coachctl.store.base import BadFile, Derived, LevelChange
from coachctl.store.files.fs import dir_stamp
from coachctl.store.files.index_db import IndexUnavailable
from coachctl.store.files.index_load import RACY_NS, IndexLoad, stable_mtime
from coachctl.store.files.index_query import IndexQueries
from coachctl.store.files.layout import SESSION_SUFFIX
from coachctl.store.ids import ID_RE

if TYPE_CHECKING:
    from coachctl.store.files.store import FileStore

PENDING = "pending:"  # meta 'dir' of a stamp vouched for by writers, checked by listing
BATCH = 2000


class RefreshResult:
    """What a refresh saw (no dataclass: `decide` must not pay for `inspect`)."""

    def __init__(self, scanned: bool = False) -> None:
        self.scanned = scanned
        self.added: list[str] = []
        self.changed: list[str] = []
        self.removed: list[str] = []
        self.bad: list[BadFile] = []


class Index(IndexQueries, IndexLoad):
    """One home's index file; every method is safe to call from concurrent processes.

    The file and its schema are index_db.py's, writing rows index_load.py's, the queries
    index_query.py's; here is when to write: open (or rebuild), refresh, update.
    """

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
        built = None
        if cold and len(stale) >= BATCH:
            from coachctl.store.files.coldbuild import COLD_MIN

            built = self._cold(stale, now_ns) if len(stale) >= COLD_MIN else None
        if built is None and len(stale) > BATCH:
            # Many rows into indexed tables: keep the decisions index's pages in memory
            # (64 MB). Not for a cold build: its index sort ran 15% faster with the default.
            self.db.execute("PRAGMA cache_size=-65536")
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
            mtime, size = stable_mtime(st.st_mtime_ns, time.time_ns()), st.st_size
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

    def rebuild(self) -> RefreshResult:
        """Start from nothing: drop the file and scan every session file again."""
        with self._write() as db:
            for table in ("sessions", "decisions", "bad"):
                db.execute(f"DELETE FROM {table}")
            db.execute("DELETE FROM meta WHERE key IN ('complete', 'dir')")
        return self.refresh(force_scan=True)
