"""The interactive panel in a real terminal (pexpect pty): keys, editor, pause, Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.conftest import Cli, write_workflow

KEYS_PROMPT = "[?] help  > "
OBS_PROMPT = "[p] pause  [?] help  > "

TOUR = """\
id: tour
name: Every key
steps:
  - id: one
    name: First step
    run: echo one-$((40+2))
  - id: two
    run: echo out-two
  - id: three
    run: echo out-three
  - id: four
    run: echo out-four
  - id: five
    run: echo out-five
"""


class Pty:
    """coachctl in a 120x40 (or `columns` wide) pseudo-terminal; what it printed is in `.out`."""

    def __init__(
        self,
        home: Path,
        *args: str,
        colour: bool = False,
        columns: int = 120,
        nohup: bool = False,
        **env: str,
    ) -> None:
        full_env = {
            k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "VISUAL", "EDITOR")
        }
        full_env.update({"COACHCTL_HOME": str(home), "TERM": "xterm", "COACHCTL_USER": "tester"})
        if not colour:
            full_env["NO_COLOR"] = "1"
        full_env.update(env)
        self.log = io.StringIO()
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "coachctl", "--home", str(home), *args],
            env=full_env,
            cwd=str(home),
            dimensions=(40, columns),
            timeout=10,
            encoding="utf-8",
            preexec_fn=(lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)) if nohup else None,
        )
        self.child.logfile_read = self.log

    @property
    def out(self) -> str:
        return self.log.getvalue()

    def hang_up(self) -> int:
        """Close the terminal (its master side) and wait for coachctl to leave: its exit code."""
        pid = self.child.pid
        os.close(self.child.child_fd)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("coachctl did not leave after its terminal closed")

    def expect(self, text: str) -> None:
        self.child.expect_exact(text)

    def key(self, ch: str, prompt: str = KEYS_PROMPT) -> None:
        self.expect(prompt)
        self.child.send(ch)

    def line(self, text: str) -> None:
        self.child.sendline(text)

    def exit_code(self) -> int:
        self.child.expect(pexpect.EOF)
        self.child.close()
        status = self.child.exitstatus
        assert isinstance(status, int), (status, self.child.signalstatus)
        return status


def only_session(home: Path) -> dict[str, Any]:
    files = sorted((home / "sessions").glob("*.json"))
    assert len(files) == 1, files
    data: dict[str, Any] = json.loads(files[0].read_text())
    return data


def decisions(home: Path) -> list[tuple[Any, ...]]:
    return [
        (d["step_id"], d["decision"], d["command"], d["feedback"], d["exit_code"])
        for d in only_session(home)["decisions"]
    ]


def test_a_full_coaching_session_with_every_key(home: Path) -> None:
    write_workflow(home, "tour", TOUR)
    t = Pty(home, "coach", "tour")
    t.expect("tour (Every key) · step 1/5 · coaching · session ")
    t.expect("First step  [one]")
    t.expect("level COACHING · no decisions on this command yet · AUTO after 22 more accepts")
    t.expect("$ echo one-$((40+2))")
    t.key("?")
    t.expect("Ctrl-C pause and leave at any moment")
    t.key("x")
    t.expect("'x' does nothing here: press ? for help")
    t.key("a")
    t.expect("one-42")
    t.expect("ok: exit 0")
    t.expect("step 2/5")
    t.expect("session: 1 accepted (100% accepted)")
    t.expect("workflow tour: 1/1 accepted (100%), confidence 0.21, level COACHING")
    t.key("r")
    t.expect("why (optional, Enter to skip): ")
    t.line("not today")
    t.expect("rejected")
    t.expect("step 3/5")
    t.key("c")
    t.expect("corrected command: echo out-three")  # the prompt starts with the suggestion
    t.child.send("\x15")  # Ctrl-U: readline clears the line
    t.line("echo fixed-$((1+2))")
    t.expect("fixed-3")
    t.expect("corrected and ran: exit 0")
    t.expect("step 4/5")
    t.expect("session: 1 accepted, 1 rejected, 1 corrected (33% accepted)")
    t.key("m")
    t.expect("what did you run? (optional, Enter to skip): ")
    t.line("echo by-hand")
    t.expect("recorded as done by you: echo by-hand")
    t.expect("step 5/5")
    t.key("s")
    t.expect("skipped")
    t.expect(" completed: 5/5 steps")
    t.expect("session: 1 accepted, 1 rejected, 1 corrected, 1 manual, 1 skipped (25% accepted)")
    assert t.exit_code() == 0
    assert decisions(home) == [
        ("one", "accept", "echo one-$((40+2))", None, 0),
        ("two", "reject", None, "not today", None),
        ("three", "correct", "echo fixed-$((1+2))", None, 0),
        ("four", "manual", "echo by-hand", None, None),
        ("five", "skip", None, None, None),
    ]
    assert only_session(home)["status"] == "completed"
    assert all(d["decided_by"] == "tester" for d in only_session(home)["decisions"])


def test_inline_correction_empty_cancels(home: Path) -> None:
    t = Pty(home, "coach", "hello")
    t.key("c")
    t.expect("corrected command: echo 'hello from coachctl'")
    t.child.send("\x15")
    t.line("")
    t.expect("empty: correction cancelled")
    t.key("c")
    t.expect("corrected command: echo 'hello from coachctl'")
    t.line("")  # Enter on the suggestion as it was
    t.expect("unchanged: correction cancelled (press a to accept it as it is)")
    t.key("p")
    assert t.exit_code() == 0
    assert only_session(home)["decisions"] == []


def editor(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-editor"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return str(script)


def test_editor_rewrites_the_command(home: Path, tmp_path: Path) -> None:
    # The editor sees the suggestion, and replaces it.
    ed = editor(
        tmp_path,
        'grep -q "^echo .hello from coachctl.$" "$1" || exit 9\n'
        "printf 'echo editor-$((5+5))\\n# a comment\\n' > \"$1\"\n",
    )
    t = Pty(home, "coach", "hello", EDITOR=ed)
    t.key("c")
    t.expect("editor-10")
    t.expect("corrected and ran: exit 0")
    t.expect("step 2/3")
    t.key("q")
    assert t.exit_code() == 0
    assert decisions(home) == [("greet", "correct", "echo editor-$((5+5))", None, 0)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (': > "$1"\n', "empty: correction cancelled"),
        ("exit 3\n", "Editing failed: correction cancelled"),
    ],
)
def test_editor_empty_or_failing_cancels(
    home: Path, tmp_path: Path, body: str, message: str
) -> None:
    t = Pty(home, "coach", "hello", VISUAL=editor(tmp_path, body), EDITOR="/nonexistent")
    t.key("c")
    t.expect(message)
    t.key("p")
    assert t.exit_code() == 0
    assert only_session(home)["decisions"] == []
    assert only_session(home)["status"] == "paused"


def test_pause_then_resume_in_a_new_terminal_at_the_same_step(home: Path) -> None:
    t = Pty(home, "coach", "hello")
    t.key("a")
    t.key("p")
    t.expect("paused at step 2/3 (clock); continue with: coachctl resume ")
    assert t.exit_code() == 0
    data = only_session(home)
    assert (data["status"], data["cursor"]) == ("paused", 1)

    t = Pty(home, "resume", data["id"][:8])
    t.expect("step 2/3")
    t.expect("Check the clock  [clock]")
    t.expect("session: 1 accepted (100% accepted)")
    t.key("s")
    t.key("s")
    t.expect(" completed: 3/3 steps")
    assert t.exit_code() == 0
    assert [d[:2] for d in decisions(home)] == [
        ("greet", "accept"),
        ("clock", "skip"),
        ("look", "skip"),
    ]


def test_ctrl_c_at_the_prompt_pauses_and_exits_130(home: Path) -> None:
    t = Pty(home, "coach", "hello")
    t.expect(KEYS_PROMPT)
    t.child.sendintr()
    t.expect("paused; continue with: coachctl resume ")
    assert t.exit_code() == 130
    data = only_session(home)
    assert (data["status"], data["cursor"], data["decisions"]) == ("paused", 0, [])


def test_ctrl_c_at_a_text_prompt_pauses_and_exits_130(home: Path) -> None:
    t = Pty(home, "coach", "hello")
    t.key("r")
    t.expect("why (optional")
    t.child.sendintr()
    t.expect("paused; continue with: coachctl resume ")
    assert t.exit_code() == 130
    assert only_session(home)["status"] == "paused"
    assert only_session(home)["decisions"] == []


def descendant(pid: int, argv: list[str], timeout: float = 10.0) -> int:
    """Wait until a descendant of `pid` runs exactly `argv`; its pid (seen in /proc)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parents: dict[int, int] = {}
        found: list[int] = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")[:-1]
            except OSError:
                continue
            parents[int(entry)] = int(stat[stat.rfind(")") + 2 :].split()[1])
            if [c.decode() for c in cmd] == argv:
                found.append(int(entry))
        for p in found:
            up = p
            while up in parents and up != pid:
                up = parents[up]
            if up == pid:
                return p
        time.sleep(0.05)
    raise AssertionError(f"no {argv} under pid {pid}")


def test_ctrl_c_while_a_command_runs(home: Path) -> None:
    write_workflow(home, "slow", "steps:\n  - id: nap\n    run: sleep 30\n")
    t = Pty(home, "coach", "slow")
    t.key("a")
    t.expect("running: $ sleep 30")
    sleeper = descendant(t.child.pid, ["sleep", "30"])  # the command really runs
    t.child.sendintr()
    t.expect("interrupted: outcome recorded, session paused")
    t.expect("paused; continue with: coachctl resume ")
    assert t.exit_code() == 130
    assert not Path(f"/proc/{sleeper}").exists()
    data = only_session(home)
    assert (data["status"], data["running"], data["cursor"]) == ("paused", None, 0)
    # The person's Ctrl-C is not the command's failure: `interrupted`, neutral for trust (§3).
    assert [(d["decision"], d["exit_code"], d["outcome"]) for d in data["decisions"]] == [
        ("accept", -2, "interrupted")
    ]
    assert data["decisions"][0]["stopped_by"] == "SIGINT"


def test_a_second_ctrl_c_reaches_the_command(home: Path) -> None:
    stubborn = (
        "n=0; trap 'n=$((n+1)); echo got-int-$n; [ $n -ge 2 ] && exit 7' INT; "
        "echo $((1+1))-ready; while :; do sleep 0.1; done"
    )
    write_workflow(home, "stubborn", f"steps:\n  - id: hold\n    run: {json.dumps(stubborn)}\n")
    t = Pty(home, "coach", "stubborn")
    t.key("a")
    t.expect("2-ready")
    t.child.sendintr()
    t.expect("got-int-1")
    t.child.sendintr()
    t.expect("got-int-2")
    assert t.exit_code() == 130
    data = only_session(home)
    assert data["status"] == "paused"
    assert [(d["decision"], d["exit_code"]) for d in data["decisions"]] == [("accept", 7)]


def test_a_failed_command_offers_retry(home: Path) -> None:
    write_workflow(
        home,
        "flaky",
        "steps:\n  - id: once\n"
        '    run: "[ -e marker ] || { touch marker; echo first-$((1+1)); exit 3; }"\n',
    )
    t = Pty(home, "coach", "flaky")
    t.key("a")
    t.expect("first-2")
    t.expect("FAILED: exit 3")
    t.expect("step 1/1")
    t.expect("! the last attempt failed (exit 3)\r\n")  # one hint: the key bar says the rest
    t.expect("1 failed")
    retry_bar = "[a] retry  [r] reject  [c] correct  [m] manual  [s] skip  [p] pause  [?] help  > "
    t.key("a", retry_bar)
    t.expect("ok: exit 0")
    t.expect(" completed: 1/1 steps")
    assert t.exit_code() == 0
    assert [
        (d["decision"], d["exit_code"], d["outcome"]) for d in only_session(home)["decisions"]
    ] == [
        ("accept", 3, "failed"),
        ("accept", 0, "ok"),
    ]


def test_observation_reports_what_you_ran(home: Path) -> None:
    t = Pty(home, "run", "hello", "--mode", "observation")
    t.expect("usually: $ echo 'hello from coachctl'")
    t.expect("Do this step yourself, then press m to report what you ran (s skips it).")
    t.key("a", OBS_PROMPT)
    t.expect("'a' does nothing here")
    t.key("m", OBS_PROMPT)
    t.expect("what did you run? (optional, Enter to skip): ")
    t.line("echo hi there")
    t.expect("recorded as done by you: echo hi there")
    t.key("m", OBS_PROMPT)
    t.line("")
    t.key("s", OBS_PROMPT)
    t.expect(" completed: 3/3 steps")
    assert t.exit_code() == 0
    assert decisions(home) == [
        ("greet", "manual", "echo hi there", None, None),
        ("clock", "manual", None, None, None),
        ("look", "skip", None, None, None),
    ]


def test_a_step_without_a_command_is_observed_in_coaching(home: Path, cli: Cli) -> None:
    t = Pty(home, "run", "incident-triage", "--mode", "coaching")
    for _ in range(3):
        t.key("s")
    t.expect("Tell the on-call channel  [notify]")
    t.expect("level OBSERVATION · no command yet: coachctl learns it from your reports")
    t.expect("instructions: Post a short status for web in the on-call channel")
    t.key("m", OBS_PROMPT)
    t.line("post-status web")
    t.expect(" completed: 4/4 steps")
    assert t.exit_code() == 0


def test_mixed_runs_auto_steps_with_a_progress_line(home: Path, cli: Cli) -> None:
    write_workflow(
        home,
        "mixed",
        "coaching: {min_decisions: 1, strict: false}\nsteps:\n"
        "  - id: one\n    run: echo one\n  - id: two\n    run: echo two-ran\n"
        "  - id: three\n    run: echo three\n",
    )
    sid = cli.start("mixed")
    for d in ("reject", "accept", "skip"):
        assert cli("decide", sid, d).exit_code == 0
    t = Pty(home, "run", "mixed")
    t.expect("step 1/3")
    t.key("a")
    t.expect("[2/3] two … ok")
    t.expect("step 3/3")
    t.key("p")
    assert t.exit_code() == 0
    data = json.loads(sorted((home / "sessions").glob("*.json"))[-1].read_text())
    assert [(d["step_id"], d["decided_by"], d["output_tail"]) for d in data["decisions"]] == [
        ("one", "tester", "one\n"),
        ("two", "auto", "two-ran\n"),
    ]


def test_long_commands_wrap_to_the_terminal_width(home: Path) -> None:
    words = " ".join(f"word{i:03d}" for i in range(60))
    write_workflow(home, "long", f"steps:\n  - id: big\n    run: echo {words}\n")
    t = Pty(home, "coach", "long")
    t.key("p")
    assert t.exit_code() == 0
    lines = t.out.replace("\r", "").split("\n")
    assert max(len(line) for line in lines) <= 120
    shown = " ".join(line.strip().removeprefix("$ ") for line in lines if "word" in line)
    assert f"echo {words}" in shown


def test_no_color_means_no_escape_codes(home: Path) -> None:
    t = Pty(home, "coach", "hello")
    t.key("a")
    t.key("p")
    assert t.exit_code() == 0
    assert "\x1b[" not in t.out
    assert "ok: exit 0" in t.out


def test_colour_on_a_terminal_without_no_color(home: Path) -> None:
    t = Pty(home, "coach", "hello", colour=True)
    t.key("p", "help  > ")
    assert t.exit_code() == 0
    assert "\x1b[36m\x1b[1mecho 'hello from coachctl'\x1b[0m" in t.out  # the suggestion


def test_ctrl_c_in_the_editor_pauses_and_exits_130(home: Path, tmp_path: Path) -> None:
    ed = editor(tmp_path, "echo editor-$((2+3))-open; sleep 30\n")
    t = Pty(home, "coach", "hello", EDITOR=ed)
    t.key("c")
    t.expect("editor-5-open")
    t.child.sendintr()
    t.expect("paused; continue with: coachctl resume ")
    assert t.exit_code() == 130
    data = only_session(home)
    assert (data["status"], data["cursor"], data["decisions"]) == ("paused", 0, [])


def test_a_step_whose_process_died_asks_a_person(home: Path) -> None:
    write_workflow(home, "slow", "steps:\n  - id: nap\n    run: echo $((6*7))-started; sleep 30\n")
    t = Pty(home, "coach", "slow")
    t.key("a")
    t.expect("42-started")
    t.child.kill(9)  # coachctl dies mid-run, its lock long released
    t.child.close(force=True)
    data = only_session(home)
    assert (data["status"], data["running"]["step_id"]) == ("active", "nap")

    t = Pty(home, "resume", data["id"])
    t.expect("! interrupted while running: it may have run.\r\n")
    t.key("s", "[a] run again  [r] reject  [c] correct  [m] done  [s] skip  [p] pause")
    t.expect(" completed: 1/1 steps")
    assert t.exit_code() == 0
    assert [d["decision"] for d in only_session(home)["decisions"]] == ["skip"]


def test_sigterm_at_the_key_prompt_pauses_and_exits_143(home: Path) -> None:
    write_workflow(home, "tour", TOUR)
    t = Pty(home, "coach", "tour")
    t.expect(KEYS_PROMPT)
    t.child.kill(signal.SIGTERM)
    assert t.exit_code() == 143
    data = only_session(home)
    assert (data["status"], data["cursor"], data["decisions"]) == ("paused", 0, [])


def test_sighup_at_the_key_prompt_pauses_the_session(home: Path) -> None:
    write_workflow(home, "tour", TOUR)
    t = Pty(home, "coach", "tour")
    t.expect(KEYS_PROMPT)
    t.child.kill(signal.SIGHUP)
    t.child.expect(pexpect.EOF)
    t.child.close()
    assert t.child.exitstatus == 129
    assert only_session(home)["status"] == "paused"


def test_sigterm_while_a_command_runs_stops_it_and_records_interrupted(home: Path) -> None:
    write_workflow(home, "slow", "steps:\n  - id: nap\n    run: sleep 33\n")
    t = Pty(home, "coach", "slow")
    t.key("a")
    t.expect("running: $ sleep 33")
    sleeper = descendant(t.child.pid, ["sleep", "33"])
    t.child.kill(signal.SIGTERM)
    t.expect("interrupted: outcome recorded, session paused")
    assert t.exit_code() == 143
    assert gone(sleeper)
    data = only_session(home)
    assert (data["status"], data["cursor"]) == ("paused", 0)
    rec = data["decisions"][-1]
    assert (rec["outcome"], rec["stopped_by"]) == ("interrupted", "SIGTERM")


def test_a_step_reads_the_persons_terminal_in_the_panel(home: Path) -> None:
    write_workflow(
        home,
        "ask",
        "steps:\n  - id: ask\n    run: \"printf 'name? '; read -r n; echo hello-$n\"\n",
    )
    t = Pty(home, "coach", "ask")
    t.key("a")
    t.expect("name? ")
    t.line("world")
    t.expect("hello-world")
    t.expect("ok: exit 0")
    assert t.exit_code() == 0
    assert only_session(home)["decisions"][-1]["output_tail"].endswith("hello-world\n")


def gone(pid: int) -> bool:
    """The process ended (a zombie waiting for a slow init to reap it has ended too)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return stat[stat.rfind(b")") + 2 :].split()[0] in (b"Z", b"X")


def test_a_closed_terminal_pauses_the_session(home: Path) -> None:
    # A real hangup: the terminal goes away (its master side closes) at the key prompt.
    write_workflow(home, "tour", TOUR)
    t = Pty(home, "coach", "tour")
    t.expect(KEYS_PROMPT)
    code = t.hang_up()
    assert only_session(home)["status"] == "paused"
    assert code == 129


def test_a_terminal_gone_without_its_hangup_signal_still_pauses(home: Path) -> None:
    """The read can see the hangup before SIGHUP arrives (a loaded machine), or SIGHUP never
    comes (`nohup`): the empty read must pause like the signal, not crash on the next echo
    (it exited 1 and left the session active)."""
    write_workflow(home, "tour", TOUR)
    t = Pty(home, "coach", "tour", nohup=True)
    t.expect(KEYS_PROMPT)
    code = t.hang_up()
    assert only_session(home)["status"] == "paused"
    assert code == 129


def test_a_terminal_closed_while_a_command_runs_stops_it_and_pauses(home: Path) -> None:
    write_workflow(home, "slow", "steps:\n  - id: nap\n    run: sleep 34\n")
    t = Pty(home, "coach", "slow")
    t.key("a")
    t.expect("running: $ sleep 34")
    sleeper = descendant(t.child.pid, ["sleep", "34"])
    assert t.hang_up() == 129
    assert gone(sleeper)
    data = only_session(home)
    assert (data["status"], data["cursor"], data["running"]) == ("paused", 0, None)
    assert (data["decisions"][-1]["outcome"], data["decisions"][-1]["stopped_by"]) == (
        "interrupted",
        "SIGHUP",
    )
