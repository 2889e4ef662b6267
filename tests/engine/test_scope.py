"""Trust scope in the engine: keys, a session's values, and the property that makes scopes
honest — a scoped history is exactly the unscoped history of each value's own sessions."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coachctl.engine import history, scope
from coachctl.engine.stores import file_store
from coachctl.errors import UsageError
from coachctl.store.files import FileStore
from tests.conftest import Cli, write_workflow

WORKFLOW = """
id: ship
variables:
  env: null
  region: eu
coaching:
  min_decisions: 2
  window: {window}
  strict: {strict}
  adopt_after: 10000  # learned suggestions are per step, shared by scopes: keep them out
{scope}steps:
  - id: build
    run: make
  - id: deploy
    run: echo {{{{ env }}}}
    coaching: {{threshold: 0.9}}
"""

DECISIONS = ("accept", "reject", "correct", "manual", "skip")


def test_keys_are_canonical() -> None:
    assert scope.key_of(None) == "" and scope.key_of({}) == ""
    assert scope.key_of({"region": "eu", "env": "prod"}) == '{"env":"prod","region":"eu"}'
    assert scope.parse_key('{"env":"prod","region":"eu"}') == {"env": "prod", "region": "eu"}
    assert scope.parse_key("") is None
    assert scope.label({"env": "prod", "region": None}) == "env=prod, region=(none)"
    assert scope.key_of({"env": "prod é"}) == '{"env":"prod é"}'


def test_a_session_counts_toward_what_it_recorded_else_its_variables() -> None:
    old = {"variables": {"env": "staging", "n": "1"}}
    assert scope.scope_of(old, ["env"]) == {"env": "staging"}
    assert scope.scope_of(old, ["zone"]) == {"zone": None}  # never had it: no scope asks
    new = {"variables": {"env": "staging"}, "scope": {"env": "staging"},
           "coaching": {"trust_scope": ["env"]}}  # fmt: skip
    assert scope.scope_key(new) == '{"env":"staging"}'  # its own recorded names by default
    assert scope.scope_key({"variables": {"env": "x"}}) == ""  # recorded no trust_scope
    hand_edited = {"variables": ["nonsense"], "scope": 3, "coaching": {"trust_scope": "env"}}
    assert scope.scope_key(hand_edited) == ""


def test_a_session_without_a_recorded_scope_counts_toward_its_variables_now() -> None:
    old = {"variables": {"env": "staging", "region": "eu"}, "coaching": {"trust_scope": []}}
    assert scope.counts_toward(old, []) == ""
    assert scope.counts_toward(old, ["env"]) == '{"env":"staging"}'
    assert scope.counts_toward(old, ["region", "env"]) == '{"env":"staging","region":"eu"}'
    assert scope.counts_toward(old, ["zone"]) == '{"zone":null}'  # no run can ask for it
    recorded = {"variables": {"env": "prod", "region": "us"}, "scope": {"env": "prod"},
                "coaching": {"trust_scope": ["env"]}}  # fmt: skip
    assert scope.counts_toward(recorded, ["env"]) == '{"env":"prod"}'
    assert scope.counts_toward(recorded, ["region"]) == '{"env":"prod"}'  # fixed at start
    assert scope.counts_toward(recorded, []) == '{"env":"prod"}'


def test_resolve_names_the_scope() -> None:
    assert scope.resolve("w", [], {}, {}) is None
    assert scope.resolve("w", ["env"], {"env": "dev"}, {}) == {"env": "dev"}
    assert scope.resolve("w", ["env"], {"env": None}, {"env": "prod"}) == {"env": "prod"}
    with pytest.raises(UsageError) as info:
        scope.resolve("w", ["env", "region"], {"env": None, "region": None}, {})
    assert str(info.value) == (
        "w: name the scope: --var env=… --var region=… (trust_scope variables without a default)"
    )


def _session(i: int, env: str, decisions: list[str], recorded: str) -> dict[str, Any]:
    """`recorded`: "" a session from before its workflow had a trust_scope; "names" one that
    recorded the trust_scope in its `coaching` but no `scope` (its variables say the value);
    "full" one that recorded both, as `run` does now."""
    steps = [
        {"id": "build", "name": "build", "run": "make", "suggestion": "make"},
        {"id": "deploy", "name": "deploy", "run": "echo {{ env }}",
         "suggestion": "echo {{ env }}", "coaching": {"threshold": 0.9}},
    ]  # fmt: skip
    rows = []
    for n, d in enumerate(decisions):
        step = steps[n % 2]
        rows.append(
            {
                "step_id": step["id"],
                "decision": d,
                "suggestion": step["suggestion"],
                "command": "x",
                "exit_code": 0,
                "outcome": "ok",
                "decided_by": "tester",
                "decided_at": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}.{n:06d}Z",
            }
        )
    data: dict[str, Any] = {
        "id": f"s{i:04d}",
        "workflow_id": "ship",
        "mode": "coaching",
        "status": "completed",
        "cursor": 2,
        "steps": steps,
        "decisions": rows,
        "variables": {"env": env, "region": "eu"},
        "coaching": {"min_decisions": 2, "adopt_after": 10000},
    }
    if recorded:
        data["coaching"]["trust_scope"] = ["env"]
    if recorded == "full":
        data["scope"] = {"env": env}
    return data


def _unscoped(data: dict[str, Any]) -> dict[str, Any]:
    """The same session as a workflow without trust_scope would have recorded it."""
    out = json.loads(json.dumps(data))
    out.pop("scope", None)
    out["coaching"].pop("trust_scope", None)
    return out


def _home(root: Path, sessions: list[dict[str, Any]], text: str, index: bool = True) -> FileStore:
    if not root.exists():
        root.mkdir()
        write_workflow(root, "ship", text)
        (root / "sessions").mkdir()
        for data in sessions:
            (root / "sessions" / f"{data['id']}.json").write_text(json.dumps(data))
    return file_store(root, use_index=index)


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in obj.items() if k not in ("scope",)}
    out["steps"] = [{k: v for k, v in s.items() if k != "scope"} for s in obj["steps"]]
    return out


HISTORY = st.lists(
    st.tuples(
        st.sampled_from(["staging", "prod", "dev"]),
        st.lists(st.sampled_from(DECISIONS), max_size=6),
        st.sampled_from(["", "names", "full"]),
    ),
    max_size=12,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history_=HISTORY, window=st.integers(1, 8), strict=st.booleans())
def test_scoped_history_is_the_union_of_unscoped_histories(
    history_: list[tuple[str, list[str], str]], window: int, strict: bool
) -> None:
    """Each scope's numbers are exactly those of a home holding only that value's sessions,
    unscoped; a session that recorded no trust_scope (it started before the workflow had
    one: `rec` "") counts toward the env in its variables like the others (issue 12)."""
    sessions = [_session(i, env, ds, rec) for i, (env, ds, rec) in enumerate(history_)]
    fmt = {"window": window, "strict": str(strict).lower()}
    scoped_text = WORKFLOW.format(scope="  trust_scope: [env]\n", **fmt)
    plain_text = WORKFLOW.format(scope="", **fmt)
    envs = sorted({env for env, _, _ in history_})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for index in (False, True):  # the full recomputation and the index agree on it too
            scoped = _home(root / "scoped", sessions, scoped_text, index)
            rep = history.report(scoped, ["ship"])
            seen = {w["scope"]["env"]: w for w in rep.workflows}
            assert sorted(seen) == (envs or [None])
            for env in envs:
                mine = [_unscoped(s) for s in sessions if s["variables"]["env"] == env]
                alone = _home(root / f"{env}-{index}", mine, plain_text, index)
                (want,) = history.report(alone, ["ship"]).workflows
                assert want["scope"] is None
                assert _comparable(seen[env]) == _comparable(want)
                one = history.report(scoped, ["ship"], given={"env": env}, one_scope=True)
                assert [_comparable(w) for w in one.workflows] == [_comparable(want)]
                alone.forget_index()  # close its SQLite files: hypothesis makes many
                shutil.rmtree(root / f"{env}-{index}")
            scoped.forget_index()


def test_unscoped_numbers_do_not_change_with_values(tmp_path: Path) -> None:
    """Without a trust_scope every session counts once, whatever its variables."""
    sessions = [_session(i, env, ["accept"] * 4, "") for i, env in
                enumerate(["a", "b", "a", "c"])]  # fmt: skip
    store = _home(tmp_path / "h", sessions, WORKFLOW.format(scope="", window=50, strict="false"))
    (w,) = history.report(store, ["ship"]).workflows
    assert (w["scope"], w["sessions"], w["accepted"]) == (None, 4, 16)


SCOPED_CLI = """
id: fast
variables: {env: null}
coaching: {min_decisions: 2, strict: false, trust_scope: [env]}
steps:
  - id: one
    run: echo {{ env }}
"""


def test_level_changed_is_per_scope(cli: Cli, home: Path) -> None:
    write_workflow(home, "fast", SCOPED_CLI)
    for env in ("staging", "staging", "prod", "prod"):
        sid = cli.start("fast", "--var", f"env={env}")
        assert cli("decide", sid, "accept", "--no-exec").exit_code == 0
    lines = (home / "sessions" / "events.jsonl").read_text().splitlines()
    changed = [json.loads(x) for x in lines if '"level_changed"' in x]
    assert [(e["step_id"], e["from"], e["to"], e["scope"]) for e in changed] == [
        ("one", "COACHING", "AUTO", {"env": "staging"}),
        (None, "COACHING", "AUTO", {"env": "staging"}),
        ("one", "COACHING", "AUTO", {"env": "prod"}),
        (None, "COACHING", "AUTO", {"env": "prod"}),
    ]
    # The staging AUTO never leaked into prod: the prod session asked a person, twice.
    doctor = cli("doctor")
    assert doctor.exit_code == 0, doctor.output


OWN = """
id: ship
variables: {{env: x, region: eu}}
coaching: {{min_decisions: {md}, window: {win}, strict: {strict}, threshold: {th}}}
steps:
  - id: build
    run: make
  - id: deploy
    run: echo {{{{ env }}}}{own}
"""


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    decisions=st.lists(st.sampled_from(DECISIONS), max_size=40),
    base=st.tuples(
        st.integers(1, 6), st.integers(1, 8), st.booleans(), st.sampled_from([0.5, 0.85])
    ),
    own=st.fixed_dictionaries(
        {},
        optional={
            "min_decisions": st.integers(1, 6),
            "window": st.integers(1, 8),
            "strict": st.booleans(),
            "threshold": st.sampled_from([0.6, 0.95, 1.0]),
        },
    ),
)
def test_a_steps_own_rules_equal_a_workflow_written_with_them(
    decisions: list[str], base: tuple[int, int, bool, float], own: dict[str, Any]
) -> None:
    """A step's own `coaching:` acts exactly as if the workflow's block said those values."""
    md, win, strict, th = base
    sessions = [_session(i, "x", [d, d], "") for i, d in enumerate(decisions)]
    for data in sessions:  # the snapshot carries the step's own block as the file says it
        data["steps"][1]["coaching"] = dict(own)
    fields = {"md": md, "win": win, "strict": str(strict).lower(), "th": th}
    inline = ", ".join(f"{k}: {str(v).lower()}" for k, v in own.items())
    with tempfile.TemporaryDirectory() as tmp:
        with_own = _home(
            Path(tmp) / "a",
            sessions,
            OWN.format(own=f"\n    coaching: {{{inline}}}" if own else "", **fields),
        )
        merged = {
            "md": own.get("min_decisions", md),
            "win": own.get("window", win),
            "strict": str(own.get("strict", strict)).lower(),
            "th": own.get("threshold", th),
        }
        written = _home(Path(tmp) / "b", sessions, OWN.format(own="", **merged))
        for index in (False, True):
            with_own = _home(Path(tmp) / "a", sessions, "", index)
            written = _home(Path(tmp) / "b", sessions, "", index)
            (a,) = history.report(with_own, ["ship"]).workflows
            (b,) = history.report(written, ["ship"]).workflows
            deploy_a = {k: v for k, v in a["steps"][1].items() if k != "rules"}
            assert deploy_a == b["steps"][1]
            if own:
                assert a["steps"][1]["rules"] == b["rules"]
            with_own.forget_index()
            written.forget_index()


def test_scopes_seen_come_from_the_kept_summaries_not_the_session_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which scopes a workflow has seen, with their session counts and trends, is read from
    the store's session summaries (the index), so a warm `stats` re-reads no session file."""
    import os
    import time

    from coachctl.store.files import full

    sessions = [_session(i, env, ["accept"] * 4, "full") for i, env in
                enumerate(["staging", "prod", "dev", "prod"])]  # fmt: skip
    text = WORKFLOW.format(scope="  trust_scope: [env]\n", window=50, strict="false")
    store = _home(tmp_path / "h", sessions, text)
    old = time.time_ns() - 10**10  # older than the index's racy second: never re-read
    for path in [*(tmp_path / "h" / "sessions").glob("*.json"), tmp_path / "h" / "sessions"]:
        os.utime(path, ns=(old, old))
    history.report(store, ["ship"])  # builds the index, as any command does
    warm = file_store(tmp_path / "h")
    scans: list[int] = []
    real = full.FullScan.__init__

    def scanning(self: Any, *args: Any, **kw: Any) -> None:
        scans.append(1)
        real(self, *args, **kw)

    monkeypatch.setattr(full.FullScan, "__init__", scanning)
    monkeypatch.setattr(FileStore, "iter_sessions", lambda *a, **k: iter(()))
    rows = history.report(warm, ["ship"]).workflows
    assert sorted(str(w["scope"]["env"]) for w in rows) == ["dev", "prod", "staging"]
    assert {str(w["scope"]["env"]): w["sessions"] for w in rows} == {
        "dev": 1,
        "prod": 2,
        "staging": 1,
    }
    assert scans == []
    idx = warm.index()
    assert idx is not None and idx.reads == 0
