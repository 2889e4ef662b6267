"""list_sessions from the index's kept summaries: equal to the full scan, no file read."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from coachctl.engine.stores import file_store
from coachctl.store.files import FileStore
from coachctl.store.files import full as full_mod
from coachctl.store.files.index import Index
from tests.store.files.test_index import OLD, age_dir, decision, session, write


def home(tmp_path: Path) -> Path:
    store = file_store(tmp_path / "h")
    at = "2026-01-01T00:00:00Z"
    write(store, session("s1", "wf", [decision("a", "accept", "echo a", at)], started_by="ann"))
    write(store, session("s2", "wf", [], status="completed", cursor=2, mode="auto"))
    write(store, session("s3", "other", [decision("a", "reject", "echo a", at)], cursor=1))
    write(store, session("s4", "wf", [], cursor=5))  # past the end
    (store.sessions_dir / "s5.json").write_text("{not json")
    (store.sessions_dir / "s6.json").write_text(json.dumps({"id": "s6", "workflow_id": "wf",
                                                            "schema_version": 99}))  # fmt: skip
    os.symlink(store.sessions_dir / "s1.json", store.sessions_dir / "s7.json")
    (store.sessions_dir / "s8.json").write_text(json.dumps({"id": "s8"}))  # no workflow_id
    for name in ("s5", "s6", "s7", "s8"):
        os.utime(store.sessions_dir / f"{name}.json", ns=(OLD, OLD), follow_symlinks=False)
    age_dir(store)
    return store.home


def count_scans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    scans: list[int] = []
    real = full_mod.FullScan.__init__

    def counting(self: Any, *args: Any, **kw: Any) -> None:
        scans.append(1)
        real(self, *args, **kw)

    monkeypatch.setattr(full_mod.FullScan, "__init__", counting)
    return scans


@pytest.mark.parametrize("workflow", [None, "wf", "other", "none-such"])
def test_the_index_answers_exactly_what_the_full_scan_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workflow: str | None
) -> None:
    h = home(tmp_path)
    slow = file_store(h, use_index=False).list_sessions(workflow)
    store = file_store(h)
    assert store.index() is not None  # built (reading every file once)
    scans = count_scans(monkeypatch)
    idx = store.index()
    assert idx is not None
    reads = idx.reads
    fast = store.list_sessions(workflow)
    assert fast == slow
    assert (scans, idx.reads) == ([], reads)  # no session file read for the answer
    assert [b.session_id for b in fast[1]] == ["s5", "s6", "s7", "s8"]
    if workflow == "wf":
        assert [s["session_id"] for s in fast[0]] == ["s1", "s2", "s4"]
        assert fast[0][0]["started_by"] == "ann" and fast[0][0]["accepted"] == 1


def test_a_changed_session_shows_its_new_summary(tmp_path: Path) -> None:
    h = home(tmp_path)
    store = file_store(h)
    assert store.list_sessions("wf")[0][0]["status"] == "active"
    write(store, session("s1", "wf", [], status="cancelled"))
    os.utime(store.sessions_dir / "s1.json", ns=(OLD + 10**9, OLD + 10**9))
    os.utime(store.sessions_dir, ns=(OLD + 10**9, OLD + 10**9))
    store.forget_index()
    assert store.list_sessions("wf")[0][0]["status"] == "cancelled"
    assert store.list_sessions("wf") == file_store(h, use_index=False).list_sessions("wf")


def test_a_broken_index_falls_back_to_the_full_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = home(tmp_path)
    want = file_store(h, use_index=False).list_sessions()
    store: FileStore = file_store(h)
    assert store.index() is not None
    monkeypatch.setattr(Index, "summaries", lambda *a: (_ for _ in ()).throw(
        __import__("sqlite3").DatabaseError("malformed")))  # fmt: skip
    scans = count_scans(monkeypatch)
    assert store.list_sessions() == want
    assert scans == [1]


def test_an_index_of_the_old_schema_is_rebuilt_with_summaries(tmp_path: Path) -> None:
    h = home(tmp_path)
    store = file_store(h)
    idx = store.index()
    assert idx is not None
    idx.db.execute("UPDATE meta SET value='3' WHERE key='schema'")
    idx.db.execute("UPDATE sessions SET summary=''")
    store.forget_index()
    assert store.list_sessions() == file_store(h, use_index=False).list_sessions()


def test_doctor_finds_a_kept_summary_that_differs_from_its_file(tmp_path: Path) -> None:
    h = home(tmp_path)
    store = file_store(h)
    idx = store.index()
    assert idx is not None
    idx.db.execute("UPDATE sessions SET summary=replace(summary, 'active', 'paused') WHERE id='s1'")
    store.forget_index()
    findings, _ = store.doctor()
    found = [f.message for f in findings if f.kind == "index"]
    assert len(found) == 1 and "session s1: summary" in found[0] and "paused" in found[0]
    findings, _ = store.doctor(repair=True)
    assert file_store(h).list_sessions() == file_store(h, use_index=False).list_sessions()
    assert not [f for f in store.doctor()[0] if f.kind == "index"]
