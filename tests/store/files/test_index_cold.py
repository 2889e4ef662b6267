"""A cold index build (issue 8, defect 8): forked workers parse and derive, the parent only
inserts. Same rows as the one-by-one build, no workers for small folders, no zombies, and a
worker that dies mid-build costs time, never rows."""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from coachctl.engine.records import checked_derive
from coachctl.engine.stores import file_store
from coachctl.store.base import Derived
from coachctl.store.files import FileStore, coldbuild
from coachctl.store.files import index as index_mod
from coachctl.store.files.index import Index
from tests.store.files.test_index import OLD, decision, expected_rows, session

N = coldbuild.COLD_MIN + 300  # big enough for a cold build with workers


def _session(i: int) -> dict[str, Any]:
    kinds = ["accept", "reject", "correct", "manual", "skip"]
    decisions = [
        decision(
            "ab"[j % 2],
            kinds[(i + j) % 5],
            ["echo a", "echo b", None][(i * j) % 3],
            f"2025-01-01T00:{i % 60:02d}:{j:02d}Z",
            **({"seq": i * 100 + j} if i % 3 else {}),
            **({"outcome": "failed"} if (i + j) % 7 == 0 else {}),
        )
        for j in range(i % 6)
    ]
    extra: dict[str, Any] = {}
    if i % 4 == 0:  # a scoped workflow: the scope is part of every row
        extra = {"variables": {"env": ["prod", "dev"][i % 8 // 4]}}
        extra["coaching"] = {"min_decisions": 2, "strict": False, "trust_scope": ["env"]}
    return session(f"m{i:07d}-abcd", f"w{i % 3}", decisions, **extra)


def _fill(store: FileStore, n: int) -> None:
    """n sessions, plus every kind of file a build must get right: unreadable JSON, a newer
    schema, a symlink, text SQLite cannot store, a young (racy) file, a stray name."""
    store.ensure()
    folder = store.sessions_dir
    for i in range(n):
        (folder / f"{_session(i)['id']}.json").write_text(json.dumps(_session(i)))
    (folder / "m9000000-bad1.json").write_text("{not json")
    (folder / "m9000001-bad2.json").write_text(
        json.dumps({**_session(1), "id": "m9000001-bad2", "schema_version": 99})
    )
    (folder / "m9000002-link.json").symlink_to(folder / "m0000001-abcd.json")
    surrogate = _session(5)
    surrogate["id"] = "m9000003-surr"
    surrogate["decisions"][0]["step_id"] = "\ud800"
    (folder / "m9000003-surr.json").write_text(json.dumps(surrogate))
    (folder / "stray copy.json").write_text("{}")  # not a session id: never indexed
    for path in folder.iterdir():
        os.utime(path, ns=(OLD, OLD), follow_symlinks=False)
    young = _session(7)
    young["id"] = "m9000004-yng1"
    future = time.time_ns() + 10**11  # racy in every build of this test
    (folder / "m9000004-yng1.json").write_text(json.dumps(young))
    os.utime(folder / "m9000004-yng1.json", ns=(future, future))
    os.utime(folder, ns=(OLD, OLD))


def _dump(idx: Index) -> dict[str, Any]:
    """Everything a build writes, row for row."""
    out: dict[str, Any] = {}
    for table in ("sessions", "decisions", "bad", "levels"):
        out[table] = idx.db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
    out["meta"] = idx.db.execute("SELECT * FROM meta WHERE key != 'dir' ORDER BY 1").fetchall()
    out["indexes"] = sorted(
        r[0] for r in idx.db.execute("SELECT name FROM sqlite_master WHERE type='index'")
    )
    return out


def _cold(store: FileStore) -> tuple[dict[str, Any], Index]:
    idx = Index.open(store)
    idx.rebuild()
    try:
        return _dump(idx), idx
    finally:
        idx.close()


@pytest.fixture
def big(tmp_path: Path) -> FileStore:
    s = file_store(tmp_path / "h")
    _fill(s, N)
    return s


def test_cold_build_with_workers_writes_exactly_the_one_process_rows(
    big: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(coldbuild, "usable_cpus", lambda: 2)  # workers even on one CPU
    with_workers, idx = _cold(big)
    assert (idx.workers, idx.fallbacks) == (2, 0)  # the workers' rows, not a fallback's
    assert idx.reads == N + 4  # every readable file once (the symlink is refused)

    monkeypatch.setattr(coldbuild, "usable_cpus", lambda: 1)
    in_process, idx = _cold(big)
    assert idx.workers == 0

    monkeypatch.setattr(index_mod, "BATCH", 10**9)  # the one-by-one path, as before
    one_by_one, _ = _cold(big)

    assert with_workers == in_process == one_by_one
    assert len(with_workers["sessions"]) == N + 1  # the young one too
    bad = {r[0]: r for r in with_workers["bad"]}
    assert sorted(bad) == ["m9000000-bad1", "m9000001-bad2", "m9000002-link", "m9000003-surr"]
    assert "invalid text" in bad["m9000003-surr"][4]
    young = [r for r in with_workers["sessions"] if r[0] == "m9000004-yng1"]
    assert young[0][2] == -1  # racy: re-read by the next refresh
    idx = Index.open(big)
    try:
        srows, drows = expected_rows(big)  # the full recomputation has no SQLite text limit
        srows.pop("m9000003-surr")
        drows.pop("m9000003-surr")
        assert (idx.session_rows(), idx.decision_rows()) == (srows, drows)
    finally:
        idx.close()


def test_small_folders_and_small_refreshes_fork_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_fork() -> int:
        raise AssertionError("a worker was forked")

    monkeypatch.setattr(coldbuild, "usable_cpus", lambda: 2)
    store = file_store(tmp_path / "h")
    _fill(store, coldbuild.COLD_MIN - 10)  # with the 5 odd files: still below the threshold
    with monkeypatch.context() as m:
        m.setattr(os, "fork", no_fork)
        idx = Index.open(store)
        idx.refresh()
        assert idx.workers == 0
        assert idx.reads == coldbuild.COLD_MIN - 10 + 4
        # A refresh of a big, known folder re-reads the few changed files in-process.
        for i in range(20):
            path = store.sessions_dir / f"m8{i:06d}-new1.json"
            path.write_text(json.dumps({**_session(i), "id": path.stem}))
            os.utime(path, ns=(OLD, OLD))
        for i in range(30):
            (store.sessions_dir / f"m8{i:06d}-more.json").write_text(
                json.dumps({**_session(i), "id": f"m8{i:06d}-more"})
            )
        assert idx.refresh().scanned
        assert idx.workers == 0
        idx.close()


def test_no_child_is_left_after_a_cold_build(
    big: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(coldbuild, "usable_cpus", lambda: 2)
    _, idx = _cold(big)
    assert (idx.workers, idx.fallbacks) == (2, 0)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # no child at all: every worker was reaped


def test_a_worker_killed_mid_build_costs_time_not_rows(
    big: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker SIGKILLed (the OOM killer, a stray kill) after sending some batches: the
    parent rolls its transaction back and builds in one process; same rows, no zombie."""
    monkeypatch.setattr(coldbuild, "usable_cpus", lambda: 2)
    expected, _ = _cold(big)
    parent = os.getpid()

    def dying(data: Any) -> Derived:
        if os.getpid() != parent and data.get("id") == f"m{N - 5:07d}-abcd":
            os.kill(os.getpid(), signal.SIGKILL)  # a real death of the worker process
        return checked_derive(data)

    store = FileStore(big.home, derive=dying)
    idx = Index.open(store)
    try:
        idx.rebuild()
        assert (idx.workers, idx.fallbacks) == (2, 1)
        assert idx.reads == N + 4  # the one-process build after the failure; counted once
        assert _dump(idx) == expected
    finally:
        idx.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def _scratch(store: FileStore) -> list[str]:
    folder = store.sessions_dir / ".index"
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(coldbuild.SCRATCH_PREFIX))


def test_scratch_files_are_private_real_files_and_gone_after_the_build(
    big: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(coldbuild, "usable_cpus", lambda: 2)
    seen: list[tuple[str, int]] = []
    wait = coldbuild.Workers.wait

    def looking(self: coldbuild.Workers) -> list[coldbuild.Done]:
        done = wait(self)
        for name in _scratch(big):
            st = os.lstat(big.sessions_dir / ".index" / name)
            assert stat.S_ISREG(st.st_mode)
            seen.append((name, stat.S_IMODE(st.st_mode)))
        return done

    monkeypatch.setattr(coldbuild.Workers, "wait", looking)
    _, idx = _cold(big)
    assert (idx.workers, idx.fallbacks) == (2, 0)
    assert [mode for _, mode in seen] == [0o600, 0o600]
    assert _scratch(big) == []


def test_left_over_scratch_files_are_swept_a_held_one_kept_a_link_never_followed(
    big: FileStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    monkeypatch.setattr(coldbuild, "usable_cpus", lambda: 2)
    Index.open(big).close()  # creates .index/
    folder = big.sessions_dir / ".index"
    (folder / "cold-999999-dead-0.sqlite").write_bytes(b"left by a killed build")
    (folder / "cold-999999-dead-0.sqlite-journal").write_bytes(b"")
    outside = tmp_path / "outside.sqlite"
    outside.write_bytes(b"not ours")
    (folder / "cold-1-link-0.sqlite").symlink_to(outside)
    held = folder / "cold-2-live-0.sqlite"
    held.write_bytes(b"another build, still running")
    fd = os.open(held, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _, idx = _cold(big)
        assert (idx.workers, idx.fallbacks) == (2, 0)
        assert _scratch(big) == ["cold-2-live-0.sqlite"]
        assert outside.read_bytes() == b"not ours"
    finally:
        os.close(fd)
    _cold(big)
    assert _scratch(big) == []  # no longer held: swept by the next build


@pytest.mark.parametrize("how", ["replaced", "short"])
def test_a_scratch_file_that_is_not_what_its_worker_wrote_costs_time_not_rows(
    big: FileStore, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A scratch file swapped under the build, or fewer rows copied than its worker
    reported: the parent rolls back and builds in one process; same rows."""
    monkeypatch.setattr(coldbuild, "usable_cpus", lambda: 1)
    expected, _ = _cold(big)
    monkeypatch.setattr(coldbuild, "usable_cpus", lambda: 2)
    wait = coldbuild.Workers.wait

    def meddling(self: coldbuild.Workers) -> list[coldbuild.Done]:
        done = wait(self)
        if how == "short":
            reads, unsure, s, d, b = done[1]
            return [done[0], (reads, unsure, s, d + 1, b)]
        folder = big.sessions_dir / ".index"
        path = next(p for p in folder.iterdir() if p.name.endswith("-1.sqlite"))
        other = path.with_name("other.sqlite")
        other.write_bytes(path.read_bytes())
        os.replace(other, path)
        return done

    monkeypatch.setattr(coldbuild.Workers, "wait", meddling)
    got, idx = _cold(big)
    assert (idx.workers, idx.fallbacks) == (2, 1)
    assert got == expected
    assert _scratch(big) == []
