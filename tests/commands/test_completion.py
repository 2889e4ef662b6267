"""Shell completion through Click's protocol (`_COACHCTL_COMPLETE=zsh_complete`), in a real
process as a shell runs it: sessions newest first with help, workflows, steps, choices."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Cli, coachctl_cmd


def complete(home: Path, line: str, shell: str = "zsh") -> list[tuple[str, str, str]]:
    """What the shell gets for `line` (the word being completed is after the last space)."""
    words = line.split(" ")
    env = {
        **os.environ,
        "COACHCTL_HOME": str(home),
        "_COACHCTL_COMPLETE": f"{shell}_complete",
        "COMP_WORDS": line,
        "COMP_CWORD": str(len(words) - 1),
    }
    out = subprocess.run(
        coachctl_cmd(), env=env, capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stderr == ""
    if shell == "bash":
        return [(kind, value, "") for kind, value in (x.split(",", 1) for x in out.stdout.split())]
    lines = out.stdout.splitlines()
    assert len(lines) % 3 == 0, lines
    help_ = [("" if lines[i] == "_" else lines[i]) for i in range(2, len(lines), 3)]
    return [(lines[i], lines[i + 1], help_[i // 3]) for i in range(0, len(lines), 3)]


def values(items: list[tuple[str, str, str]]) -> list[str]:
    return [v for _, v, _ in items]


@pytest.fixture
def three(cli: Cli) -> list[str]:
    ids = [cli.start() for _ in range(3)]
    cli("pause", ids[1])
    return ids


@pytest.mark.parametrize("command", ["show", "resume", "pause", "cancel", "decide"])
def test_sessions_newest_first_with_workflow_and_status(
    cli: Cli, home: Path, three: list[str], command: str
) -> None:
    items = complete(home, f"coachctl {command} ")
    assert values(items) == three[::-1]
    helps = {v: h for _, v, h in items}
    assert helps[three[1]] == "hello · paused at greet"
    assert helps[three[0]] == "hello · active at greet"


def test_a_session_prefix_or_its_random_part(cli: Cli, home: Path, three: list[str]) -> None:
    assert values(complete(home, f"coachctl show {three[2][:11]}")) == [three[2]]
    suffix = three[0].rsplit("-", 1)[1]
    assert values(complete(home, f"coachctl decide {suffix[:3]}")) == [three[0]]
    assert values(complete(home, f"coachctl events --session {three[1]}")) == [three[1]]


def test_completion_never_builds_the_index(cli: Cli, home: Path, three: list[str]) -> None:
    index = home / "sessions" / ".index"
    shutil.rmtree(index, ignore_errors=True)
    assert len(complete(home, "coachctl show ")) == 3
    complete(home, f"coachctl decide {three[0]} accept --step ")
    assert not index.exists()


def test_workflows_by_id_with_their_name_and_paths_as_files(home: Path) -> None:
    items = complete(home, "coachctl run ")
    assert values(items) == ["hello", "incident-triage", "rotate-certs"]
    assert items[0][2] == "Hello, coachctl"
    assert values(complete(home, "coachctl coach inc")) == ["incident-triage"]
    assert complete(home, "coachctl run ./workflows/he") == [("file", "./workflows/he", "")]
    for line in ("coachctl stats r", "coachctl readiness r", "coachctl validate r",
                 "coachctl corrections export r", "coachctl sessions --workflow r"):  # fmt: skip
        assert values(complete(home, line)) == ["rotate-certs"], line


def test_step_ids(cli: Cli, home: Path, three: list[str]) -> None:
    assert values(complete(home, "coachctl run hello --start-at ")) == ["greet", "clock", "look"]
    assert values(complete(home, "coachctl coach hello --start-at c")) == ["clock"]
    assert values(complete(home, "coachctl corrections adopt hello l")) == ["look"]
    assert values(complete(home, "coachctl corrections drop hello ")) == ["greet", "clock", "look"]
    cli("decide", three[0], "skip")
    got = values(complete(home, f"coachctl decide {three[0]} accept --step "))
    assert got == ["clock", "look", "greet"]  # the current step first


def test_choices(home: Path) -> None:
    assert values(complete(home, "coachctl stats --by ")) == ["workflow", "step"]
    assert values(complete(home, "coachctl readiness --format t")) == ["text", "table"]
    assert values(complete(home, "coachctl sessions --format ")) == ["table", "json", "csv"]
    assert values(complete(home, "coachctl decide x ")) == [
        "accept", "reject", "correct", "manual", "skip",
    ]  # fmt: skip


def test_bash_and_a_broken_home_complete_quietly(tmp_path: Path) -> None:
    broken = tmp_path / "nowhere"
    assert complete(broken, "coachctl show ", shell="bash") == []
    assert complete(broken, "coachctl run ", shell="bash") == [("file", "", "")]
