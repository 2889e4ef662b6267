"""history: the index-backed paths agree with full recomputation; decide stays O(1)."""

from __future__ import annotations

import builtins
import json
import os
from pathlib import Path
from typing import Any

import pytest

from coachctl.engine import deciding, history, persist, views
from coachctl.engine.stores import file_store
from coachctl.engine.workflow_load import load_workflow
from tests.conftest import Cli, write_workflow

FAST = """
id: fast
coaching:
  min_decisions: 3
  strict: false
steps:
  - id: one
    run: echo one
  - id: two
    run: echo two
"""


@pytest.fixture
def fast(home: Path) -> Path:
    write_workflow(home, "fast", FAST)
    return home


def accept_all(cli: Cli, sid: str, n: int = 2) -> None:
    for _ in range(n):
        r = cli("decide", sid, "accept", "--no-exec")
        assert r.exit_code == 0, r.stderr


def level_events(home: Path) -> list[tuple[Any, ...]]:
    lines = (home / "sessions" / "events.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    return [
        (e["workflow_id"], e["step_id"], e["from"], e["to"])
        for e in events
        if e["event"] == "level_changed"
    ]


def test_level_changed_is_logged_when_steps_reach_auto(cli: Cli, fast: Path) -> None:
    for _ in range(2):
        accept_all(cli, cli.start("fast"))
    assert level_events(fast) == []
    sid = cli.start("fast")
    accept_all(cli, sid)
    assert level_events(fast) == [
        ("fast", "one", "COACHING", "AUTO"),
        ("fast", "two", "COACHING", "AUTO"),
        ("fast", None, "COACHING", "AUTO"),
    ]
    events = [json.loads(x) for x in (fast / "sessions" / "events.jsonl").read_text().splitlines()]
    changed = [e for e in events if e["event"] == "level_changed"]
    assert {e["session_id"] for e in changed} == {sid}
    assert all(set(e) == {"ts", "event", "session_id", "workflow_id", "step_id", "from", "to"}
               for e in changed)  # fmt: skip


def test_level_falls_back_after_a_reject(cli: Cli, fast: Path) -> None:
    for _ in range(3):
        accept_all(cli, cli.start("fast"))
    sid = cli.start("fast")
    for _ in range(2):
        assert cli("decide", sid, "reject").exit_code == 0
    assert level_events(fast)[-3:] == [
        ("fast", "one", "AUTO", "COACHING"),
        ("fast", None, "AUTO", "COACHING"),
        ("fast", "two", "AUTO", "COACHING"),
    ]


def test_state_level_and_metrics_agree_with_full_recomputation(cli: Cli, fast: Path) -> None:
    for ds in (("accept", "accept"), ("reject", "skip"), ("accept", "accept"), ("accept",)):
        sid = cli.start("fast")
        for d in ds:
            assert cli("decide", sid, d, "--no-exec").exit_code == 0
    store, full = file_store(fast), file_store(fast, use_index=False)
    wf = load_workflow(fast / "workflows" / "fast.yaml")
    assert history.workflow_metrics(store, wf) == history.workflow_metrics(full, wf)
    session = persist.load(store, sid)
    step = session.current_step
    assert step is not None
    assert history.step_level(store, session, step) == history.step_level(full, session, step)


def test_decide_reads_no_other_session_file(
    cli: Cli, fast: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decide path (commit → after_write, state → step_level) never scans sessions/."""
    others = []
    for _ in range(4):
        sid = cli.start("fast")
        accept_all(cli, sid, 1)
        others.append(sid)
    sid = cli.start("fast")
    assert cli("stats").exit_code == 0  # the index exists and is complete
    sessions = fast / "sessions"
    touched: list[str] = []
    real_open, real_read, real_scandir, real_listdir = (
        builtins.open,
        Path.read_bytes,
        os.scandir,
        os.listdir,
    )

    def spy_open(file: Any, *a: Any, **k: Any) -> Any:
        touched.append(str(file))
        return real_open(file, *a, **k)

    def spy_read(self: Path) -> bytes:
        touched.append(str(self))
        return real_read(self)

    def spy_dir(path: Any = ".") -> Any:
        if Path(path) == sessions:
            touched.append(f"scan {path}")
        return real_scandir(path)

    def spy_list(path: Any = ".") -> Any:
        if Path(path) == sessions:
            touched.append(f"list {path}")
        return real_listdir(path)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(Path, "read_bytes", spy_read)
    monkeypatch.setattr(os, "scandir", spy_dir)
    monkeypatch.setattr(os, "listdir", spy_list)
    store = file_store(fast)
    outcome = deciding.decide(store, sid, "accept", no_exec=True)
    state = views.state(store, outcome.session)
    assert state["step"]["level"] == "COACHING"
    read = {t for t in touched if t.endswith(".json") or t.startswith(("scan", "list"))}
    assert read == {str(sessions / f"{sid}.json")}


def test_after_write_never_fails_a_decision(
    cli: Cli, fast: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from coachctl.store.files.index import Index

    def boom(*a: Any, **k: Any) -> Any:
        raise RuntimeError("disk on fire")

    sid = cli.start("fast")
    monkeypatch.setattr(Index, "update", boom)
    r = cli("decide", sid, "accept", "--no-exec")
    assert r.exit_code == 0, r.stderr
    monkeypatch.undo()
    assert cli.json("stats", "fast")["workflows"][0]["accepted"] == 1  # refresh noticed it


def test_unusable_index_recomputes(cli: Cli, fast: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from coachctl.store.files import index

    sid = cli.start("fast")
    accept_all(cli, sid)

    def refuse(self: Any) -> None:
        raise index.IndexUnavailable("read-only")

    monkeypatch.setattr(index.Index, "_connect", refuse)
    store = file_store(fast)
    assert store.index() is None
    sid = cli.start("fast")
    accept_all(cli, sid)
    out = cli.json("stats", "fast")["workflows"][0]
    assert (out["sessions"], out["accepted"]) == (2, 4)


def test_rules_overrides() -> None:
    rules = history.rules_of({"threshold": 0.9, "window": 10}, min_decisions=4, strict=None)
    assert (rules.threshold, rules.min_decisions, rules.window, rules.strict) == (0.9, 4, 10, True)
    with pytest.raises(ValueError):
        history.rules_of({}, threshold=2)
