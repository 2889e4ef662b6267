"""A cold index build: many session files read, parsed and turned into rows at once.

Why its own path: a CI job on a fresh clone has no index, and rebuilding 100,000 sessions
one statement at a time took 3.8x a plain parse of every file. Here forked workers (one per
usable CPU) each read, parse and derive a contiguous share of the files (the engine's `fast_derive`
for the plain shape, the full path for anything else) and insert the rows into their own
scratch SQLite file; the parent then copies each scratch file's tables into the empty index
tables with `INSERT ... SELECT` (C speed: no rows cross a pipe, no Python inserts in the
parent) and creates the secondary indexes after the load. The rows are exactly the ones the
one-by-one path writes (a test compares them).

Workers are only forked for a big build (COLD_MIN stale files, more than one CPU): `decide`
and small homes never pay for a fork. They are forked before the parent takes any lock, so
none of them holds one; they close every inherited descriptor but their pipe; they exit with
`os._exit` (no atexit, no flush of the parent's buffers); the parent reaps every one of them
in a `finally`, and a worker whose parent died stops at its next batch. Scratch files live in
the index's folder, owner-only, created by the parent with O_EXCL and never through a link;
the parent holds an flock on each while its build lasts, and every build first sweeps the
ones nobody holds (a killed build's). The parent checks that each file is still the one it
created and that it copied exactly the rows its worker reported; anything else, or a worker
that died, sends the build back to the one-by-one path.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import marshal
import os
import selectors
import signal
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from coachctl.errors import CoachctlError
from coachctl.store.base import Derive, FastDerive
from coachctl.store.files.fs import NOFOLLOW, open_read
from coachctl.store.files.layout import SESSION_SUFFIX
from coachctl.store.files.records import guess_workflow, read_session_bytes, rows_of, session_row

if TYPE_CHECKING:
    import sqlite3

COLD_MIN = 2000  # stale files below which a build stays in one process, one by one
CHUNK = 1000  # sessions per message from a worker (and per insert batch)
RACY_NS = 1_000_000_000  # a timestamp this young may still change within the same tick
MAX_WORKERS = 8
SCRATCH_PREFIX = "cold-"  # scratch databases in the index folder: cold-<pid>-<random>-<k>.sqlite

# (id, workflow_id, mtime_ns, size, status, accepted, suggestions, ino, folds, summary)
SessionRow9 = tuple[str, str, int, int, "str | None", int, int, int, int, str]
# (id, mtime_ns, size, workflow_id, reason, ino)
BadRow = tuple[str, int, int, "str | None", str, int]
# (session rows, decision rows, bad rows, files read, entries left unsure)
Chunk = tuple[list[SessionRow9], list[tuple[Any, ...]], list[BadRow], int, int]


class WorkerFailed(Exception):
    """A worker died or sent garbage: the caller builds in one process instead."""


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worker_count(stale: int) -> int:
    """How many workers a build of `stale` files gets: none for small ones."""
    cpus = usable_cpus()
    if stale < COLD_MIN or cpus < 2 or not hasattr(os, "fork"):
        return 0
    return min(cpus, MAX_WORKERS, max(1, stale // CHUNK))


def _unreadable(path: str, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return f"unreadable session file {path}: a symlink (refused)"
    return f"cannot read {path}: {exc.strerror or exc}"


def _read(path: str) -> tuple[os.stat_result, bytes]:
    """The file's bytes and the stat of exactly what was read (symlinks refused)."""
    fd = open_read(path)
    try:
        st = os.fstat(fd)
        raw = os.read(fd, st.st_size + 1)
        if len(raw) <= st.st_size:
            return st, raw
        parts = [raw]  # it grew while we read: read to the end, as the one-by-one path does
        while parts[-1]:
            parts.append(os.read(fd, 1 << 20))
        return st, b"".join(parts)
    finally:
        os.close(fd)


def parse_many(
    folder: str, ids: Sequence[str], derive: Derive, fast: FastDerive | None, now_ns: int
) -> Chunk:
    """Rows of these session files (a vanished one is skipped; a bad one is a bad row).

    A timestamp younger than RACY_NS is stored as -1 (re-read by the next refresh) and
    counted as unsure, like the one-by-one path does. Given the engine's `fast` derive, a
    plainly well-formed file takes it; anything else the full path."""
    srows: list[SessionRow9] = []
    drows: list[tuple[Any, ...]] = []
    bads: list[BadRow] = []
    reads = unsure = 0
    loads = json.loads
    for sid in ids:
        path = f"{folder}/{sid}{SESSION_SUFFIX}"
        try:
            st, raw = _read(path)
        except FileNotFoundError:
            continue  # removed meanwhile: the next scan drops it
        except OSError as exc:
            with contextlib.suppress(OSError):
                st = os.stat(path)
                mtime = -1 if now_ns - st.st_mtime_ns < RACY_NS else st.st_mtime_ns
                unsure += mtime < 0
                bads.append((sid, mtime, st.st_size, None, _unreadable(path, exc), st.st_ino))
            continue
        reads += 1
        mtime = -1 if now_ns - st.st_mtime_ns < RACY_NS else st.st_mtime_ns
        unsure += mtime < 0
        row = None
        if fast is not None:
            try:
                obj = loads(raw)
                got = fast(obj)
                if got is not None:
                    row = session_row(obj, got[0]), got[1]
            except Exception:  # not JSON, too deep...: the full path says what it is
                row = None
        if row is None:
            try:
                data, derived = read_session_bytes(raw, path, derive)
            except CoachctlError as exc:
                bads.append((sid, mtime, st.st_size, guess_workflow(raw), exc.message, st.st_ino))
                continue
            row = rows_of(data, derived)
        s, rows = row
        srows.append((s[0], s[1], mtime, st.st_size, s[2], s[3], s[4], st.st_ino, s[5], s[6]))
        drows.extend(rows)
    return srows, drows, bads, reads, unsure


def in_process(
    folder: str, ids: Sequence[str], derive: Derive, fast: FastDerive | None, now_ns: int
) -> Iterator[Chunk]:
    for start in range(0, len(ids), CHUNK):
        yield parse_many(folder, ids[start : start + CHUNK], derive, fast, now_ns)


# -- inserting ------------------------------------------------------------------------------


_SQL_S = (
    "INSERT INTO sessions(id, workflow_id, mtime_ns, size, status, accepted,"
    " suggestions, ino, folds, summary) VALUES(?,?,?,?,?,?,?,?,?,?)"
)
_SQL_D = "INSERT INTO decisions VALUES(?,?,?,?,?,?,?,?,?)"
_SQL_B = "INSERT INTO bad(id, mtime_ns, size, workflow_id, reason, ino) VALUES(?,?,?,?,?,?)"


def insert_rows(
    db: sqlite3.Connection,
    srows: Sequence[tuple[Any, ...]],
    drows: Sequence[tuple[Any, ...]],
    bads: Sequence[tuple[Any, ...]],
) -> None:
    """Plain inserts of a batch into empty tables; one session's invalid text (a lone
    surrogate cannot be stored) makes that session a bad file, as in `_ingest`."""
    db.execute("SAVEPOINT batch")
    try:
        db.executemany(_SQL_S, srows)
        db.executemany(_SQL_D, drows)
        db.executemany(_SQL_B, bads)
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
            db.execute(_SQL_S, srow)
            db.executemany(_SQL_D, by_session.get(srow[0], []))
        except UnicodeEncodeError:
            db.execute("ROLLBACK TO put")
            bads = [
                *bads,
                (srow[0], srow[2], srow[3], srow[1], "cannot index: invalid text", srow[7]),
            ]
        db.execute("RELEASE put")
    for bad in bads:
        try:
            db.execute(_SQL_B, bad)
        except UnicodeEncodeError:
            db.execute(_SQL_B, (*bad[:3], None, *bad[4:]))


# -- scratch files --------------------------------------------------------------------------


def _held(path: str) -> bool:
    """Is this scratch file's build still running (its parent holds an flock on it)?"""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False  # a link, or gone: nothing to keep
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # releases the probe's lock too
    return False


def sweep(folder: str) -> None:
    """Remove the scratch files of builds that are gone (a killed CI job's): a file no
    build holds is left over, whichever machine or pid namespace wrote it."""
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        names = [e.name for e in entries if e.name.startswith(SCRATCH_PREFIX)]
    for name in names:
        path = f"{folder}/{name}"
        if name.endswith(".sqlite") and _held(path):
            continue
        if not name.endswith(".sqlite") and _held(path.rsplit(".sqlite", 1)[0] + ".sqlite"):
            continue  # the journal of a file in use
        with contextlib.suppress(OSError):
            os.unlink(path)


class Scratch:
    """One private, empty SQLite file per worker, in the index's folder: each worker writes
    its rows there and the parent copies them over at C speed (`INSERT ... SELECT`).

    The parent creates them (O_EXCL, owner-only, never through a link) and holds an flock
    on each while the build lasts, so `sweep` removes exactly the ones whose build is gone;
    `close` removes its own. `check` tells whether a path is still the file created here."""

    def __init__(self, folder: str, n: int) -> None:
        import fcntl

        sweep(folder)
        self.paths: list[str] = []
        self.fds: list[int] = []
        token = f"{os.getpid()}-{os.urandom(4).hex()}"
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        try:
            for k in range(n):
                path = f"{folder}/{SCRATCH_PREFIX}{token}-{k}.sqlite"
                fd = os.open(path, flags, 0o600)
                self.paths.append(path)
                self.fds.append(fd)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            self.close()
            raise

    def check(self) -> None:
        for path, fd in zip(self.paths, self.fds, strict=True):
            try:
                same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except OSError:
                same = False
            if not same:
                raise WorkerFailed(f"scratch file {path} was replaced")

    def close(self) -> None:
        for path in self.paths:
            for suffix in ("", "-journal"):
                with contextlib.suppress(OSError):
                    os.unlink(path + suffix)
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.paths, self.fds = [], []


# -- workers --------------------------------------------------------------------------------


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _work(
    folder: str,
    ids: Sequence[str],
    derive: Derive,
    fast: FastDerive | None,
    now_ns: int,
    out: int,
    db_path: str,
) -> None:
    """A worker's whole life: its share, in batches, into its own scratch database (its
    journal in memory, no fsync: a crash just means a rebuild), then one frame saying what it wrote.
    It stops at the next batch when its parent is gone (a cancelled CI job)."""
    import sqlite3

    from coachctl.store.files.index_db import _TABLES

    parent = os.getppid()
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=MEMORY")  # OFF would break insert_rows' ROLLBACK TO
    db.execute("PRAGMA synchronous=OFF")
    db.executescript(_TABLES)
    for table in ("sessions", "decisions", "bad"):  # the same columns, as plain rowid tables:
        db.execute(f"ALTER TABLE {table} RENAME TO shape_{table}")  # appends, no key b-tree
        db.execute(f"CREATE TABLE {table} AS SELECT * FROM shape_{table} WHERE 0")
        db.execute(f"DROP TABLE shape_{table}")
    db.execute("BEGIN")
    reads = unsure = 0
    for srows, drows, bads, read, young in in_process(folder, ids, derive, fast, now_ns):
        if os.getppid() != parent:
            with contextlib.suppress(OSError):
                os.unlink(db_path)
            os._exit(1)
        insert_rows(db, srows, drows, bads)
        reads += read
        unsure += young
    counts = [
        db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("sessions", "decisions", "bad")
    ]
    db.execute("COMMIT")
    db.close()
    frame = marshal.dumps((reads, unsure, *counts))
    _write_all(out, len(frame).to_bytes(8, "little") + frame)


def _fork(
    folder: str,
    ids: Sequence[str],
    derive: Derive,
    fast: FastDerive | None,
    now_ns: int,
    db_path: str,
) -> tuple[int, int]:
    """Fork one worker for `ids`; (pid, read end of its pipe)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: never returns
        code = 1
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # the parent handles ^C
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # parent gone: die quietly
            os.umask(0o077)  # whatever SQLite creates stays private
            gc.disable()  # short-lived and cycle-free: the collector would only walk rows
            os.closerange(3, w)  # inherited locks and databases stay the parent's
            os.closerange(w + 1, 1 << 16)
            _work(folder, ids, derive, fast, now_ns, w, db_path)
            code = 0
        except BaseException:  # a worker reports by its exit code only
            pass
        os._exit(code)
    os.close(w)
    return pid, r


# (files read, entries left unsure, session rows, decision rows, bad rows) of one worker
Done = tuple[int, int, int, int, int]


class Workers:
    """Forked workers parsing `ids` (split in contiguous shares, one scratch database
    each); `wait` for what each wrote; `close` kills and reaps whatever is still running."""

    def __init__(
        self,
        folder: str,
        ids: Sequence[str],
        derive: Derive,
        fast: FastDerive | None,
        now_ns: int,
        paths: Sequence[str],
    ):
        self.procs: dict[int, int] = {}  # read fd -> pid
        self.order: list[int] = []  # read fds, in the order of `paths`
        self.finished = False
        share = -(-len(ids) // max(len(paths), 1))
        try:
            for k, path in enumerate(paths):
                pid, r = _fork(folder, ids[k * share : (k + 1) * share], derive, fast, now_ns, path)
                self.procs[r] = pid
                self.order.append(r)
        except BaseException:
            self.close()
            raise

    def wait(self) -> list[Done]:
        """Each worker's report, in the order of `paths`; WorkerFailed if one died."""
        sel = selectors.DefaultSelector()
        bufs: dict[int, bytearray] = {}
        try:
            for r in self.procs:
                sel.register(r, selectors.EVENT_READ)
                bufs[r] = bytearray()
            left = len(bufs)
            while left:
                for key, _ in sel.select():
                    r = int(key.fd)
                    data = os.read(r, 1 << 16)
                    if data:
                        bufs[r] += data
                        continue
                    sel.unregister(r)
                    left -= 1
            out: list[Done] = []
            for r in self.order:
                buf = bufs[r]
                if len(buf) < 8 or len(buf) != 8 + int.from_bytes(buf[:8], "little"):
                    raise WorkerFailed("a worker ended without finishing its share")
                done = marshal.loads(bytes(buf[8:]))
                if not (isinstance(done, tuple) and len(done) == 5):
                    raise WorkerFailed("a worker sent a bad report")
                out.append(done)
            self.finished = True
            return out
        except (ValueError, EOFError, TypeError) as exc:
            raise WorkerFailed(f"a worker sent a bad report: {exc}") from None
        finally:
            sel.close()

    def close(self) -> None:
        """Reap every worker (killing the ones still running): no zombies, no orphans."""
        for r, pid in list(self.procs.items()):
            with contextlib.suppress(OSError):
                os.close(r)
            with contextlib.suppress(OSError):
                done, _ = os.waitpid(pid, 0 if self.finished else os.WNOHANG)
                if done == 0:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
            del self.procs[r]
