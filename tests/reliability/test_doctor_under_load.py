"""Issue 8, defect 6: `doctor` tells the truth under load, and checks the events log."""

from __future__ import annotations

import json
from pathlib import Path

from tests.reliability._helpers import LOOP_WORKER, finished, many_steps, popen_python, run, start


def test_doctor_reports_no_false_problem_while_two_decide_loops_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    many_steps(home, "load", 400)
    sids = [start(home, "load") for _ in range(2)]
    workers = [
        popen_python(LOOP_WORKER, str(home), sid, "150", "mix", str(i))
        for i, sid in enumerate(sids)
    ]
    runs = []
    try:
        while all(w.poll() is None for w in workers) and len(runs) < 25:
            res = run(home, "doctor", "--format", "json")
            runs.append(res)
    finally:
        done = finished(workers, 120)
    assert all(code == 0 for code, _, _ in done), [(c, e) for c, _, e in done]
    assert len(runs) >= 3, "the decide loops ended before doctor ran under load"
    for res in runs:
        assert res.stdout, res.stderr
        out = json.loads(res.stdout)
        assert res.returncode == 0, [f["message"] for f in out["findings"] if f["problem"]]
    assert run(home, "doctor").returncode == 0


def test_missing_decision_events_are_found_and_restored(tmp_path: Path) -> None:
    home = tmp_path / "home"
    many_steps(home, "ev", 3)
    sid = start(home, "ev")
    for decision in ("skip", "reject"):
        assert run(home, "decide", sid, decision).returncode == 0
    log = home / "sessions" / "events.jsonl"
    lines = log.read_text().splitlines()
    kept = [line for line in lines if json.loads(line)["event"] != "decision"]
    log.write_text("".join(line + "\n" for line in kept))  # a lost piece of the log
    found = run(home, "doctor")
    assert found.returncode == 1
    assert f"problem: events log lacks 2 decision event(s) of session {sid}" in found.stdout
    fixed = run(home, "doctor", "--repair")
    assert fixed.returncode == 0, fixed.stdout
    assert f"note: restored 2 missing decision event(s) of session {sid}" in fixed.stdout
    assert run(home, "doctor").returncode == 0
    events = run(home, "events", "--session", sid, "--format", "json").stdout.splitlines()
    restored = [json.loads(e) for e in events if json.loads(e)["event"] == "decision"]
    assert [(e["decision"], e["restored"]) for e in restored] == [("skip", True), ("reject", True)]
