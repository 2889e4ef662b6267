"""The one-pass derive (`records_fast.fast_derive`) against the full path it stands in for
(`read_session_bytes` + `rows_of`): on every session, generated or hand-broken, it gives
either exactly the full path's rows or None (then the full path decides), and it never lets
through a file the full path refuses."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from coachctl.engine.records import checked_derive
from coachctl.engine.records_fast import fast_derive
from coachctl.errors import CoachctlError
from coachctl.store.files.records import read_session_bytes, rows_of, session_row

ODD: list[Any] = [None, True, False, 0, -1, 2, 1.5, "", "x", [], [1], {}, {"a": 1}]


def full(obj: Any) -> Any:
    """The full path's answer: its rows, or the error it refuses the file with."""
    try:
        data, derived = read_session_bytes(json.dumps(obj).encode(), "f.json", checked_derive)
    except CoachctlError as exc:
        return ("refused", exc.message)
    return rows_of(data, derived)


def check(obj: Any) -> Any:
    """fast_rows agrees with the full path (rows equal; a refused file is never rows) or
    steps aside; returns its answer."""
    fast = fast_rows(json.loads(json.dumps(obj)))
    want = full(obj)
    if fast is not None:
        assert fast == want
    return fast


def fast_rows(obj: Any) -> Any:
    """`fast_derive` as the cold build stores it: the session's index row and its rows."""
    got = fast_derive(obj)
    return None if got is None else (session_row(obj, got[0]), got[1])


def dec(**kw: Any) -> dict[str, Any]:
    base = {
        "step_id": "a",
        "decision": "accept",
        "suggestion": "echo a",
        "command": "echo a",
        "decided_at": "2025-01-01T00:00:00Z",
        "decided_by": "ann",
        "mode": "coaching",
        "outcome": None,
        "seq": 7,
    }
    return {**base, **kw}


DECISIONS = [
    dec(),
    dec(decision="reject"),
    dec(decision="correct", command="echo fixed"),  # teaches
    dec(decision="correct", outcome="failed"),
    dec(decision="manual", suggestion=None, command="make"),  # teaches (observed)
    dec(decision="manual", suggestion=None, command="  "),
    dec(decision="manual"),  # a suggestion was there: teaches nothing
    dec(decision="skip"),
    dec(outcome="failed"),
    dec(outcome="interrupted"),
    dec(mode="observation", decision="manual", suggestion=None),
    dec(decided_by="auto"),
    dec(decided_by="auto", outcome="failed"),
    dec(decided_by="auto", decision="correct", command="x"),
    dec(decision="nonsense"),
    dec(decision=["accept"]),
    dec(step_id=None),
    dec(step_id=3, decision="correct"),
    dec(suggestion=5),
    dec(seq=True),
    dec(seq=-4),
    dec(seq="9"),
    dec(seq=None, decided_at="2024-05-01T10:00:00.5Z"),
    {k: v for k, v in dec().items() if k not in ("seq", "decided_at")},
    dec(decided_at=12),
    {"decision": "accept"},
]


def session(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "m0000001-abcd",
        "workflow_id": "wf",
        "mode": "coaching",
        "status": "active",
        "cursor": 1,
        "steps": [{"id": "a"}, {"id": "b"}],
        "decisions": list(DECISIONS),
        "coaching": {"min_decisions": 2},
        "variables": {"env": "prod"},
        "created_at": "2025-01-01T00:00:00Z",
        "updated_at": "2025-01-01T00:01:00Z",
        "started_by": "ann",
        "schema_version": 1,
    }
    return {**base, **kw}


def test_the_plain_shapes_take_the_fast_path_with_the_full_paths_rows() -> None:
    for obj in (
        session(),
        session(decisions=[]),
        session(coaching={"trust_scope": ["env", "region"]}, scope={"region": "eu"}),
        session(coaching={"trust_scope": ["env"]}, variables={}),
        session(status="completed", cursor=2, mode="auto"),
        session(cursor=-3),
        session(cursor=99),
        {k: v for k, v in session().items() if k not in ("decisions", "schema_version")},
        session(extra_field={"kept": True}),
    ):
        assert check(obj) is not None, obj  # the fast path must not just step aside
    for d in DECISIONS:  # each alone: whether it teaches decides the session's folds
        assert check(session(decisions=[d])) is not None, d


def test_every_hand_broken_field_is_refused_or_agreed_on() -> None:
    """Each top-level and decision field set to each odd value, and each one removed."""
    stepped_aside = 0
    base = session()
    for key in [*base, "steps.0", "steps.0.id", "coaching.trust_scope"]:
        for value in [*ODD, "<removed>"]:
            obj = json.loads(json.dumps(base))
            target, name = obj, key
            if "." in key:
                parts = key.split(".")
                for part in parts[:-1]:
                    target = target[int(part)] if part.isdigit() else target[part]
                name = parts[-1]
            if value == "<removed>":
                if isinstance(target, dict):
                    target.pop(name, None)
            elif isinstance(target, list):
                target[int(name)] = value
            else:
                target[name] = value
            stepped_aside += check(obj) is None  # check: refused files never get through
    assert stepped_aside > 30  # the odd values did reach the refusals
    for i, _ in enumerate(DECISIONS):
        for value in ODD:
            obj = session()
            obj["decisions"] = [*DECISIONS[:i], value, *DECISIONS[i + 1 :]]
            check(obj)


def test_what_the_full_path_refuses_the_fast_path_never_accepts() -> None:
    refused = [
        session(mode="turbo"),
        session(status="gone"),
        session(cursor="1"),
        session(steps=[{"name": "no id"}]),
        session(steps={"a": 1}),
        session(decisions=[1]),
        session(decisions={"a": 1}),
        session(schema_version=99),
        session(schema_version="1"),
        session(id=5),
        session(workflow_id=None),
        {k: v for k, v in session().items() if k != "steps"},
        [session()],
    ]
    for obj in refused:
        assert full(obj)[0] == "refused", obj
        assert fast_rows(json.loads(json.dumps(obj))) is None, obj


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**16) | st.sampled_from(["", "a", "b", "accept"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
FIELD = st.sampled_from(
    ["decision", "outcome", "decided_by", "mode", "step_id", "suggestion", "command", "seq"]
)
VALUES = {
    "decision": st.sampled_from(["accept", "reject", "correct", "manual", "skip", "x"]),
    "outcome": st.sampled_from([None, "failed", "interrupted", "ok"]),
    "decided_by": st.sampled_from(["ann", "auto"]),
    "mode": st.sampled_from(["coaching", "observation", "auto"]),
    "step_id": st.sampled_from(["a", "b"]),
    "suggestion": st.sampled_from([None, "echo a", "echo b"]),
    "command": st.sampled_from(["echo a", "", " ", "make"]),
    "seq": st.integers(-2, 10**15),
}
DECISION = st.fixed_dictionaries({}, optional={k: v | JSON for k, v in VALUES.items()})


@settings(max_examples=400, deadline=None)
@given(
    decisions=st.lists(DECISION, max_size=6) | JSON,
    top=st.dictionaries(
        st.sampled_from(
            ["mode", "status", "cursor", "steps", "coaching", "variables", "scope", "id"]
        ),
        JSON,
        max_size=2,
    ),
    scoped=st.booleans(),
)
def test_generated_sessions_agree(decisions: Any, top: dict[str, Any], scoped: bool) -> None:
    obj = session(decisions=decisions)
    if scoped:
        obj["coaching"] = {"trust_scope": ["env"]}
    obj.update(top)
    check(obj)


def test_the_engine_hands_it_to_the_file_store(tmp_path: Any) -> None:
    """Without it a cold build still gives the same rows, only slower: so check the wiring."""
    from coachctl.engine.stores import file_store

    load = file_store(tmp_path).fast_derive
    assert load is not None and load() is fast_derive
