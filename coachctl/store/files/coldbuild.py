"""A cold index build: many session files read, parsed and turned into rows at once.

Why its own path: a CI job on a fresh clone has no index, and rebuilding 100,000 sessions
one statement at a time took 3.8x a plain parse of every file. Here the files are read,
parsed and derived in batches by forked workers (one per usable CPU), which send compact
row tuples (marshal: C speed both ways) through pipes; the parent only inserts them, into
empty tables whose secondary indexes are created after the load. The rows are exactly the
ones the one-by-one path writes (`parse_many` is shared by both; a test compares them).

Workers are only forked for a big build (COLD_MIN stale files, more than one CPU): `decide`
and small homes never pay for a fork. They are forked before the parent takes any lock, so
none of them holds one; they close every inherited descriptor but their pipe; they exit with
`os._exit` (no atexit, no flush of the parent's buffers); the parent reaps every one of them
in a `finally`, and a worker whose parent died gets EPIPE on its next batch and exits.
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
from typing import Any

from coachctl.errors import CoachctlError
from coachctl.store.base import Derive
from coachctl.store.files.coldrows import fast_rows
from coachctl.store.files.fs import NOFOLLOW
from coachctl.store.files.layout import SESSION_SUFFIX
from coachctl.store.files.records import guess_workflow, read_session_bytes, rows_of

COLD_MIN = 2000  # stale files below which a build stays in one process, one by one
CHUNK = 1000  # sessions per message from a worker (and per insert batch)
RACY_NS = 1_000_000_000  # a timestamp this young may still change within the same tick
MAX_WORKERS = 8

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
    fd = os.open(path, os.O_RDONLY | NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
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


def parse_many(folder: str, ids: Sequence[str], derive: Derive, now_ns: int) -> Chunk:
    """Rows of these session files (a vanished one is skipped; a bad one is a bad row).

    A timestamp younger than RACY_NS is stored as -1 (re-read by the next refresh) and
    counted as unsure, like the one-by-one path does. With the engine's own `derive`, a
    plainly well-formed file takes `coldrows.fast_rows`; anything else the full path."""
    from coachctl.engine import records

    srows: list[SessionRow9] = []
    drows: list[tuple[Any, ...]] = []
    bads: list[BadRow] = []
    reads = unsure = 0
    fast = fast_rows if derive in (records.checked_derive, records.derive) else None
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
                row = fast(loads(raw))
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


def in_process(folder: str, ids: Sequence[str], derive: Derive, now_ns: int) -> Iterator[Chunk]:
    for start in range(0, len(ids), CHUNK):
        yield parse_many(folder, ids[start : start + CHUNK], derive, now_ns)


# -- workers --------------------------------------------------------------------------------


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _work(folder: str, ids: Sequence[str], derive: Derive, now_ns: int, out: int) -> None:
    """A worker's whole life: its share in batches, each one length-prefixed, then an empty
    frame meaning "done"."""
    for chunk in in_process(folder, ids, derive, now_ns):
        data = marshal.dumps(chunk)
        _write_all(out, len(data).to_bytes(8, "little") + data)
    _write_all(out, (0).to_bytes(8, "little"))


def _fork(folder: str, ids: Sequence[str], derive: Derive, now_ns: int) -> tuple[int, int]:
    """Fork one worker for `ids`; (pid, read end of its pipe)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: never returns
        code = 1
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # the parent handles ^C
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # parent gone: die quietly
            gc.disable()  # short-lived and cycle-free: the collector would only walk rows
            os.closerange(3, w)  # inherited locks and databases stay the parent's
            os.closerange(w + 1, 1 << 16)
            _work(folder, ids, derive, now_ns, w)
            code = 0
        except BaseException:  # a worker reports by its exit code only
            pass
        os._exit(code)
    os.close(w)
    with contextlib.suppress(OSError, AttributeError):
        import fcntl

        fcntl.fcntl(r, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)  # batches in flight
    return pid, r


class Workers:
    """Forked workers parsing `ids` (split in contiguous shares); iterate for their chunks
    in arrival order; `close` kills and reaps whatever is still running."""

    def __init__(self, folder: str, ids: Sequence[str], derive: Derive, now_ns: int, n: int):
        self.procs: dict[int, int] = {}  # read fd -> pid
        self.pids: list[int] = []
        self.finished = False
        share = -(-len(ids) // max(n, 1))
        try:
            for k in range(n):
                pid, r = _fork(folder, ids[k * share : (k + 1) * share], derive, now_ns)
                self.procs[r] = pid
                self.pids.append(pid)
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> Iterator[Chunk]:
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
                    data = os.read(r, 1 << 20)
                    buf = bufs[r]
                    if not data:
                        raise WorkerFailed("a worker ended without finishing its share")
                    buf += data
                    while len(buf) >= 8:
                        size = int.from_bytes(buf[:8], "little")
                        if size == 0:
                            sel.unregister(r)
                            left -= 1
                            break
                        if len(buf) < 8 + size:
                            break
                        chunk = marshal.loads(bytes(buf[8 : 8 + size]))
                        del buf[: 8 + size]
                        yield chunk
            self.finished = True
        except (ValueError, EOFError, TypeError) as exc:
            raise WorkerFailed(f"a worker sent a bad batch: {exc}") from None
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
