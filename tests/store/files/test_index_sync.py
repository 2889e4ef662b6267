"""A write vouches for the folder's new stamp; the next refresh checks it by a listing.

Every test drives real `decide` processes, paused at the dangerous moments by hooks (flag
files outside sessions/), and ends by comparing the index with a full recomputation of the
session files: the fast path may be taken only when nothing foreign happened.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coachctl.engine.stores import file_store
from coachctl.store.files import FileStore
from coachctl.store.files.doctor import _differences, _expected
from coachctl.store.files.fs import dir_stamp
from coachctl.store.files.full import FullScan
from coachctl.store.files.index import PENDING, Index
from tests.conftest import Cli

OLD = time.time_ns() - 10**10

# A decide in its own process. Modes (comma-separated) pause it, or kill it, at a moment:
#   stamped: after it took the folder's stamp, before its session write (waits for go-stamped)
#   written: after its session write, before its index update (waits for go-written)
#   kill:    SIGKILL itself after its session write, before its index update
CHILD = r"""
import os, signal, sys, time
from pathlib import Path
from coachctl.engine import deciding
from coachctl.engine.stores import file_store
from coachctl.store.files.index import Index
from coachctl.store.files.store import FileStore as Store

home, sid, modes, flags = sys.argv[1], sys.argv[2], sys.argv[3].split(","), Path(sys.argv[4])

def mark(name):
    (flags / f"{sid}.{name}").touch()

def wait(name):
    while not (flags / f"{sid}.go-{name}").exists():
        time.sleep(0.002)

save, after = Store.save_raw, Index.update
if "stamped" in modes:
    def paused_save(self, data):
        mark("stamped")
        wait("stamped")
        return save(self, data)
    Store.save_raw = paused_save
if "written" in modes or "kill" in modes:
    def paused_after(*args, **kwargs):
        mark("written")
        if "kill" in modes:
            os.kill(os.getpid(), signal.SIGKILL)
        wait("written")
        return after(*args, **kwargs)
    Index.update = paused_after
deciding.decide(file_store(Path(home)), sid, "accept", no_exec=True)
"""


class Child:
    def __init__(self, home: Path, flags: Path, sid: str, modes: str = "") -> None:
        self.flags, self.sid = flags, sid
        env = dict(os.environ, COACHCTL_USER="tester")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(home), sid, modes, str(flags)],
            env=env,
            stderr=subprocess.PIPE,
        )

    def reached(self, name: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not (self.flags / f"{self.sid}.{name}").exists():
            assert self.proc.poll() is None or name == "written", self.proc.stderr
            assert time.monotonic() < deadline, f"{self.sid} never reached {name}"
            time.sleep(0.002)

    def go(self, name: str) -> None:
        (self.flags / f"{self.sid}.go-{name}").touch()

    def wait(self) -> int:
        _, err = self.proc.communicate(timeout=30)
        assert err == b"" or self.proc.returncode == -signal.SIGKILL, err
        return self.proc.returncode


def decide(home: Path, flags: Path, sid: str) -> None:
    assert Child(home, flags, sid).wait() == 0


@pytest.fixture
def flags(tmp_path: Path) -> Path:
    path = tmp_path / "flags"  # outside sessions/: never moves its stamp
    path.mkdir()
    return path


def synced(home: Path, cli: Cli, n: int = 3) -> tuple[FileStore, list[str]]:
    """A home with n sessions and an index in sync with a trusted (old) folder stamp."""
    sids = [cli.start("hello") for _ in range(n)]
    store = file_store(home)
    idx = Index.open(store)
    for sid in sids:  # older than the racy second, as a home in use for a while
        os.utime(store.sessions_dir / f"{sid}.json", ns=(OLD, OLD))
    os.utime(store.sessions_dir, ns=(OLD, OLD))
    idx.refresh(force_scan=True)
    assert meta_dir(idx) == dir_stamp(os.stat(store.sessions_dir))
    idx.close()
    return store, sids


def meta_dir(idx: Index) -> str | None:
    row = idx.db.execute("SELECT value FROM meta WHERE key='dir'").fetchone()
    return None if row is None else str(row[0])


def refresh_and_compare(store: FileStore) -> bool:
    """Refresh a fresh Index object; assert it equals a full recomputation; was it a scan?"""
    idx = Index.open(store)
    try:
        scanned = idx.refresh().scanned
        assert _differences(idx, *_expected(FullScan(store)), None) == {}
        return scanned
    finally:
        idx.close()


def foreign_write(store: FileStore, sid: str, *, decisions: int) -> None:
    """What a sync tool does: a temp file renamed over the session, its mtime kept (rsync -t)."""
    path = store.sessions_dir / f"{sid}.json"
    st = path.stat()
    data = json.loads(path.read_bytes())
    data["decisions"] = data["decisions"][:decisions]
    tmp = store.sessions_dir / f".sync-{sid}"
    tmp.write_text(json.dumps(data))
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, path)


# -- the fast path ---------------------------------------------------------------------------


def test_decide_vouches_and_the_next_refresh_lists_instead_of_scanning(
    home: Path, cli: Cli, flags: Path
) -> None:
    store, sids = synced(home, cli)
    decide(home, flags, sids[0])
    decide(home, flags, sids[1])  # a chain of vouching writes
    idx = Index.open(store)
    stamp = dir_stamp(os.stat(store.sessions_dir))
    assert meta_dir(idx) == PENDING + stamp
    idx.close()
    assert refresh_and_compare(store) is False
    os.utime(store.sessions_dir, ns=(OLD + 1, OLD + 1))  # a foreign touch: stamp unknown
    assert refresh_and_compare(store) is True


def test_a_young_folder_stays_pending_until_it_ages(home: Path, cli: Cli, flags: Path) -> None:
    store, sids = synced(home, cli)
    decide(home, flags, sids[0])
    assert refresh_and_compare(store) is False
    idx = Index.open(store)
    stamp = dir_stamp(os.stat(store.sessions_dir))
    assert meta_dir(idx) == PENDING + stamp  # younger than a second: checked again next time
    idx.close()


def test_a_scan_of_a_young_folder_lets_the_next_decides_vouch(
    home: Path, cli: Cli, flags: Path
) -> None:
    """A CI job: decide, stats, decide, stats within a second. The scan cannot trust the
    young folder by its stamp, but records it pending so the next decide can vouch."""
    store, sids = synced(home, cli)
    os.utime(store.sessions_dir, ns=(OLD + 3, OLD + 3))  # a foreign touch: a scan is due
    idx = Index.open(store)
    (store.sessions_dir / f"{sids[2]}.json").touch()  # and a young folder
    assert idx.refresh().scanned is True
    assert meta_dir(idx) == PENDING + dir_stamp(os.stat(store.sessions_dir))
    idx.close()
    decide(home, flags, sids[0])
    assert refresh_and_compare(store) is False
    decide(home, flags, sids[1])
    assert refresh_and_compare(store) is False


# -- foreign changes while a decide is between its write and its index update --------------


@pytest.mark.parametrize("change", ["added", "replaced", "removed"])
def test_a_foreign_change_during_a_decide_forces_a_scan(
    home: Path, cli: Cli, flags: Path, change: str
) -> None:
    store, sids = synced(home, cli)
    decide(home, flags, sids[1])  # so sids[1] has a decision a sync tool can drop
    idx = Index.open(store)
    os.utime(store.sessions_dir / f"{sids[1]}.json", ns=(OLD + 2, OLD + 2))
    os.utime(store.sessions_dir, ns=(OLD + 2, OLD + 2))
    idx.refresh(force_scan=True)
    assert meta_dir(idx) == dir_stamp(os.stat(store.sessions_dir))
    idx.close()
    child = Child(home, flags, sids[0], "written")
    child.reached("written")
    if change == "added":
        data = json.loads((store.sessions_dir / f"{sids[2]}.json").read_bytes())
        data["id"] = "zzzzforeign1"
        (store.sessions_dir / "zzzzforeign1.json").write_text(json.dumps(data))
    elif change == "replaced":
        foreign_write(store, sids[1], decisions=0)
    else:
        (store.sessions_dir / f"{sids[2]}.json").unlink()
    child.go("written")
    assert child.wait() == 0
    assert refresh_and_compare(store) is True


def test_a_foreign_change_before_the_write_in_the_same_tick_is_noticed(
    home: Path, cli: Cli, flags: Path
) -> None:
    """Between the decide's stamp and its write, a sync tool replaces another session."""
    store, sids = synced(home, cli)
    child = Child(home, flags, sids[0], "stamped")
    child.reached("stamped")
    foreign_write(store, sids[1], decisions=0)
    child.go("stamped")
    assert child.wait() == 0
    assert refresh_and_compare(store) is True


# -- killed writers and interleaved decides -------------------------------------------------


def test_a_writer_killed_before_its_index_update_is_noticed(
    home: Path, cli: Cli, flags: Path
) -> None:
    """K writes and dies without updating the index, inside the window of A, which vouches."""
    store, sids = synced(home, cli)
    a = Child(home, flags, sids[0], "stamped")
    a.reached("stamped")
    k = Child(home, flags, sids[1], "kill")
    assert k.wait() == -signal.SIGKILL
    assert (flags / f"{sids[1]}.written").exists()
    a.go("stamped")
    assert a.wait() == 0
    idx = Index.open(store)
    assert str(meta_dir(idx)).startswith(PENDING)  # A vouched, not knowing about K
    idx.close()
    assert refresh_and_compare(store) is True


def test_a_writer_killed_alone_leaves_a_stamp_the_index_never_saw(
    home: Path, cli: Cli, flags: Path
) -> None:
    store, sids = synced(home, cli)
    k = Child(home, flags, sids[1], "kill")
    assert k.wait() == -signal.SIGKILL
    assert refresh_and_compare(store) is True


@pytest.mark.parametrize("first_update", ["a", "b"])
def test_two_interleaved_decides_keep_the_index_exact(
    home: Path, cli: Cli, flags: Path, first_update: str
) -> None:
    """A and B both stamp the same folder, both write, then update in either order."""
    store, sids = synced(home, cli)
    a = Child(home, flags, sids[0], "stamped,written")
    b = Child(home, flags, sids[1], "stamped,written")
    a.reached("stamped")
    b.reached("stamped")
    a.go("stamped")
    b.go("stamped")
    a.reached("written")
    b.reached("written")
    for child in [a, b] if first_update == "a" else [b, a]:
        child.go("written")
        assert child.wait() == 0
    # The first update vouched (its stamp was the index's), covering both writes; the
    # second found a pending stamp it did not take and only put its own rows.
    assert refresh_and_compare(store) is False


def test_interleaved_decide_killed_after_the_other_vouched(
    home: Path, cli: Cli, flags: Path
) -> None:
    """A and B stamp the same folder; B writes and is killed; A then writes and vouches."""
    store, sids = synced(home, cli)
    a = Child(home, flags, sids[0], "stamped")
    b = Child(home, flags, sids[1], "stamped,kill")
    a.reached("stamped")
    b.reached("stamped")
    b.go("stamped")
    assert b.wait() == -signal.SIGKILL
    a.go("stamped")
    assert a.wait() == 0
    assert refresh_and_compare(store) is True


# -- batched ingest ---------------------------------------------------------------------------


def test_a_batch_with_invalid_text_indexes_the_rest_and_names_the_bad_one(tmp_path: Path) -> None:
    """The build inserts a batch at once; a lone surrogate (valid JSON, not encodable for
    SQLite) in one session falls back to one by one, and only that session is left out."""
    store = file_store(tmp_path / "h")
    store.ensure()
    for n in range(5):
        suggestion = "echo \ud800" if n == 2 else f"echo {n}"
        data = {
            "id": f"s{n}",
            "workflow_id": "w",
            "mode": "coaching",
            "status": "active",
            "cursor": 0,
            "steps": [{"id": "a", "suggestion": suggestion}],
            "decisions": [
                {"step_id": "a", "decision": "accept", "suggestion": suggestion, "decided_at": "t"}
            ],
            "schema_version": 1,
        }
        (store.sessions_dir / f"s{n}.json").write_text(json.dumps(data))
    idx = Index.open(store)
    result = idx.refresh()
    assert [(b.session_id, b.reason) for b in result.bad] == [("s2", "cannot index: invalid text")]
    assert sorted(idx.session_rows()) == ["s0", "s1", "s3", "s4"]
    key = ("w", "a", "echo 3", "", 50)
    assert idx.windows([key]) == {key: ["accepted"]}
    idx.close()
