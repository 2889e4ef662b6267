"""The derived index: equal to a full recomputation, notices file changes, heals itself."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coachctl.engine import history
from coachctl.engine.records import checked_derive
from coachctl.engine.stores import file_store
from coachctl.store.files import FileStore
from coachctl.store.files.full import FullScan
from coachctl.store.files.index import Index
from coachctl.store.files.records import rows_of

OLD = time.time_ns() - 10**10  # an mtime well outside the racy window


def session(sid: str, wf: str, decisions: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": sid,
        "workflow_id": wf,
        "mode": "coaching",
        "status": "active",
        "cursor": 0,
        "steps": [{"id": "a", "suggestion": "echo a"}, {"id": "b", "suggestion": "echo b"}],
        "decisions": decisions,
        "coaching": {"min_decisions": 2, "strict": False},
        "schema_version": 1,
        **extra,
    }


def decision(step: str, kind: str, suggestion: str | None, at: str, **extra: Any) -> dict[str, Any]:
    return {"step_id": step, "decision": kind, "suggestion": suggestion, "decided_at": at, **extra}


def write(store: FileStore, data: dict[str, Any], *, age: bool = True) -> Path:
    store.ensure()
    path = store.sessions_dir / f"{data['id']}.json"
    path.write_text(json.dumps(data))
    if age:
        os.utime(path, ns=(OLD, OLD))
        os.utime(store.sessions_dir, ns=(OLD, OLD))
    return path


def age_dir(store: FileStore) -> None:
    os.utime(store.sessions_dir, ns=(OLD, OLD))


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    s = file_store(tmp_path / "h")
    s.ensure()
    return s


def rows(idx: Index) -> tuple[Any, Any]:
    return idx.session_rows(), idx.decision_rows()


def expected_rows(store: FileStore) -> tuple[Any, Any]:
    srows, drows = {}, {}
    for found in FullScan(store).sessions.values():
        for data, derived in found:
            s, d = rows_of(data, derived)
            srows[s[0]] = s
            if d:
                drows[s[0]] = d
    return srows, drows


def kinds(idx: Index, wf: str, step: str, suggestion: str, window: int = 50) -> list[str]:
    key = (wf, step, suggestion, "", window)
    return idx.windows([key])[key]


def both_reports(store: FileStore) -> tuple[dict[str, Any], dict[str, Any]]:
    fast = history.report(file_store(store.home)).to_json()
    slow = history.report(file_store(store.home, use_index=False)).to_json()
    return fast, slow


# -- index == full recomputation (hypothesis) ------------------------------------------

KIND = st.sampled_from(["accept", "reject", "correct", "manual", "skip", "accept-failed", "auto"])
DEC = st.tuples(
    st.sampled_from(["a", "b"]),
    KIND,
    st.sampled_from(["echo a", "echo b", "old", None]),
    st.integers(0, 40),  # decided_at: ties on purpose
)
SESSION = st.tuples(st.sampled_from(["w1", "w2"]), st.lists(DEC, max_size=8))


def to_decision(step: str, kind: str, sugg: str | None, t: int) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if kind == "accept-failed":
        kind, extra = "accept", {"outcome": "failed"}
    elif kind == "auto":
        kind, extra = "accept", {"decided_by": "auto", "outcome": "failed" if t % 2 else "ok"}
    return decision(step, kind, sugg, f"2025-01-01T00:00:{t:02d}Z", **extra)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    first=st.lists(SESSION, min_size=1, max_size=6),
    edits=st.lists(st.tuples(st.integers(0, 5), st.one_of(st.none(), SESSION)), max_size=4),
)
def test_index_equals_full_recomputation(
    tmp_path_factory: pytest.TempPathFactory, first: list[Any], edits: list[Any]
) -> None:
    home = tmp_path_factory.mktemp("h")
    store = file_store(home)
    store.ensure()
    (home / "workflows").mkdir()
    for wf in ("w1", "w2"):
        steps = "".join(f"  - id: {s}\n    run: echo {s}\n" for s in ("a", "b"))
        (home / "workflows" / f"{wf}.yaml").write_text(
            f"id: {wf}\ncoaching:\n  min_decisions: 2\n  window: 5\n  strict: false\n"
            f"steps:\n{steps}"
        )
    ids = [f"s{i:03d}" for i in range(len(first))]
    for sid, (wf, decs) in zip(ids, first, strict=True):
        write(store, session(sid, wf, [to_decision(*d) for d in decs]))
    fast, slow = both_reports(store)
    assert fast == slow
    for n, (i, new) in enumerate(edits):
        sid = ids[i % len(ids)]
        path = store.sessions_dir / f"{sid}.json"
        if new is None:
            path.unlink(missing_ok=True)
        else:
            wf, decs = new
            write(store, session(sid, wf, [to_decision(*d) for d in decs], status="paused"))
            os.utime(path, ns=(OLD + n + 1, OLD + n + 1))  # a changed file: a new mtime
        age_dir(store)
        store.sessions_dir.touch()  # the folder moved (a rename or a removal)
        os.utime(store.sessions_dir, ns=(OLD + 100 + n, OLD + 100 + n))
        fast, slow = both_reports(store)
        assert fast == slow
        idx = Index.open(store)
        assert rows(idx) == expected_rows(store)
        idx.close()


# -- refresh notices changes ------------------------------------------------------------


def test_refresh_notices_added_changed_removed(store: FileStore) -> None:
    write(store, session("s1", "w", [decision("a", "accept", "echo a", "t1")]))
    write(store, session("s2", "w", []))
    idx = Index.open(store)
    age_dir(store)  # opening made sessions/.index/
    r = idx.refresh()
    assert (r.scanned, r.added, r.changed, r.removed) == (True, ["s1", "s2"], [], [])
    assert idx.refresh().scanned is False  # nothing moved: one stat of the folder

    write(store, session("s1", "w", [decision("a", "reject", "echo a", "t1")]))
    os.utime(store.sessions_dir / "s1.json", ns=(OLD + 5, OLD + 5))
    (store.sessions_dir / "s2.json").unlink()
    write(store, session("s3", "w", []))
    os.utime(store.sessions_dir, ns=(OLD + 9, OLD + 9))
    r = idx.refresh()
    assert (r.added, r.changed, r.removed) == (["s3"], ["s1"], ["s2"])
    assert kinds(idx, "w", "a", "echo a") == ["rejected"]
    assert sorted(idx.session_rows()) == ["s1", "s3"]


def test_refresh_reports_unreadable_files_without_raising(store: FileStore) -> None:
    write(store, session("s1", "w", []))
    (store.sessions_dir / "bad1.json").write_text("{not json")
    (store.sessions_dir / "bad2.json").write_text(json.dumps({"id": "bad2", "workflow_id": "w2"}))
    idx = Index.open(store)
    r = idx.refresh()
    assert [(b.session_id, b.workflow_id) for b in r.bad] == [("bad1", None), ("bad2", "w2")]
    assert "not valid JSON" in r.bad[0].reason
    assert r.bad[0].path == str(store.sessions_dir / "bad1.json")


def test_young_files_are_reread(store: FileStore) -> None:
    """A file written within the racy second is not trusted by its stat alone: a rewrite
    with the same size and mtime in that second is still noticed."""
    path = store.sessions_dir / "s1.json"
    path.write_text(json.dumps(session("s1", "w", [decision("a", "accept", "echo a", "t")])))
    st = path.stat()
    idx = Index.open(store)
    idx.refresh()
    path.write_text(json.dumps(session("s1", "w", [decision("a", "reject", "echo a", "t")])))
    assert path.stat().st_size == st.st_size
    os.utime(path, ns=(st.st_mtime_ns, st.st_mtime_ns))
    idx.refresh(force_scan=True)
    assert kinds(idx, "w", "a", "echo a") == ["rejected"]


# -- self-healing -------------------------------------------------------------------------


def test_missing_index_is_rebuilt(store: FileStore) -> None:
    write(store, session("s1", "w1", [decision("a", "accept", "echo a", "t")]))
    idx = Index.open(store)
    idx.refresh()
    idx.close()
    idx.discard()
    idx = Index.open(store)
    assert not idx.complete
    idx.refresh()
    assert kinds(idx, "w1", "a", "echo a") == ["accepted"]


@pytest.mark.parametrize(
    "garbage", [b"", b"not a database at all" * 100, b"SQLite format 3\x00junk"]
)
def test_corrupt_index_is_rebuilt_silently(store: FileStore, garbage: bytes) -> None:
    write(store, session("s1", "w1", [decision("a", "accept", "echo a", "t")]))
    idx = Index.open(store)
    idx.refresh()
    idx.close()
    idx.path.write_bytes(garbage)
    idx = Index.open(store)
    idx.refresh()
    assert kinds(idx, "w1", "a", "echo a") == ["accepted"]


def test_index_broken_mid_query_falls_back_to_files(store: FileStore) -> None:
    write(store, session("s1", "w1", [decision("a", "accept", "echo a", "t")]))
    idx = store.index()
    assert idx is not None
    idx.refresh()
    idx.db.execute("DROP TABLE decisions")  # broken under our feet
    rep = history.report(store, ["w1"])
    assert [(w["workflow_id"], w["accepted"], w["source"]) for w in rep.workflows] == [
        ("w1", 1, "sessions")
    ]
    assert store.index() is not idx  # the broken one was let go


def test_unwritable_index_falls_back_without_failing(
    store: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from coachctl.store.files import index as index_mod
    from coachctl.store.files.index_db import IndexUnavailable

    def refuse(self: Index) -> None:
        raise IndexUnavailable("read-only")

    monkeypatch.setattr(index_mod.Index, "_connect", refuse)
    write(store, session("s1", "w1", [decision("a", "accept", "echo a", "t")]))
    assert store.index() is None
    with store.transaction("s1") as txn:  # a write without an index still commits
        data = session("s1", "w1", [])
        txn.save(data, checked_derive(data))
        assert history.level_changes(txn, data) == []
    assert store.load("s1")["decisions"] == []


# -- the incremental path -------------------------------------------------------------------


def test_update_reads_no_other_file(store: FileStore) -> None:
    for i in range(5):
        write(store, session(f"s{i}", "w1", [decision("a", "accept", "echo a", f"t{i}")]))
    idx = Index.open(store)
    idx.refresh()
    reads = idx.reads
    for i in range(5):  # now every other file is unreadable: update must not care
        (store.sessions_dir / f"s{i}.json").write_text("{broken")
    data = session("s9", "w1", [decision("a", "reject", "echo a", "t9")])
    write(store, data)
    idx.update(data, checked_derive(data))
    assert idx.reads == reads
    assert kinds(idx, "w1", "a", "echo a") == ["accepted"] * 5 + ["rejected"]


def test_a_transaction_records_level_changed_when_a_step_reaches_auto(store: FileStore) -> None:
    data = session("s1", "w1", [])
    write(store, data)
    assert store.index() is not None

    def commit() -> list[tuple[Any, ...]]:
        with store.transaction("s1") as txn:
            txn.save(data, checked_derive(data))
            events = history.level_changes(txn, data)
        return [(e["step_id"], e["from"], e["to"]) for e in events]

    assert commit() == []  # first sight: levels recorded, no event
    data["decisions"].append(decision("a", "accept", "echo a", "t1"))
    assert commit() == []
    data["decisions"].append(decision("a", "accept", "echo a", "t2"))
    assert commit() == [("a", "COACHING", "AUTO")]
    for i in (3, 4):
        data["decisions"].append(decision("b", "accept", "echo b", f"t{i}"))
    assert commit() == [("b", "COACHING", "AUTO"), (None, "COACHING", "AUTO")]
