"""Store.lock takes flock itself (fast path) and interoperates with filelock's lock."""

from __future__ import annotations

import errno
import fcntl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coachctl.engine.stores import file_store
from coachctl.errors import ConflictError

HOLD_FILELOCK = r"""
import sys, time
from filelock import FileLock
with FileLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""

HOLD_STORE = r"""
import sys, time
from pathlib import Path
from coachctl.engine.stores import file_store
from coachctl.store.files import FileStore
with file_store(Path(sys.argv[1])).lock("session", "s1"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold(script: str, arg: str, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", script, arg, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def test_a_filelock_holder_in_another_process_blocks_store_lock(tmp_path: Path) -> None:
    store = file_store(tmp_path / "h", lock_timeout=0.2)
    store.ensure()
    proc = hold(HOLD_FILELOCK, str(store.sessions_dir / ".locks" / "session" / "s1.lock"), 1.0)
    began = time.monotonic()
    with pytest.raises(ConflictError) as info, store.lock("session", "s1"):
        pass
    assert time.monotonic() - began >= 0.2
    assert info.value.exit_code == 3
    proc.wait()
    with store.lock("session", "s1"):  # released by its holder's exit
        pass


def test_store_lock_in_another_process_blocks_filelock(tmp_path: Path) -> None:
    from filelock import FileLock, Timeout

    store = file_store(tmp_path / "h")
    store.ensure()
    proc = hold(HOLD_STORE, str(store.home), 1.0)
    with pytest.raises(Timeout):
        FileLock(str(store.sessions_dir / ".locks" / "session" / "s1.lock"), timeout=0.1).acquire()
    proc.wait()


def test_a_killed_holder_blocks_no_one(tmp_path: Path) -> None:
    store = file_store(tmp_path / "h", lock_timeout=0.5)
    store.ensure()
    proc = hold(HOLD_STORE, str(store.home), 30.0)
    proc.kill()
    proc.wait()
    with store.lock("session", "s1"):
        pass


@pytest.mark.filterwarnings("ignore:flock not supported")
def test_without_flock_the_filelock_fallback_still_locks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_flock(fd: int, op: int) -> None:
        raise OSError(errno.ENOSYS, "flock not supported")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    store = file_store(tmp_path / "h", lock_timeout=0.1)
    other = file_store(store.home, lock_timeout=0.1)
    with store.lock("session", "s1"), pytest.raises(ConflictError), other.lock("session", "s1"):
        pass
    with other.lock("session", "s1"):
        pass
