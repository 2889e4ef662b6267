"""`show` in text tells the whole story; `show`/`resume` without a reference (CONTRACT §1)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.conftest import Cli, write_workflow

ENDINGS = """\
id: endings
steps:
  - id: slow
    run: sleep 5
    timeout: 1
  - id: killed
    run: kill -9 $$
  - id: three
    run: echo some output; exit 3
  - id: noisy
    run: for i in 1 2 3 4 5 6 7 8; do echo line-$i; done
"""


def test_show_text_has_command_outcome_feedback_and_output(cli: Cli, home: Path) -> None:
    write_workflow(home, "endings", ENDINGS)
    sid = cli.start("endings")
    slow = cli("decide", sid, "accept")
    assert slow.exit_code == 1
    assert slow.stderr.endswith("coachctl: step 'slow' failed: timed out after 1 s\n")
    cli("decide", sid, "skip")
    killed = cli("decide", sid, "accept")
    assert killed.exit_code == 1
    assert killed.stderr.endswith("coachctl: step 'killed' failed: killed by SIGKILL\n")
    cli("decide", sid, "skip")
    assert cli("decide", sid, "accept").exit_code == 1
    cli("decide", sid, "reject", "--feedback", "exit 3 is not ok here")
    cli("decide", sid, "accept")
    text = cli("show", sid).stdout
    assert "accept → timed out after 1 s" in text
    assert "accept → killed by SIGKILL" in text
    assert "accept → failed, exit 3" in text
    assert "      $ echo some output; exit 3" in text
    assert "      | some output" in text
    assert "      feedback: exit 3 is not ok here" in text
    assert "(not run) $ echo some output; exit 3" in text
    assert "exit -" not in text  # a negative exit code never reaches a person
    # the output tail: the last lines, and how to see all of it
    assert "| line-8" in text and "| line-3" not in text and "3 more lines (--wide)" in text
    assert "| line-1" in cli("show", sid, "--wide").stdout
    shown = cli("show", sid, env={"COLUMNS": "40"}).stdout
    narrow = shown.split("\ndecisions:\n", 1)[1].splitlines()
    assert max(len(line) for line in narrow) <= 40  # decisions fit the terminal
    assert any(line.endswith("…") for line in narrow)


def test_an_auto_run_says_how_a_step_ended_in_words(cli: Cli, home: Path) -> None:
    write_workflow(home, "dies", "steps:\n  - id: boom\n    run: kill -9 $$\n")
    r = cli("run", "dies", "--mode", "auto", "--force", "--no-input")
    assert r.exit_code == 1
    assert "[1/1] boom … FAILED (killed by SIGKILL)" in r.stdout
    assert "coachctl: step 'boom' failed (killed by SIGKILL): session " in r.stderr


def test_show_without_a_session_takes_the_most_recent(cli: Cli) -> None:
    first = cli.start()
    time.sleep(0.01)
    second = cli.start()
    time.sleep(0.01)
    cli("decide", first, "skip")  # touched last
    r = cli("show", "--format", "json")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["session_id"] == first
    assert r.stderr.startswith(f"coachctl: {first} (hello, active, updated ")
    assert r.stderr.rstrip().endswith("the most recent session")
    assert second not in r.stdout


def test_show_and_resume_without_sessions_name_the_store(cli: Cli, home: Path) -> None:
    for args in (["show"], ["resume", "--no-input"]):
        r = cli(*args)
        assert r.exit_code == 2
        assert r.stderr.startswith("coachctl: no ")
        assert str(home) in r.stderr and r.stderr.count("\n") == 1


def test_resume_without_a_session_takes_the_most_recent_paused(cli: Cli) -> None:
    paused = cli.start()
    cli("pause", paused)
    time.sleep(0.01)
    active = cli.start()  # newer, but nothing to resume
    r = cli("resume", "--no-input", "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["session_id"] == paused
    assert f"coachctl: {paused} (hello, paused" in r.stderr
    assert active not in r.stderr


def test_resume_ambiguity_lists_only_resumable_sessions(cli: Cli, home: Path) -> None:
    ids = [cli.start() for _ in range(3)]
    cli("cancel", ids[0])
    cli("pause", ids[2])
    sessions = home / "sessions"
    # three sessions sharing a prefix: rename their files and ids to a common stem
    renamed = []
    for i, sid in enumerate(ids):
        new = f"aaaa{i}-xyz{i}"
        data = json.loads((sessions / f"{sid}.json").read_text())
        data["id"] = new
        (sessions / f"{new}.json").write_text(json.dumps(data))
        (sessions / f"{sid}.json").unlink()
        renamed.append(new)
    # aaaa matches all three; one is cancelled: the message lists only the other two
    r = cli("resume", "aaaa", "--no-input")
    assert r.exit_code == 2
    assert "can be resumed: aaaa1-xyz1, aaaa2-xyz2" in r.stderr
    assert "aaaa0" not in r.stderr
    assert str(sessions) in r.stderr or str(home) in r.stderr
    # make one of them final too: the prefix now names exactly one resumable session
    cli("cancel", "aaaa1-xyz1")
    r = cli("resume", "aaaa", "--no-input", "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["session_id"] == "aaaa2-xyz2"


MULTI = """\
id: multi
variables:
  name: world
steps:
  - id: script
    run: |
      echo "in $(pwd)"
      echo hello {{ name }}
    instructions: Check that it greets {{ name }}.
"""


def test_a_multi_line_run_as_the_readme_describes_it(cli: Cli, home: Path) -> None:
    """`run: |` runs as one shell script, in the caller's working directory, with
    `instructions` beside it; the state text keeps its lines in one column."""
    write_workflow(home, "multi", MULTI)
    text = cli("run", "multi", "--no-input").stdout
    assert "  instructions: Check that it greets world.\n" in text
    assert '  suggestion:   echo "in $(pwd)"\n                echo hello world\n' in text
    sid = cli.json("sessions")[0]["session_id"]
    out = cli("decide", sid, "accept").stdout
    assert f"in {Path.cwd()}\nhello world\n" in out
