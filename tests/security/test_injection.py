"""A variable's value is one shell word, whatever it holds: never a second command.

Each payload goes through `coachctl run --var` to a step that really runs, and the test checks
that no PWNED file appeared and that the command printed exactly the value.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Cli, write_workflow

WF = "id: inj\nvariables:\n  v: x\nsteps:\n  - id: say\n    run: printf %s {{ v }}\n"

PAYLOADS = [
    "x; touch PWNED",
    "x && touch PWNED",
    "x || touch PWNED",
    "x | touch PWNED",
    "$(touch PWNED)",
    "`touch PWNED`",
    "'; touch PWNED; '",
    '"; touch PWNED; "',
    "x'\"'\"'; touch PWNED #",
    "x\ntouch PWNED",
    "x\r\ntouch PWNED",
    "${IFS}touch${IFS}PWNED",
    "$((1+1)); touch PWNED",
    "> PWNED",
    "x & touch PWNED &",
    "{{ v }}; touch PWNED",
    "-n; touch PWNED",
    "",
    "héllo wörld ✓ 日本",
    "\\'; touch PWNED",
]


def run_with(cli: Cli, value: str) -> tuple[int, str, str]:
    res = cli(
        "run",
        "inj",
        "--mode",
        "auto",
        "--force",
        "--no-input",
        "--var",
        f"v={value}",
        "--format",
        "json",
    )
    if res.exit_code != 0:
        return res.exit_code, "", res.stderr
    sid = json.loads(res.stdout)["session_id"]
    data = json.loads((cli.home / "sessions" / f"{sid}.json").read_bytes())
    (decision,) = data["decisions"]
    assert decision["exit_code"] == 0, decision
    return 0, decision["output_tail"], res.stderr


@pytest.mark.parametrize("value", PAYLOADS)
def test_a_value_never_runs_a_second_command(cli: Cli, home: Path, value: str) -> None:
    write_workflow(home, "inj", WF)
    code, output, err = run_with(cli, value)
    assert code == 0, err
    assert output == value
    assert not (Path.cwd() / "PWNED").exists()
    assert not (home / "PWNED").exists()


def test_a_nul_byte_is_refused_before_anything_runs(cli: Cli, home: Path) -> None:
    write_workflow(home, "inj", WF)
    res = cli("run", "inj", "--no-input", "--var", "v=a\0; touch PWNED")
    assert res.exit_code == 2
    assert (
        res.stderr
        == "coachctl: variable v contains a NUL byte, which a shell argument cannot hold\n"
    )
    assert not (home / "sessions").exists() or not list((home / "sessions").glob("*.json"))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    value=st.text(
        alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=40
    )
)
def test_any_value_comes_out_exactly_as_given(value: str) -> None:
    """Property: render_run + a real shell prints back exactly the value."""
    import subprocess

    from coachctl.engine.templates import render_run

    command = render_run("printf %s {{ v }}", {"v": value})
    out = subprocess.run(command, shell=True, capture_output=True, timeout=10)
    assert out.returncode == 0
    assert out.stdout == value.encode("utf-8", "surrogateescape")
