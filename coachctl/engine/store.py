"""The home folder: paths, session ids, locks, atomic writes and the events log.

Everything coachctl writes goes through here, so the rules hold in one place: a session
file is only replaced whole (temp file in the same folder, fsync, `os.replace`), always under
that session's lock, and readers never take a lock because they can never see half a file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from coachctl.errors import (
    ConflictError,
    SessionNotFound,
    StateError,
    StorageError,
    UsageError,
)

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
SCHEMA_VERSION = 1
MIN_PREFIX = 4
SESSION_SUFFIX = ".json"
EVENTS_FILE = "events.jsonl"
LOCKS_DIR = ".locks"
TMP_PREFIX = ".tmp-"
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def resolve_home(option: str | None) -> Path:
    """`--home`, else `$COACHCTL_HOME`, else the current directory (CONTRACT §1)."""
    raw = option or os.environ.get("COACHCTL_HOME") or os.getcwd()
    return Path(raw).expanduser().absolute()


def _base36(n: int, width: int) -> str:
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(_B36[r])
    return "".join(reversed(out)).rjust(width, "0")


def new_session_id(now: float | None = None) -> str:
    """Short, time-sortable ids: 8 base-36 chars of milliseconds, then 4 random ones.

    Sorting ids sorts sessions by start time, which is what `sessions` lists by.
    """
    ms = int((time.time() if now is None else now) * 1000)
    return _base36(ms, 8) + "-" + _base36(int.from_bytes(os.urandom(4), "big") % 36**4, 4)


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> os.stat_result:
    """Replace `path` whole or not at all: a reader sees the old file or the new one.

    Returns the stat of what was written (inode, size, mtime: a rename keeps them), so the
    index can record exactly this version even if someone replaces the file right after.
    """
    fd = -1
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{os.urandom(4).hex()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
        st = os.fstat(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except OSError as exc:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StorageError(f"cannot write {path}: {_os_reason(exc)}") from exc
    return st


def dir_stamp(st: os.stat_result) -> str:
    """A folder's identity and change time: equal stamps mean no entry was added, removed
    or renamed in between (given the timestamp is older than its clock's tick)."""
    return f"{st.st_dev}:{st.st_ino}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def _read_nofollow(path: Path) -> bytes:
    """Read a file that is not a symlink (ELOOP if it is)."""
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    with open(path, "rb", opener=lambda p, flags: os.open(p, flags | nofollow)) as fh:
        return fh.read()


class _LockTimeout(Exception):
    """Another process held the lock for the whole timeout."""


def _flock(path: str, timeout: float) -> int | None:
    """flock(LOCK_EX) on `path`, polling like filelock (every 50 ms) until `timeout`.

    The same lock filelock takes (so both interoperate), in a tenth of its time: `decide`
    takes three. Returns the locked descriptor, None when the filesystem has no flock;
    _LockTimeout when another holder kept it.
    """
    import fcntl

    flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd, created = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600), True
        except FileExistsError:
            try:
                fd, created = os.open(path, flags), False
            except FileNotFoundError:
                continue  # removed in between: create it again
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno == errno.ENOSYS:
                if created:  # filelock's soft lock reads an existing file as "held"
                    with contextlib.suppress(OSError):
                        os.unlink(path)
                return None
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            if time.monotonic() >= deadline:
                raise _LockTimeout(path) from None
            time.sleep(0.05)
            continue
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the file was replaced while we waited: lock the one there now


def _os_reason(exc: OSError, reading: bool = False) -> str:
    """Why a file operation failed, in words; a denied read is not called "read-only?"."""
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied" if reading else "permission denied (read-only?)"
    return exc.strerror or str(exc)


class Store:
    """Owns `HOME/sessions/`: ids, prefixes, locks, session files and the events log."""

    def __init__(self, home: Path, lock_timeout: float = 10.0) -> None:
        self.home = home
        self.sessions_dir = home / "sessions"
        self.workflows_dir = home / "workflows"
        self.lock_timeout = lock_timeout

    # -- folders -----------------------------------------------------------------------

    def ensure(self) -> None:
        """Create `sessions/` owner-only: session files hold command output."""
        try:
            self.sessions_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = os.stat(self.sessions_dir)
            if st.st_mode & 0o077 and st.st_uid == os.getuid():
                os.chmod(self.sessions_dir, 0o700)  # e.g. a checked-out sessions/ folder
            (self.sessions_dir / LOCKS_DIR).mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {self.sessions_dir}: {_os_reason(exc)}") from exc

    def session_path(self, session_id: str) -> Path:
        check_id(session_id, "session id")
        return self.sessions_dir / f"{session_id}{SESSION_SUFFIX}"

    # -- ids ---------------------------------------------------------------------------

    def list_ids(self) -> list[str]:
        """Every session id in the home, sorted (= by start time)."""
        try:
            names = os.listdir(self.sessions_dir)
        except FileNotFoundError:
            return []
        except OSError as exc:  # a read failure: exit 2 (readiness fails closed, never "not ready")
            raise StateError(f"cannot read {self.sessions_dir}: {_os_reason(exc, True)}") from exc
        ids = [
            n[: -len(SESSION_SUFFIX)]
            for n in names
            if n.endswith(SESSION_SUFFIX) and not n.startswith(".")
        ]
        return sorted(i for i in ids if ID_RE.match(i))

    def resolve(self, ref: str) -> str:
        """A full id or a unique prefix (>= 4 chars) → the id; refuses traversal (exit 2)."""
        check_id(ref, "session reference")
        if self.exists(ref):
            return ref
        if len(ref) < MIN_PREFIX:
            raise SessionNotFound(
                f"unknown session: {ref} (a prefix needs at least {MIN_PREFIX} characters)"
            )
        matches = [i for i in self.list_ids() if i.startswith(ref)]
        if not matches:
            raise SessionNotFound(f"unknown session: {ref}")
        if len(matches) > 1:
            shown = ", ".join(matches[:5]) + (", …" if len(matches) > 5 else "")
            raise SessionNotFound(f"ambiguous session prefix {ref}: {shown}")
        return matches[0]

    # -- locks -------------------------------------------------------------------------

    def _busy(self, name: str) -> ConflictError:
        return ConflictError(
            f"{name} is locked by another coachctl (waited {self.lock_timeout:g}s; "
            "see --lock-timeout)"
        )

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An OS-level lock (flock): a killed holder releases it, a left file blocks no one."""
        self.ensure()
        path = self.sessions_dir / LOCKS_DIR / f"{name}.lock"
        try:
            fd = _flock(str(path), self.lock_timeout)
        except _LockTimeout:
            raise self._busy(name) from None
        except OSError as exc:
            raise StorageError(f"cannot lock {path}: {_os_reason(exc)}") from exc
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
            raise self._busy(name) from None
        except OSError as exc:
            raise StorageError(f"cannot lock {path}: {_os_reason(exc)}") from exc
        try:
            yield
        finally:
            lock.release()

    # -- session files -----------------------------------------------------------------

    def load_raw(self, session_id: str) -> dict[str, Any]:
        """Read and parse one session file; unreadable or foreign files are exit 2."""
        path = self.session_path(session_id)
        try:
            data = _read_nofollow(path)
        except FileNotFoundError:
            raise SessionNotFound(f"unknown session: {session_id}") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink could show a file from outside the home
                raise StateError(f"unreadable session file {path}: a symlink (refused)") from None
            raise StateError(f"cannot read {path}: {_os_reason(exc, True)}") from exc
        obj = parse_session_bytes(data, path)
        if obj["id"] != session_id:
            # Saving it would write another session's file (its id names the file).
            raise StateError(
                f"unreadable session file {path}: it holds session {obj['id']!r}, "
                f"not {session_id!r}"
            )
        return obj

    def save_raw(self, session: Mapping[str, Any]) -> os.stat_result:
        """Write a session file atomically; the stat of what was written."""
        self.ensure()
        return write_atomic(self.session_path(str(session["id"])), dump_session(session))

    def sessions_stamp(self) -> str | None:
        """`dir_stamp` of sessions/ (None when it cannot be read)."""
        try:
            return dir_stamp(os.stat(self.sessions_dir))
        except OSError:
            return None

    def exists(self, session_id: str) -> bool:
        """A session file of that id; a name too long for the filesystem names none."""
        try:
            return stat.S_ISREG(os.stat(self.session_path(session_id)).st_mode)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP):
                return False
            reason = _os_reason(exc, True)
            raise StateError(f"cannot read {self.sessions_dir}: {reason}") from exc

    # -- events ------------------------------------------------------------------------

    @property
    def events_path(self) -> Path:
        return self.sessions_dir / EVENTS_FILE

    def append_events(self, events: list[Mapping[str, Any]]) -> None:
        """Append JSON lines; a torn last line left by a crash is closed off first."""
        if not events:
            return
        self.ensure()
        payload = "".join(
            json.dumps(e, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"
            for e in events
        ).encode("utf-8")
        with self.lock("events"):
            try:
                fd = os.open(self.events_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            except OSError as exc:
                raise StorageError(f"cannot write {self.events_path}: {_os_reason(exc)}") from exc
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    payload = b"\n" + payload
                os.write(fd, payload)
            except OSError as exc:
                raise StorageError(f"cannot write {self.events_path}: {_os_reason(exc)}") from exc
            finally:
                os.close(fd)

    def read_events(self, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Events from byte `offset`; returns them and the offset after the last full line.

        A line that does not parse (torn by a crash, or garbage) is skipped; a last line
        without its newline is left for the next read, since a writer may be mid-append.
        """
        try:
            with open(self.events_path, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except FileNotFoundError:
            return [], offset
        except OSError as exc:
            raise StateError(f"cannot read {self.events_path}: {_os_reason(exc, True)}") from exc
        end = data.rfind(b"\n") + 1
        events: list[dict[str, Any]] = []
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                events.append(obj)
        return events, offset + end


def dump_session(session: Mapping[str, Any]) -> bytes:
    """One top-level key per line, each value compact.

    `indent=` would switch json to its pure-Python encoder, 3x slower on a long session, and
    the encode happens under the session's lock; this stays greppable and diffable by key.
    """
    enc = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    lines = ",\n".join(f"{enc.encode(k)}: {enc.encode(session[k])}" for k in sorted(session))
    return ("{\n" + lines + "\n}\n").encode("utf-8")


def check_id(value: str, what: str) -> str:
    """Ids are plain names: never a path, never `..` (CONTRACT §1)."""
    if not ID_RE.match(value) or value in (".", ".."):
        raise UsageError(f"invalid {what}: {value!r} (expected letters, digits, '.', '_', '-')")
    return value


def parse_session_bytes(data: bytes, path: Path) -> dict[str, Any]:
    """Parse a session file and refuse what this version cannot read correctly."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise StateError(f"unreadable session file {path}: not valid JSON") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise StateError(f"unreadable session file {path}: not a coachctl session")
    version = obj.get("schema_version", 1)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise StateError(
            f"session file {path} has schema_version {version!r}, written by a newer "
            f"coachctl (this one reads up to {SCHEMA_VERSION}): upgrade coachctl"
        )
    return obj
