"""The panel says what changed, agrees with itself after a failure, fits 80 columns, edits a
correction in place, and shows its prompts even with stderr thrown away (pexpect, a pty)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pexpect

from tests.commands.test_panel import KEYS_PROMPT, Pty, only_session
from tests.conftest import Cli, write_workflow

QUICK = """\
id: quick
name: A workflow that trusts after one accept
coaching: {min_decisions: 1, strict: false, adopt_after: 2, window: 3}
steps:
  - id: one
    run: echo one
  - id: two
    run: echo two
"""


def lines_of(out: str) -> list[str]:
    """What a person saw, line by line (the pty's CRLF, no escapes with NO_COLOR)."""
    return out.replace("\r\n", "\n").split("\n")


def test_reaching_auto_and_falling_back_are_announced(home: Path) -> None:
    write_workflow(home, "quick", QUICK)
    t = Pty(home, "coach", "quick")
    t.key("a")
    t.expect("ok: exit 0")
    t.expect("★ step one reached AUTO: it runs on its own in mixed runs")
    t.key("a")
    t.expect("★ step two reached AUTO: it runs on its own in mixed runs")
    t.expect("★ workflow quick reached AUTO: every step is ready")
    assert t.exit_code() == 0
    t = Pty(home, "coach", "quick")
    t.key("r")
    t.line("")
    t.expect("▼ fell back: step one is COACHING again (was AUTO)")
    t.expect("▼ fell back: workflow quick is COACHING again (was AUTO)")
    t.key("p")
    assert t.exit_code() == 0
    news = [ln for ln in lines_of(t.out) if ln.lstrip().startswith(("★", "▼"))]
    assert len(news) == 2  # one line each, nothing else announced


def test_an_adopted_correction_is_announced(home: Path, cli: Cli) -> None:
    write_workflow(home, "quick", QUICK)
    sid = cli.start("quick")
    assert cli("decide", sid, "correct", "--correction", "echo ONE").exit_code == 0
    t = Pty(home, "coach", "quick")
    t.key("c")
    t.expect("corrected command: echo one")
    t.child.send("\x15")
    t.line("echo ONE")
    t.expect("corrected and ran: exit 0")
    t.expect("★ one now suggests your correction: echo ONE (it starts at zero trust)")
    t.key("p")
    assert t.exit_code() == 0


def test_a_learned_command_is_announced(home: Path, cli: Cli) -> None:
    write_workflow(
        home,
        "learn",
        "coaching: {min_observations: 2}\nsteps:\n  - id: post\n    instructions: Tell them.\n",
    )
    sid = cli.start("learn")
    cli("decide", sid, "manual", "--command", "wall hi")
    t = Pty(home, "coach", "learn")
    t.key("m", "[p] pause  [?] help  > ")
    t.expect("what did you run?")
    t.line("wall hi")
    t.expect("★ post learned a command from what people ran: wall hi (it starts at zero trust)")
    assert t.exit_code() == 0


def test_after_a_failure_one_hint_and_the_key_bar_agree(home: Path) -> None:
    write_workflow(home, "fails", "steps:\n  - id: f\n    run: exit 4\n    timeout: 5\n")
    t = Pty(home, "coach", "fails")
    t.key("a")
    t.expect("FAILED: exit 4")
    t.key("p", "[a] retry  [r] reject  [c] correct  [m] manual  [s] skip  [p] pause  [?] help")
    assert t.exit_code() == 0
    seen = lines_of(t.out)
    failed = [ln for ln in seen if ln.startswith(("  FAILED", "  !"))]
    assert failed == ["  FAILED: exit 4 in 0.0s", "  ! the last attempt failed (exit 4)"]
    assert not any("a retry" in ln for ln in seen)  # no second, different hint


def test_a_timeout_and_a_signal_are_said_in_words(home: Path) -> None:
    write_workflow(
        home,
        "ends",
        "steps:\n  - id: slow\n    run: sleep 5\n    timeout: 1\n"
        "  - id: killed\n    run: kill -9 $$\n",
    )
    t = Pty(home, "coach", "ends")
    t.key("a")
    t.expect("FAILED: timed out after 1 s")
    t.expect("! the last attempt failed (timed out after 1 s)")
    t.key("s", "[a] retry")
    t.key("a")
    t.expect("FAILED: killed by SIGKILL")
    t.key("p", "[a] retry")
    assert t.exit_code() == 0
    assert "exit -" not in t.out


def test_80_columns_nothing_wraps(home: Path) -> None:
    long_run = "true " + " ".join(f"word{i}" for i in range(30))
    write_workflow(
        home,
        "wide",
        "name: A workflow with a rather long name to wrap the title line\n"
        "coaching: {min_decisions: 1, strict: false}\nsteps:\n"
        f"  - id: one\n    run: {long_run}\n"
        "  - id: two\n    instructions: "
        + "Read this long instruction carefully before doing anything at all. " * 3
        + "\n    run: exit 2\n",
    )
    t = Pty(home, "coach", "wide", columns=80)
    narrow = "[a]ccept [r]eject [c]orrect [m]anual [s]kip [p]ause [?] help > "
    t.key("?", narrow)
    t.key("a", narrow)
    t.expect("★ step one reached AUTO")
    t.key("a", narrow)
    t.expect("FAILED: exit 2")
    t.key("s", "[a] retry [r]eject [c]orrect [m]anual [s]kip [p]ause [?] help > ")
    t.expect("completed")
    assert t.exit_code() == 0
    long = [ln for ln in lines_of(t.out) if len(ln) > 80]
    assert long == [], long


def test_an_auto_run_says_how_many_steps_ran_on_their_own(home: Path, cli: Cli) -> None:
    write_workflow(home, "quick", QUICK)
    sid = cli.start("quick")
    cli("decide", sid, "accept")
    cli("decide", sid, "accept")
    t = Pty(home, "run", "quick")
    t.expect("[2/2] two … ok")
    assert t.exit_code() == 0
    seen = lines_of(t.out)
    assert "2 steps ran on their own" in seen
    assert not any(re.search(r"\b0 ", ln) for ln in seen)  # no row of zeros
    # a mixed session: a person's decision, then the rest alone
    cli("decide", cli.start("quick"), "reject")  # step one falls back to COACHING
    t = Pty(home, "run", "quick")
    t.key("a")
    t.expect("[2/2] two … ok")
    assert t.exit_code() == 0
    assert "session: 1 accepted, 1 step ran on their own (100% accepted)" in t.out


def test_inline_correction_is_prefilled_with_line_editing(home: Path) -> None:
    t = Pty(home, "coach", "hello")
    t.key("c")
    t.expect("corrected command: echo 'hello from coachctl'")
    t.child.send("\x01")  # Ctrl-A: to the start of the line (readline, not the tty)
    t.child.send("X=1 ")
    t.child.send("\x05")  # Ctrl-E: to the end
    t.line(" again")
    t.expect("hello from coachctl again")
    t.expect("corrected and ran: exit 0")
    t.key("p")
    assert t.exit_code() == 0
    [d] = only_session(home)["decisions"]
    assert d["command"] == "X=1 echo 'hello from coachctl' again"


def test_prompts_show_with_stderr_thrown_away(home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VISUAL", "EDITOR")}
    env.update({"COACHCTL_HOME": str(home), "NO_COLOR": "1", "TERM": "xterm"})
    child = pexpect.spawn(
        "/bin/sh",
        ["-c", f"exec {sys.executable} -m coachctl coach hello 2>/dev/null"],
        env=env,
        dimensions=(40, 120),
        timeout=10,
        encoding="utf-8",
    )
    child.expect_exact(KEYS_PROMPT)
    child.send("c")
    child.expect_exact("corrected command: echo 'hello from coachctl'")
    child.sendline("")
    child.expect_exact("unchanged: correction cancelled")
    child.expect_exact(KEYS_PROMPT)
    child.send("r")
    child.expect_exact("why (optional, Enter to skip): ")
    child.sendline("because")
    child.expect_exact(KEYS_PROMPT)
    child.send("m")
    child.expect_exact("what did you run? (optional, Enter to skip): ")
    child.sendline("")
    child.expect_exact(KEYS_PROMPT)
    child.send("p")
    child.expect(pexpect.EOF)
    assert re.search(r"continue with: coachctl resume \S+", child.before or "")
