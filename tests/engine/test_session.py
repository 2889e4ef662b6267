"""The session state machine: CONTRACT §3's table, failures, the guard, statuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coachctl.engine import session as sm
from coachctl.engine.session import Session
from coachctl.errors import ConflictError, StateError, UsageError


def make(mode: str = "coaching", n: int = 3) -> Session:
    steps = [
        {"id": f"s{i}", "name": f"S{i}", "suggestion": f"echo {i}", "command": f"echo {i}"}
        for i in range(n)
    ]
    return sm.new_session(
        "sess-0001",
        workflow_id="wf",
        workflow_name="WF",
        workflow_path="wf.yaml",
        mode=mode,
        steps=steps,
        variables={},
        coaching={},
    )


def decide(s: Session, decision: str, **kw: Any) -> dict[str, Any]:
    step = sm.check_decidable(s, decision, step_guard=kw.pop("guard", None))
    return sm.record_decision(
        s,
        step,
        decision,
        command=kw.pop("command", None),
        feedback=kw.pop("feedback", None),
        decided_by="t",
        **kw,
    )


@pytest.mark.parametrize("decision", ["accept", "correct", "reject", "manual", "skip"])
def test_each_decision_moves_the_cursor_when_it_succeeds(decision: str) -> None:
    s = make()
    rec = decide(s, decision, outcome="ok" if decision in ("accept", "correct") else None)
    assert s.cursor == 1 and s.status == "active"
    assert rec["step_id"] == "s0" and rec["decision"] == decision
    assert rec["suggestion"] == "echo 0" and rec["decided_by"] == "t"
    assert rec["decided_at"].endswith("Z")


@pytest.mark.parametrize("decision", ["accept", "correct"])
def test_failed_command_keeps_cursor_and_allows_retry(decision: str) -> None:
    s = make()
    decide(s, decision, outcome="failed", exit_code=1)
    assert s.cursor == 0 and s.status == "active" and s.last_attempt_failed()
    decide(s, "accept", outcome="ok", exit_code=0)
    assert s.cursor == 1 and not s.last_attempt_failed()


def test_last_decision_completes_the_session() -> None:
    s = make(n=1)
    decide(s, "skip")
    assert s.status == "completed" and s.current_step is None
    with pytest.raises(StateError):
        sm.check_decidable(s, "skip", step_guard=None)


def test_step_guard_mismatch_is_a_conflict() -> None:
    s = make()
    with pytest.raises(ConflictError) as info:
        sm.check_decidable(s, "accept", step_guard="s1")
    assert info.value.exit_code == 3
    assert s.decisions == [] and s.cursor == 0


@pytest.mark.parametrize("status", ["paused", "completed", "cancelled", "failed"])
def test_statuses_that_refuse_decisions(status: str) -> None:
    s = make()
    s.status = status
    with pytest.raises(StateError) as info:
        sm.check_decidable(s, "skip", step_guard=None)
    assert info.value.exit_code == 2


def test_observation_mode_only_takes_reports() -> None:
    s = make(mode="observation")
    with pytest.raises(UsageError, match="observation"):
        sm.check_decidable(s, "accept", step_guard=None)
    decide(s, "manual", command="echo did it")
    assert s.decisions[-1]["command"] == "echo did it"


def test_accept_needs_a_suggestion() -> None:
    s = make()
    s.steps[0]["suggestion"] = None
    with pytest.raises(UsageError, match="no suggestion"):
        sm.check_decidable(s, "accept", step_guard=None)


def test_running_step_is_a_conflict_while_its_process_lives() -> None:
    s = make()
    step = sm.check_decidable(s, "accept", step_guard=None)
    sm.mark_running(s, step, "accept", "echo 0")
    assert s.running_state() == "running"
    with pytest.raises(ConflictError):
        sm.check_decidable(s, "skip", step_guard=None)


def test_running_mark_of_a_dead_process_is_interrupted() -> None:
    s = make()
    step = sm.check_decidable(s, "accept", step_guard=None)
    sm.mark_running(s, step, "accept", "echo 0")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert s.running is not None
    s.running["pid"] = child.pid
    assert s.running_state() == "interrupted"
    with pytest.raises(StateError, match="a person must decide"):
        sm.check_decidable(s, "accept", step_guard=None, by_auto=True)
    rec = decide(s, "manual", command="checked by hand")
    assert rec["after_interrupted"] is True and s.running is None and s.cursor == 1


def test_reused_pid_is_not_mistaken_for_ours() -> None:
    assert sm.pid_alive(os.getpid(), sm.process_start_time(os.getpid()))
    assert not sm.pid_alive(os.getpid(), "1")


def test_pause_resume_cancel() -> None:
    s = make()
    sm.pause(s, "lunch")
    assert s.status == "paused" and s.pause_reason == "lunch"
    with pytest.raises(StateError):
        sm.pause(s, None)
    sm.resume(s)
    assert s.status == "active" and s.pause_reason is None
    sm.cancel(s)
    assert s.status == "cancelled"
    with pytest.raises(StateError):
        sm.cancel(s)
    with pytest.raises(StateError):
        sm.resume(s)


def test_round_trip_keeps_unknown_fields_and_loads_minimal_files() -> None:
    s = make()
    data = s.to_dict()
    data["future_field"] = {"x": 1}
    again = Session.from_dict(data)
    assert again.to_dict()["future_field"] == {"x": 1}
    minimal = {k: data[k] for k in ("id", "workflow_id", "mode", "status", "cursor", "steps")}
    assert Session.from_dict(minimal).decisions == []


@pytest.mark.parametrize(
    "patch", [{"mode": "turbo"}, {"status": "weird"}, {"cursor": "1"}, {"steps": "x"}]
)
def test_damaged_fields_are_refused(patch: dict[str, Any]) -> None:
    data = make().to_dict()
    data.update(patch)
    with pytest.raises(StateError):
        Session.from_dict(data)


def test_decided_by_uses_coachctl_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COACHCTL_USER", "alice")
    assert sm.current_user() == "alice"
    monkeypatch.delenv("COACHCTL_USER")
    monkeypatch.setenv("LOGNAME", "bob")
    assert sm.current_user() == "bob"


def test_observation_reports_are_no_verdict_on_the_suggestion() -> None:
    """Nothing was proposed in observation mode, so a report there does not cost trust."""
    from coachctl.engine.metrics import classify

    s = make(mode="observation")
    rec = decide(s, "manual", command="echo mine")
    assert rec["mode"] == "observation" and classify(rec) is None
    c = make(mode="coaching")
    assert classify(decide(c, "manual", command="echo mine")) == "manual"


# -- running marks that mean something off this machine (issue 8, defect 4) -------------


def live_mark() -> dict[str, Any]:
    """A mark of this very process, written the way `mark_running` writes it."""
    s = make()
    step = sm.check_decidable(s, "accept", step_guard=None)
    sm.mark_running(s, step, "accept", "echo 0")
    assert s.running is not None
    return dict(s.running)


def test_a_mark_records_host_boot_pid_namespace_and_start_time() -> None:
    mark = live_mark()
    assert mark["pid"] == os.getpid()
    assert mark["pid_start"] == sm.process_start_time(os.getpid())
    assert mark["boot_id"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert mark["pid_ns"] == os.stat("/proc/self/ns/pid").st_ino
    assert mark["host"] == os.uname().nodename
    assert sm.mark_state(mark) == "running"


@pytest.mark.parametrize(
    "change",
    [
        {"boot_id": "another-machine-or-boot"},  # another host (its pid means nothing here)
        {"pid_ns": 1},  # another container on this kernel
        {"pid_start": "1"},  # our pid, reused by another process
        {"boot_id": None},  # written without /proc (macOS, BSD): cannot be checked
        {"pid_ns": None},
        {"pid_start": None},
    ],
)
def test_a_mark_this_machine_cannot_check_is_interrupted_never_running(
    change: dict[str, Any],
) -> None:
    # The pid is alive (it is ours), which the old check took as "running" whatever host
    # wrote the mark: a mark from another container kept the step "running" or freed it.
    mark = {**live_mark(), **change}
    assert sm.mark_state(mark) == "interrupted"


def test_without_proc_here_every_mark_is_interrupted() -> None:
    here = {"host": "mac", "machine_id": None, "boot_id": None, "pid_ns": None}
    assert sm.mark_state(live_mark(), here) == "interrupted"


def test_an_unverifiable_mark_has_a_way_out_cancel_and_a_persons_decision() -> None:
    s = make()
    step = sm.check_decidable(s, "accept", step_guard=None)
    sm.mark_running(s, step, "accept", "echo 0")
    assert s.running is not None
    s.running.update(boot_id=None, pid_ns=None)  # as a mark written on macOS reads anywhere
    with pytest.raises(StateError, match="a person must decide"):
        sm.check_decidable(s, "accept", step_guard=None, by_auto=True)
    rec = decide(s, "skip")
    assert rec["after_interrupted"] is True
    s2 = make()
    step = sm.check_decidable(s2, "accept", step_guard=None)
    sm.mark_running(s2, step, "accept", "echo 0")
    assert s2.running is not None
    s2.running["boot_id"] = None
    sm.cancel(s2)
    assert s2.status == "cancelled"


def test_an_interrupted_outcome_keeps_the_cursor_and_marks_the_next_decision() -> None:
    s = make()
    step = sm.check_decidable(s, "accept", step_guard=None)
    sm.mark_running(s, step, "accept", "echo 0")
    rec = sm.record_decision(
        s,
        step,
        "accept",
        command="echo 0",
        feedback=None,
        decided_by="me",
        exit_code=-2,
        outcome="interrupted",
        executed=True,
        stopped_by="SIGINT",
    )
    assert s.cursor == 0 and rec["outcome"] == "interrupted" and s.running is None
    assert s.step_interrupted()
    with pytest.raises(StateError, match="a person must decide"):
        sm.check_decidable(s, "accept", step_guard=None, by_auto=True)
    # accept too: the new run's own mark carries it to the record.
    sm.mark_running(s, step, "accept", "echo 0")
    again = sm.record_decision(
        s,
        step,
        "accept",
        command="echo 0",
        feedback=None,
        decided_by="me",
        exit_code=0,
        outcome="ok",
        executed=True,
    )
    assert again["after_interrupted"] is True and s.cursor == 1


def test_a_live_pid_in_a_mark_from_another_machine_is_not_running() -> None:
    # Our own pid is alive here; a mark that names it from another boot or container says
    # nothing about this process. The old check (pid alive, same start time) said "running".
    s = make()
    step = sm.check_decidable(s, "accept", step_guard=None)
    sm.mark_running(s, step, "accept", "echo 0")
    assert s.running is not None and s.running_state() == "running"
    s.running["boot_id"] = "0" * 32
    assert s.running_state() == "interrupted"
    s.running["boot_id"] = sm.here()["boot_id"]
    s.running["pid_ns"] = 4026531836 + 12345
    assert s.running_state() == "interrupted"
