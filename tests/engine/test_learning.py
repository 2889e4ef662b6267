"""Correction packs: learning from observations, adopting corrections, staleness, idempotence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coachctl.engine import corrections, learning, pack_share, scope
from coachctl.engine.records import derive
from coachctl.engine.stores import file_store
from coachctl.engine.workflow import Workflow
from coachctl.engine.workflow_load import load_workflow
from coachctl.errors import UsageError
from coachctl.store.files import FileStore
from tests.conftest import write_workflow

WF = """\
id: wf
variables:
  x: one
coaching:
  min_observations: {min_obs}
  adopt_after: 2
  window: {window}
steps:
  - id: build
    run: echo {{{{ x }}}}
  - id: notify
    instructions: tell people
"""


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return file_store(tmp_path / "home")


def workflow(
    store: FileStore, min_obs: int = 3, window: int = 50, text: str | None = None
) -> Workflow:
    path = write_workflow(store.home, "wf", text or WF.format(min_obs=min_obs, window=window))
    return load_workflow(path)


def session(sid: str, wf: Workflow, decisions: list[dict[str, Any]]) -> dict[str, Any]:
    steps = []
    for s in wf.steps:
        data = s.to_dict()
        data["suggestion"] = s.run
        data["command"] = "echo one" if s.run else None
        steps.append(data)
    return {
        "id": sid,
        "workflow_id": wf.id,
        "mode": "coaching",
        "status": "active",
        "cursor": 0,
        "steps": steps,
        "decisions": decisions,
        "coaching": wf.coaching.to_dict(),
        "variables": {"x": "one"},
        "created_at": f"2024-01-01T00:00:{sid[-2:]}Z",
    }


_clock = [0]


def _at() -> str:
    _clock[0] += 1
    return f"2024-01-01T00:00:00.{_clock[0]:06d}Z"


def manual(command: str, step: str = "notify", suggestion: str | None = None) -> dict[str, Any]:
    return {
        "step_id": step,
        "decision": "manual",
        "suggestion": suggestion,
        "command": command,
        "outcome": None,
        "decided_by": "tester",
        "decided_at": _at(),
    }


def correct(command: str, base: str = "echo {{ x }}", outcome: str = "ok") -> dict[str, Any]:
    return {
        "step_id": "build",
        "decision": "correct",
        "suggestion": base,
        "command": command,
        "outcome": outcome,
        "exit_code": 0 if outcome == "ok" else 1,
        "decided_by": "tester",
        "decided_at": _at(),
    }


def suggestion(store: FileStore, wf: Workflow, step_id: str) -> tuple[str | None, str | None]:
    step = next(s for s in wf.steps if s.id == step_id)
    return corrections.current_suggestion(store, wf, step)


def write(store: FileStore, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Save a session through a real transaction, folding it into its pack as `decide`
    does; the suggestion_adopted events it stages."""
    if not store.exists(data["id"]):
        store.create({**data, "decisions": []}, [])
    with store.transaction(data["id"]) as txn:
        txn.save(data, derive(data))
        return corrections.fold_into(store, txn, data)


def feed(
    store: FileStore, wf: Workflow, sid: str, decisions: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    return write(store, session(sid, wf, decisions))


def pack_file(store: FileStore) -> Path:
    return store.sessions_dir / "packs" / "wf.json"


# -- observations --------------------------------------------------------------------------


def test_learns_after_min_observations(store: FileStore) -> None:
    wf = workflow(store, min_obs=3)
    assert suggestion(store, wf, "notify") == (None, None)
    assert feed(store, wf, "s-01", [manual("post ok")]) == []
    assert feed(store, wf, "s-02", [manual("post ok")]) == []
    assert suggestion(store, wf, "notify") == (None, None)
    events = feed(store, wf, "s-03", [manual("post ok")])
    assert [(e["event"], e["step_id"], e["command"], e["source"]) for e in events] == [
        ("suggestion_adopted", "notify", "post ok", "observed")
    ]
    assert events[0]["session_id"] == "s-03" and events[0]["workflow_id"] == "wf"
    assert suggestion(store, wf, "notify") == ("post ok", "learned")
    assert suggestion(store, wf, "build") == ("echo {{ x }}", "run")


def test_the_most_frequent_wins_and_a_tie_teaches_nothing(store: FileStore) -> None:
    wf = workflow(store, min_obs=2)
    feed(store, wf, "s-01", [manual("a"), manual("b"), manual("a"), manual("b")])
    assert suggestion(store, wf, "notify") == (None, None)  # 2 and 2: a tie
    events = feed(store, wf, "s-02", [manual("b")])
    assert [e["command"] for e in events] == ["b"]
    assert suggestion(store, wf, "notify") == ("b", "learned")


def test_only_the_window_counts(store: FileStore) -> None:
    wf = workflow(store, min_obs=2, window=2)
    for i, cmd in enumerate(["a", "b", "c", "a", "b"]):
        feed(store, wf, f"s-{i:02d}", [manual(cmd)])
    assert suggestion(store, wf, "notify") == (None, None)  # a twice, but never in 2 in a row
    feed(store, wf, "s-09", [manual("b")])
    assert suggestion(store, wf, "notify") == ("b", "learned")


def test_manual_on_a_step_with_a_suggestion_is_not_an_observation(store: FileStore) -> None:
    wf = workflow(store, min_obs=1)
    feed(store, wf, "s-01", [manual("make", step="build", suggestion="echo {{ x }}")])
    assert suggestion(store, wf, "build") == ("echo {{ x }}", "run")
    assert not pack_file(store).exists()


def test_a_session_with_nothing_to_teach_touches_no_file(store: FileStore) -> None:
    wf = workflow(store)
    accept = dict(correct("x"), decision="accept", command="echo one")
    assert feed(store, wf, "s-01", [accept, dict(manual("x"), command=None)]) == []
    assert not (store.sessions_dir / "packs").exists()


# -- corrections ---------------------------------------------------------------------------


def test_a_correction_given_adopt_after_times_is_adopted(store: FileStore) -> None:
    wf = workflow(store)
    assert feed(store, wf, "s-01", [correct("echo two")]) == []
    assert suggestion(store, wf, "build") == ("echo {{ x }}", "run")
    events = feed(store, wf, "s-02", [correct("echo two")])
    assert [(e["step_id"], e["command"], e["source"], e["base"], e["from"]) for e in events] == [
        ("build", "echo two", "corrected", "echo {{ x }}", "echo {{ x }}")
    ]
    assert suggestion(store, wf, "build") == ("echo two", "adopted")


def test_different_and_failed_corrections_do_not_add_up(store: FileStore) -> None:
    wf = workflow(store)
    feed(store, wf, "s-01", [correct("echo two"), correct("echo three")])
    feed(store, wf, "s-02", [correct("echo two", outcome="failed")])
    feed(store, wf, "s-03", [correct("echo one")])  # the suggestion itself: no correction
    assert suggestion(store, wf, "build") == ("echo {{ x }}", "run")
    rows = pack_share.rows(corrections.load_pack(store, "wf"), wf)
    assert [(r["correction"], r["times"], r["adopted"]) for r in rows] == [
        ("echo two", 1, False),
        ("echo three", 1, False),
    ]


def test_a_correction_the_person_stopped_does_not_count_toward_adoption(store: FileStore) -> None:
    wf = workflow(store)
    feed(store, wf, "s-01", [correct("echo two", outcome="interrupted")])
    feed(store, wf, "s-02", [correct("echo two")])
    assert suggestion(store, wf, "build") == ("echo {{ x }}", "run")


def test_a_correction_of_an_old_suggestion_is_not_adopted(store: FileStore) -> None:
    wf = workflow(store)
    feed(
        store,
        wf,
        "s-01",
        [correct("echo two", base="echo old"), correct("echo two", base="echo old")],
    )
    assert suggestion(store, wf, "build") == ("echo {{ x }}", "run")


def test_an_adoption_goes_stale_when_run_changes(store: FileStore) -> None:
    wf = workflow(store)
    feed(store, wf, "s-01", [correct("echo two"), correct("echo two")])
    assert suggestion(store, wf, "build") == ("echo two", "adopted")
    changed = workflow(
        store, text=WF.format(min_obs=3, window=50).replace("echo {{ x }}", "make {{ x }}")
    )
    assert suggestion(store, changed, "build") == ("make {{ x }}", "run")
    rows = pack_share.rows(corrections.load_pack(store, "wf"), changed)
    assert [(r["correction"], r["adopted"], r["stale"]) for r in rows] == [
        ("echo two", False, True)
    ]
    # Back to the old run: the adoption applies again.
    assert suggestion(store, workflow(store), "build") == ("echo two", "adopted")


def test_adopting_a_correction_of_the_adopted_suggestion_chains(store: FileStore) -> None:
    wf = workflow(store)
    feed(store, wf, "s-01", [correct("echo two"), correct("echo two")])
    feed(
        store,
        wf,
        "s-02",
        [correct("echo three", base="echo two"), correct("echo three", base="echo two")],
    )
    assert suggestion(store, wf, "build") == ("echo three", "adopted")
    pack = corrections.load_pack(store, "wf")
    assert pack["steps"]["build"]["adopted"]["base"] == "echo {{ x }}"  # still the YAML's run


# -- idempotence ---------------------------------------------------------------------------


def test_writing_the_same_session_twice_counts_once(store: FileStore) -> None:
    wf = workflow(store)
    data = session("s-01", wf, [correct("echo two")])
    write(store, data)
    write(store, data)
    assert suggestion(store, wf, "build") == ("echo {{ x }}", "run")
    data["decisions"].append(manual("post"))
    write(store, data)
    write(store, data)
    pack = corrections.load_pack(store, "wf")
    assert pack["folded"] == {"s-01": 2}
    assert [r["times"] for r in pack["steps"]["build"]["corrections"]] == [1]
    assert [o["command"] for o in pack["steps"]["notify"]["observations"]] == ["post"]


def test_incremental_pack_equals_full_recomputation(store: FileStore) -> None:
    wf = workflow(store, min_obs=2)
    for i, decisions in enumerate(
        [[correct("echo two"), manual("a")], [manual("a"), correct("echo two")], [manual("b")]]
    ):
        write(store, session(f"s-{i:02d}", wf, decisions))
    assert corrections.check(store, "wf") == []
    pack = corrections.load_pack(store, "wf")
    pack["steps"]["build"]["corrections"][0]["times"] = 7
    store.put_pack("wf", pack)
    problems = corrections.check(store, "wf")
    assert len(problems) == 1 and problems[0].startswith("correction pack wf: step build:")
    corrections.rebuild(store, "wf")
    assert corrections.check(store, "wf") == []
    assert suggestion(store, wf, "notify") == ("a", "learned")


def test_a_damaged_pack_is_ignored_by_readers_and_rebuilt_by_the_next_write(
    store: FileStore,
) -> None:
    wf = workflow(store)
    store.ensure()
    path = pack_file(store)
    path.parent.mkdir()
    path.write_text("{not json")
    assert suggestion(store, wf, "build") == ("echo {{ x }}", "run")
    data = session("s-01", wf, [correct("echo two"), correct("echo two")])
    write(store, data)
    assert suggestion(store, wf, "build") == ("echo two", "adopted")
    assert json.loads(path.read_text())["folded"] == {"s-01": 2}


# -- by hand -------------------------------------------------------------------------------


def test_adopt_picks_the_most_frequent_and_drop_keeps_it_from_coming_back(store: FileStore) -> None:
    wf = workflow(store, min_obs=5)
    feed(store, wf, "s-01", [manual("a"), manual("b"), manual("a")])
    adopted = corrections.adopt(store, wf, "notify")
    assert (adopted["command"], adopted["source"]) == ("a", "observed")
    assert suggestion(store, wf, "notify") == ("a", "learned")
    corrections.drop(store, wf, "notify")
    assert suggestion(store, wf, "notify") == (None, None)
    feed(store, wf, "s-02", [manual("a")] * 5)
    assert suggestion(store, wf, "notify") == (None, None)  # dropped: not learned again
    corrections.adopt(store, wf, "notify", "post {{ x }}")
    assert suggestion(store, wf, "notify") == ("post {{ x }}", "adopted")


@pytest.mark.parametrize(
    "step, command, message",
    [
        ("nope", None, "unknown step 'nope' in workflow wf"),
        ("build", None, "nothing to adopt for step build"),
        ("build", "echo {{ y }}", "undefined variable in command: y"),
        ("build", "  ", "the command is empty"),
        ("build", 'echo "{{ x }}"', "unusable command"),
        ("build", "echo {{ x }}", "step build already proposes: echo {{ x }}"),
    ],
)
def test_adopt_refuses(store: FileStore, step: str, command: str | None, message: str) -> None:
    wf = workflow(store)
    with pytest.raises(UsageError) as exc:
        corrections.adopt(store, wf, step, command)
    assert message in str(exc.value)


def test_adopt_refuses_a_tie(store: FileStore) -> None:
    wf = workflow(store, min_obs=9)
    feed(store, wf, "s-01", [manual("a"), manual("b")])
    with pytest.raises(UsageError, match="'a' and 'b' tie"):
        corrections.adopt(store, wf, "notify")


def test_export_import_round_trip(tmp_path: Path, store: FileStore) -> None:
    wf = workflow(store, min_obs=2)
    feed(store, wf, "s-01", [correct("echo two"), correct("echo two"), manual("a"), manual("a")])
    doc = pack_share.export(corrections.load_pack(store, "wf"))
    assert doc == {
        "workflow": "wf",
        "version": 1,
        "steps": [
            {
                "step": "build",
                "suggestion": {
                    "command": "echo two",
                    "base": "echo {{ x }}",
                    "source": "corrected",
                },
                "corrections": [{"base": "echo {{ x }}", "correction": "echo two", "times": 2}],
            },
            {
                "step": "notify",
                "suggestion": {"command": "a", "base": None, "source": "observed"},
                "observations": [{"command": "a", "times": 2}],
            },
        ],
    }
    other = file_store(tmp_path / "other")
    wf2 = workflow(other, min_obs=2)
    parsed = pack_share.parse_export(doc, "pack.yaml")
    changes = corrections.apply_import(other, wf2, parsed)
    assert [(c["step_id"], c["what"]) for c in changes] == [
        ("build", "suggestion"),
        ("build", "correction"),
        ("notify", "suggestion"),
    ]
    assert suggestion(other, wf2, "build") == ("echo two", "imported")
    assert suggestion(other, wf2, "notify") == ("a", "imported")
    again = pack_share.export(corrections.load_pack(other, "wf"))
    assert [s["step"] for s in again["steps"]] == ["build", "notify"]
    assert again["steps"][0]["corrections"] == doc["steps"][0]["corrections"]
    assert again["steps"][0]["suggestion"]["command"] == "echo two"
    assert corrections.apply_import(other, wf2, parsed) == []  # importing twice changes nothing
    # Its own sessions add to the imported count only beyond it (max, not sum).
    feed(other, wf2, "t-01", [correct("echo two")])
    assert (
        pack_share.export(corrections.load_pack(other, "wf"))["steps"][0]["corrections"][0]["times"]
        == 2
    )


@pytest.mark.parametrize(
    "doc, message",
    [
        ([], "expected a mapping"),
        ({"workflow": 3, "steps": []}, "'workflow' must be a workflow id"),
        ({"workflow": "wf", "steps": {}}, "'steps' must be a list"),
        ({"workflow": "wf", "steps": [], "extra": 1}, "unknown key 'extra'"),
        ({"workflow": "wf", "steps": [{"name": "x"}]}, "steps[0]: expected a mapping with 'step'"),
        (
            {"workflow": "wf", "steps": [{"step": "a", "suggestion": {"base": None}}]},
            "steps[0].suggestion",
        ),
        (
            {
                "workflow": "wf",
                "steps": [
                    {"step": "a", "corrections": [{"correction": "x", "base": None, "times": -1}]}
                ],
            },
            "steps[0].corrections[0]",
        ),
    ],
)
def test_parse_export_refuses(doc: Any, message: str) -> None:
    with pytest.raises(UsageError) as exc:
        pack_share.parse_export(doc, "pack.yaml")
    assert str(exc.value).startswith("pack.yaml: invalid correction pack: ")
    assert message in str(exc.value)


# -- trust scope -----------------------------------------------------------------------------

LESSONS = st.sampled_from(["correct two", "correct three", "manual p", "manual q", "accept"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.lists(LESSONS, min_size=1, max_size=4)),
        max_size=12,
    )
)
def test_a_scopes_part_is_what_its_sessions_alone_teach(
    tmp_path_factory: pytest.TempPathFactory, runs: list[tuple[str, list[str]]]
) -> None:
    """Learning per scope: the part of a pack built for trust_scope [x] for x=V equals the
    unscoped pack of a home that holds only V's sessions."""
    home = tmp_path_factory.getbasetemp() / "scoped-learning"
    wf = load_workflow(write_workflow(home, "wf", WF.format(min_obs=2, window=50)))

    def decision(lesson: str) -> dict[str, Any]:
        kind, _, what = lesson.partition(" ")
        if kind == "correct":
            return correct(f"echo {what}")
        if kind == "manual":
            return manual(what)
        return dict(correct("x"), decision="accept", command="echo one")

    sessions = []
    for i, (value, lessons) in enumerate(runs):
        data = session(f"s-{i:02d}", wf, [decision(x) for x in lessons])
        data["variables"] = {"x": value}
        data["coaching"] = {**data["coaching"], "trust_scope": ["x"]}
        data["scope"] = {"x": value}
        sessions.append(data)
    scoped = learning.replay("wf", sessions, None, ["x"])
    assert learning.names_of(scoped) == ("x",)
    for value in ("a", "b"):
        alone = [
            {**s, "coaching": {k: v for k, v in s["coaching"].items() if k != "trust_scope"}}
            for s in sessions
            if s["variables"]["x"] == value
        ]
        want = learning.summary(learning.replay("wf", alone, None))
        have = learning.part(scoped, scope.key_of({"x": value}))
        assert learning.summary({"steps": have["steps"]}) == want
    assert scoped["steps"] == {}  # nothing is learned for no scope
