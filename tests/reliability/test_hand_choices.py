"""Issue 8, defect 2: what people chose by hand is truth; what is derived is rebuilt.

A correction pack is derived from the session files: a home without it (a fresh clone, a
lost file, another machine) must reach the same suggestions and the same verdicts. Hand
choices (adopt, drop, import) live in their own record; a damaged one fails closed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.reliability._helpers import run

WF = """\
id: ship
coaching:
  min_decisions: 2
  threshold: 0.5
  strict: false
  adopt_after: 2
steps:
  - id: deploy
    run: echo old
"""


def home_with(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "workflows").mkdir(parents=True)
    (home / "workflows" / "ship.yaml").write_text(WF)
    return home


def one_session(home: Path, *decide: str) -> None:
    started = run(home, "coach", "ship", "--no-input", "--format", "json")
    assert started.returncode == 0, started.stderr
    sid = json.loads(started.stdout)["session_id"]
    done = run(home, "decide", sid, *decide)
    assert done.returncode == 0, done.stderr


def readiness(home: Path) -> tuple[int, dict[str, object]]:
    res = run(home, "readiness", "ship", "--format", "json")
    step = json.loads(res.stdout)["workflows"][0]["steps"][0] if res.stdout else {}
    return res.returncode, step


def test_a_lost_pack_is_rebuilt_so_every_copy_agrees(tmp_path: Path) -> None:
    home = home_with(tmp_path)
    for _ in range(3):
        one_session(home, "accept", "--no-exec")
    assert readiness(home)[0] == 0  # `echo old` earned its trust
    for _ in range(2):  # corrected twice: `echo new` is adopted and starts at zero
        one_session(home, "correct", "--correction", "echo new", "--no-exec")
    code, step = readiness(home)
    assert (code, step["suggestion"]) == (1, "echo new")

    clone = tmp_path / "clone"  # the same session files, no derived state
    shutil.copytree(home, clone)
    shutil.rmtree(clone / "sessions" / "packs")
    code, step = readiness(clone)
    assert (code, step["suggestion"]) == (1, "echo new")
    (home / "sessions" / "packs" / "ship.json").write_text("{damaged")
    code, step = readiness(home)
    assert (code, step["suggestion"]) == (1, "echo new")


def test_a_hand_choice_survives_the_loss_of_derived_state(tmp_path: Path) -> None:
    home = home_with(tmp_path)
    adopted = run(home, "corrections", "adopt", "ship", "deploy", "--command", "echo mine")
    assert adopted.returncode == 0, adopted.stderr
    shutil.rmtree(home / "sessions" / "packs", ignore_errors=True)
    shutil.rmtree(home / "sessions" / ".index", ignore_errors=True)
    code, step = readiness(home)
    assert (code, step["suggestion"]) == (1, "echo mine")


def test_a_damaged_hand_choice_record_fails_closed_naming_it(tmp_path: Path) -> None:
    home = home_with(tmp_path)
    for _ in range(3):
        one_session(home, "accept", "--no-exec")
    assert (
        run(home, "corrections", "adopt", "ship", "deploy", "--command", "echo x").returncode == 0
    )
    assert run(home, "corrections", "drop", "ship", "deploy").returncode == 0
    assert readiness(home)[0] == 0
    record = home / "sessions" / "choices" / "ship.json"
    assert record.is_file()
    record.write_text('{"steps": [')
    sessions_before = sorted((home / "sessions").glob("*.json"))
    ready = run(home, "readiness", "ship")
    assert ready.returncode == 2
    assert ready.stderr.strip() == f"coachctl: damaged hand choices {record}: not valid JSON"
    started = run(home, "run", "ship", "--mode", "auto", "--no-input")
    assert started.returncode == 2
    assert str(record) in started.stderr
    assert sorted((home / "sessions").glob("*.json")) == sessions_before  # nothing started


def test_hand_choices_in_a_pack_from_before_their_record_are_kept(tmp_path: Path) -> None:
    home = home_with(tmp_path)
    packs = home / "sessions" / "packs"
    packs.mkdir(parents=True)
    adopted = {"command": "echo mine", "source": "manual", "base": "echo old", "from": None}
    legacy = {"version": 1, "workflow_id": "ship", "folded": {}, "steps": {}}
    legacy["steps"] = {"deploy": {"adopted": adopted, "dropped": [], "corrections": []}}
    (packs / "ship.json").write_text(json.dumps(legacy))
    assert readiness(home)[1]["suggestion"] == "echo mine"
    shutil.rmtree(packs)
    assert readiness(home)[1]["suggestion"] == "echo mine"  # now in the hand-choice record
