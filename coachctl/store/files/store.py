"""The file store: `HOME/sessions/`, one JSON file per session (the truth), and derived
state beside it (index, events log, packs) that is rebuilt when missing.

The rules hold here, in one place: a session file is only replaced whole (temp file in the
same folder, fsync, `os.replace`), always under that session's lock, and readers never take
a lock because they can never see half a file. Nothing outside `coachctl/store/files/`
knows a path under `sessions/`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from coachctl.errors import ConflictError, SessionNotFound, StateError, StorageError
from coachctl.store.base import (
    BadFile,
    Derive,
    FastDerive,
    Finding,
    MetricsAnswer,
    MetricsQuery,
    SessionSummary,
)
from coachctl.store.files import layout
from coachctl.store.files.fs import (
    NOFOLLOW,
    LockTimeout,
    dir_stamp,
    flock,
    open_read,
    os_reason,
    read_nofollow,
    real_dir,
    write_atomic,
)
from coachctl.store.files.layout import LOCK_SESSION, LOCK_STORE, SESSION_SUFFIX
from coachctl.store.files.records import dump_session, parse_session_bytes
from coachctl.store.ids import ID_RE, check_id, resolve_among

if TYPE_CHECKING:
    from coachctl.store.base import Store
    from coachctl.store.files.index import Index
    from coachctl.store.files.txn import FileTxn, HandFileTxn

_T = TypeVar("_T")

# How long a refreshed index is trusted within one process (one command refreshes once).
FRESH_SECONDS = 2.0


class FileStore:
    """Owns `HOME/sessions/`. `derive` is the engine's session → rows function (the index
    and the full recomputation rebuild derived rows with it); `fast_derive` loads its
    one-pass form for plainly well-formed sessions, which speeds a cold index build."""

    kind = "file"

    def __init__(
        self,
        home: Path,
        lock_timeout: float = 10.0,
        *,
        derive: Derive,
        fast_derive: Callable[[], FastDerive] | None = None,
        use_index: bool = True,
    ) -> None:
        self.home = home
        self.sessions_dir = home / "sessions"
        self.lock_timeout = lock_timeout
        self.derive = derive
        self.fast_derive = fast_derive
        self._index: Index | None = None
        self._index_failed = not use_index  # False: every answer is a full recomputation

    def describe(self) -> str:
        return f"file store {self.sessions_dir}"

    # -- folders -----------------------------------------------------------------------

    def ensure(self) -> None:
        """Create `sessions/` owner-only: session files hold command output."""
        try:
            self.sessions_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = os.stat(self.sessions_dir)
            if st.st_mode & 0o077 and st.st_uid == os.getuid():
                os.chmod(self.sessions_dir, 0o700)  # e.g. a checked-out sessions/ folder
        except OSError as exc:
            raise StorageError(f"cannot create {self.sessions_dir}: {os_reason(exc)}") from exc
        # Made up front: created later, it would move the folder's stamp mid-refresh.
        real_dir(self.sessions_dir / layout.LOCKS_DIR)
        ignore = self.sessions_dir / layout.GITIGNORE
        if not os.path.lexists(ignore):  # a person's own edits are kept
            with contextlib.suppress(StorageError):
                write_atomic(ignore, layout.GITIGNORE_TEXT.encode())

    def make_dir(self, path: Path) -> None:
        """A folder of derived state under sessions/, owner-only."""
        self.ensure()
        folder = self.sessions_dir
        for part in path.relative_to(self.sessions_dir).parts:
            folder = folder / part
            real_dir(folder)  # owner-only, and never a link (fs's symlink policy)

    def check_writable(self) -> None:
        """Refuse writes to a store that was moved (`store migrate`)."""
        target = self.moved_to()
        if target is not None:
            raise StateError(f"{self.describe()} was moved to {target}: use that store (--store)")

    def session_path(self, session_id: str) -> Path:
        check_id(session_id, "session id")
        return self.sessions_dir / f"{session_id}{SESSION_SUFFIX}"

    def exists(self, session_id: str) -> bool:
        """A session file of that id; a name too long for the filesystem names none."""
        try:
            return stat.S_ISREG(os.stat(self.session_path(session_id)).st_mode)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP):
                return False
            reason = os_reason(exc, True)
            raise StateError(f"cannot read {self.sessions_dir}: {reason}") from exc

    def sessions_stamp(self) -> str | None:
        """`dir_stamp` of sessions/ (None when it cannot be read)."""
        try:
            return dir_stamp(os.stat(self.sessions_dir))
        except OSError:
            return None

    # -- ids ---------------------------------------------------------------------------

    def list_ids(self) -> list[str]:
        """Every session id in the home, sorted (= by start time)."""
        try:
            names = os.listdir(self.sessions_dir)
        except FileNotFoundError:
            return []
        except OSError as exc:  # a read failure: exit 2 (readiness fails closed, never "not ready")
            raise StateError(f"cannot read {self.sessions_dir}: {os_reason(exc, True)}") from exc
        cut = -len(SESSION_SUFFIX)
        ids = [n[:cut] for n in names if n.endswith(SESSION_SUFFIX) and not n.startswith(".")]
        return sorted(i for i in ids if ID_RE.match(i))

    def resolve(self, ref: str) -> str:
        check_id(ref, "session reference")
        if self.exists(ref):
            return ref
        return resolve_among(ref, self.list_ids(), self.describe())

    # -- locks -------------------------------------------------------------------------

    def _busy(self, name: str) -> ConflictError:
        return ConflictError(
            f"{name} is locked by another coachctl (waited {self.lock_timeout:g}s; "
            "see --lock-timeout)"
        )

    @contextlib.contextmanager
    def lock(self, namespace: str, name: str) -> Iterator[None]:
        """An OS-level lock (flock): a killed holder releases it, a left file blocks no one.
        Each namespace (session, pack, store) has its own folder: names never collide."""
        folder = self.sessions_dir / layout.LOCKS_DIR / namespace
        self.make_dir(folder)
        path = folder / f"{name}.lock"
        what = f"session {name}" if namespace == LOCK_SESSION else f"{namespace} {name}"
        try:
            fd = flock(str(path), self.lock_timeout)
        except LockTimeout:
            raise self._busy(what) from None
        except OSError as exc:
            raise StorageError(f"cannot lock {path}: {os_reason(exc)}") from exc
        if fd is not None:
            try:
                yield
            finally:
                os.close(fd)  # closing the only descriptor releases the flock
            return
        # No flock on this filesystem: filelock's fallback (a soft lock) is the best we have.
        from filelock import FileLock, Timeout

        lock = FileLock(str(path), timeout=self.lock_timeout, mode=0o600)
        try:
            lock.acquire()
        except Timeout:
            raise self._busy(what) from None
        except OSError as exc:
            raise StorageError(f"cannot lock {path}: {os_reason(exc)}") from exc
        try:
            yield
        finally:
            lock.release()

    # -- session files -----------------------------------------------------------------

    def load_raw(self, session_id: str) -> dict[str, Any]:
        """Read and parse one session file; unreadable or foreign files are exit 2."""
        path = self.session_path(session_id)
        try:
            data = read_nofollow(path)
        except FileNotFoundError:
            raise SessionNotFound(f"unknown session: {session_id} in {self.describe()}") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink could show a file from outside the home
                raise StateError(f"unreadable session file {path}: a symlink (refused)") from None
            raise StateError(f"cannot read {path}: {os_reason(exc, True)}") from exc
        obj = parse_session_bytes(data, path)
        if obj["id"] != session_id:
            # Saving it would write another session's file (its id names the file).
            raise StateError(
                f"unreadable session file {path}: it holds session {obj['id']!r}, "
                f"not {session_id!r}"
            )
        return obj

    def load(self, session_id: str) -> dict[str, Any]:
        return self.load_raw(session_id)

    def save_raw(self, session: Mapping[str, Any]) -> os.stat_result:
        """Write a session file atomically; the stat of what was written."""
        self.ensure()
        return write_atomic(self.session_path(str(session["id"])), dump_session(session))

    def create(self, session: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> list[str]:
        from coachctl.store.files.txn import FileTxn

        sid = str(session["id"])
        self.check_writable()
        self.ensure()
        with self.lock(LOCK_SESSION, sid):
            if self.exists(sid):
                raise ConflictError(f"session {sid} already exists in {self.describe()}")
            txn = FileTxn(self, sid, dict(session))
            txn.save(session, self.derive(session))
            txn.append_events(events)
            txn.commit()
        return txn.warnings

    @contextlib.contextmanager
    def transaction(self, session_id: str) -> Iterator[FileTxn]:
        from coachctl.store.files.txn import FileTxn

        self.check_writable()
        with self.lock(LOCK_SESSION, session_id), contextlib.ExitStack() as held:
            txn = FileTxn(self, session_id, self.load_raw(session_id), held)
            yield txn
            txn.commit()

    def iter_sessions(
        self, workflow_id: str | None = None, *, teaching: bool = False
    ) -> Iterator[dict[str, Any]]:
        from coachctl.errors import CoachctlError
        from coachctl.store.files.full import FullScan

        teachers = (
            self._ask_index(lambda idx: sorted(idx.folds(workflow_id)))
            if teaching and workflow_id is not None
            else None
        )
        if teachers is not None:
            for sid in teachers:
                try:
                    yield self.load_raw(sid)
                except CoachctlError:
                    continue
            return

        scan = FullScan(self, workflow_id)
        for found in scan.sessions.values():
            for data, _ in found:
                yield data

    def bad_sessions(self) -> list[BadFile]:
        found = self._ask_index(lambda idx: idx.bad_files())
        if found is not None:
            return found
        from coachctl.store.files.full import FullScan

        return FullScan(self).bad

    def list_sessions(
        self, workflow_id: str | None = None
    ) -> tuple[list[SessionSummary], list[BadFile]]:
        """From the index's kept summaries when it can answer (no session file read), else
        from a full scan; both list unreadable files as `bad` the same way."""
        found = self._ask_index(lambda idx: (idx.summaries(workflow_id), idx.bad_files()))
        if found is not None:
            return found
        from coachctl.store.files.full import FullScan
        from coachctl.store.summary import summary_of

        scan = FullScan(self, workflow_id)
        rows = [
            summary_of(data, derived) for found in scan.sessions.values() for data, derived in found
        ]
        rows.sort(key=lambda r: r["session_id"])
        return rows, scan.bad

    # -- the runner lease ----------------------------------------------------------------

    def _lease_path(self, session_id: str) -> Path:
        check_id(session_id, "session id")
        return self.sessions_dir / layout.LEASES_DIR / f"{session_id}.lease"

    @contextlib.contextmanager
    def lease(self, session_id: str, token: str) -> Iterator[None]:
        """An flock on `.leases/<id>.lease` holding the token, for the command's duration:
        any process on this kernel (containers sharing the folder too) can test it."""
        import fcntl

        path = self._lease_path(session_id)
        self.make_dir(path.parent)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o600)
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {os_reason(exc)}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, 0)
            os.write(fd, token.encode())
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                raise ConflictError(f"session {session_id} has a step running") from None
            raise StorageError(f"cannot lock {path}: {os_reason(exc)}") from exc
        try:
            yield
        finally:
            os.close(fd)

    def lease_alive(self, session_id: str, token: str) -> bool | None:
        import fcntl

        path = self._lease_path(session_id)
        try:
            fd = open_read(path)
        except OSError:
            return None  # no lease taken here (another host, or an older coachctl)
        try:
            if os.read(fd, 256).decode(errors="replace") != token:
                return None  # the lease file belongs to another run
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                    return True
                return None
            return False
        finally:
            os.close(fd)

    # -- metrics -----------------------------------------------------------------------

    def index(self, *, fresh: bool = True) -> Index | None:
        """This store's index, refreshed from the files (at most every FRESH_SECONDS), or
        None when it cannot be used (read-only home, no sessions): callers recompute."""
        import sqlite3

        from coachctl.errors import CoachctlError
        from coachctl.store.files.index import Index
        from coachctl.store.files.index_db import IndexUnavailable

        if self._index is None:
            if self._index_failed:
                return None
            try:
                self._index = Index.open(self)
            except (IndexUnavailable, CoachctlError, OSError):
                return None
        idx = self._index
        try:
            if not idx.complete or (fresh and time.monotonic() - idx.refreshed_at > FRESH_SECONDS):
                idx.refresh()
            return idx
        except sqlite3.OperationalError:
            self.forget_index()  # busy or read-only after all: recompute this time
        except sqlite3.DatabaseError:
            self.forget_index()  # Index.open rebuilds a corrupt one; never deleted under others
        except (CoachctlError, OSError):
            self.forget_index()
        self._index_failed = True
        return None

    def forget_index(self, *, discard: bool = False) -> None:
        """Stop using the index (and delete it when it proved corrupt)."""
        idx, self._index = self._index, None
        if idx is not None:
            idx.close()
            if discard:
                idx.discard()

    def metrics(self, query: MetricsQuery) -> MetricsAnswer:
        import sqlite3

        idx = self.index()
        if idx is not None:
            try:
                return {
                    "windows": idx.windows(query["windows"]),
                    "session_counts": {wf: idx.session_count(wf) for wf in query["workflows"]},
                    "trends": {wf: idx.trend(wf, query["trend"]) for wf in query["workflows"]},
                    "bad": idx.bad_files(),
                }
            except sqlite3.DatabaseError:
                self.forget_index()
        from coachctl.store.files.full import FullScan

        return FullScan(self).metrics(query)

    def _ask_index(self, question: Callable[[Index], _T]) -> _T | None:
        """`question(index)`, or None when the index cannot answer (callers recompute)."""
        import sqlite3

        idx = self.index()
        if idx is None:
            return None
        try:
            return question(idx)
        except sqlite3.DatabaseError:
            self.forget_index()
            return None

    def workflow_ids(self) -> list[str]:
        found = self._ask_index(lambda idx: idx.workflow_ids())
        if found is not None:
            return found
        from coachctl.store.files.full import FullScan

        return FullScan(self).workflow_ids()

    def latest_session(self, workflow_id: str) -> dict[str, Any] | None:
        from coachctl.errors import CoachctlError
        from coachctl.store.files.full import FullScan

        latest = self._ask_index(lambda idx: idx.latest_ids(workflow_id))
        if latest is None:
            return FullScan(self, workflow_id).latest(workflow_id)
        for sid in latest:
            try:
                return self.load_raw(sid)
            except CoachctlError:
                continue
        return None

    # -- events ------------------------------------------------------------------------

    @property
    def events_path(self) -> Path:
        return self.sessions_dir / layout.EVENTS_FILE

    def append_events(self, events: Sequence[Mapping[str, Any]]) -> None:
        from coachctl.store.files import events as log

        if not events:
            return
        self.check_writable()
        self.ensure()
        payload = log.encode(events)
        with self.lock(LOCK_STORE, "events"):
            log.append(self.events_path, payload)

    def read_events(
        self, cursor: str = "", kinds: Collection[str] | None = None
    ) -> Iterator[tuple[dict[str, Any], str]]:
        from coachctl.store.files import events as log

        return log.read(self.events_path, cursor, kinds)

    def events_end(self) -> str:
        from coachctl.store.files import events as log

        return str(log.size(self.events_path))

    def wait_events(self, cursor: str, timeout: float) -> None:
        from coachctl.store.files import events as log

        deadline = time.monotonic() + timeout
        offset = log.offset_of(cursor)
        while log.size(self.events_path) == offset and time.monotonic() < deadline:
            time.sleep(min(0.1, max(deadline - time.monotonic(), 0)))

    # -- packs and hand choices ----------------------------------------------------------

    def pack(self, workflow_id: str) -> dict[str, Any] | None:
        from coachctl.store.files import packs

        return packs.read_derived(self, workflow_id)

    def put_pack(self, workflow_id: str, pack: Mapping[str, Any]) -> None:
        from coachctl.store.files import packs

        self.check_writable()
        with self.lock(layout.LOCK_PACK, workflow_id):
            packs.write_derived(self, workflow_id, pack)

    def pack_ids(self) -> list[str]:
        from coachctl.store.files import packs

        return packs.ids(self)

    def hand_choices(self, workflow_id: str) -> dict[str, Any]:
        from coachctl.store.files import packs

        return packs.read_choices(self, workflow_id)

    @contextlib.contextmanager
    def hand_transaction(self, workflow_id: str) -> Iterator[HandFileTxn]:
        from coachctl.store.files.txn import HandFileTxn

        self.check_writable()
        check_id(workflow_id, "workflow id")
        with self.lock(layout.LOCK_PACK, workflow_id):
            txn = HandFileTxn(self, workflow_id)
            yield txn
            txn.commit()

    # -- reports -------------------------------------------------------------------------

    def recent_decisions(
        self, workflow_id: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for data in self.iter_sessions(workflow_id):
            for derived_row, d in _decisions_with_seq(self, data):
                found.append(
                    {
                        "session_id": data["id"],
                        "workflow_id": data["workflow_id"],
                        "step_id": d.get("step_id"),
                        "decision": d.get("decision"),
                        "decided_by": d.get("decided_by"),
                        "decided_at": d.get("decided_at"),
                        "outcome": d.get("outcome"),
                        "feedback": d.get("feedback"),
                        "seq": derived_row,
                    }
                )
        found.sort(key=lambda r: (r["seq"], r["session_id"]), reverse=True)
        return found[:limit]

    # -- upkeep ----------------------------------------------------------------------------

    def doctor(self, *, repair: bool = False) -> tuple[list[Finding], int]:
        from coachctl.store.files.doctor import check

        return check(self, repair=repair)

    def moved_to(self) -> str | None:
        try:
            text = read_nofollow(self.sessions_dir / layout.MOVED_FILE).decode("utf-8", "replace")
        except OSError:
            return None
        return text.strip() or None

    def mark_moved(self, target: str) -> None:
        self.ensure()
        write_atomic(self.sessions_dir / layout.MOVED_FILE, target.encode() + b"\n")


def _decisions_with_seq(
    store: FileStore, data: Mapping[str, Any]
) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """Each decision of a session with its order of record (from the engine's rows)."""
    seqs = {r["pos"]: r["seq"] for r in store.derive(data)["rows"]}
    for pos, d in enumerate(data.get("decisions") or []):
        if isinstance(d, dict):
            yield seqs.get(pos, 0), d


if TYPE_CHECKING:  # mypy proves the file store keeps the interface's shape

    def _is_a_store(store: FileStore) -> Store:
        return store
