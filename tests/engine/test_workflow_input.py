"""Workflow input at the edges: what `run` would refuse, `max_level` case, quoting hints."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from coachctl.engine.workflow_load import load_workflow
from coachctl.errors import WorkflowError
from tests.conftest import Cli, write_workflow


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wf.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def refusal(path: Path) -> str:
    with pytest.raises(WorkflowError) as info:
        load_workflow(path)
    return str(info.value)


# --------------------------------------------------------------------------- NUL in a default

NUL_DEFAULT = 'variables:\n  v: "a\\0b"\nsteps:\n  - id: a\n    run: echo {{ v }}\n'


def test_a_nul_in_a_variable_default_is_refused_at_load(tmp_path: Path) -> None:
    path = write(tmp_path, NUL_DEFAULT)
    assert refusal(path) == (
        f"{path}:2: variable 'v' contains a NUL byte, which a shell argument cannot hold"
    )


def test_validate_refuses_what_run_refuses(cli: Cli, home: Path) -> None:
    write_workflow(home, "nul", NUL_DEFAULT)
    validated = cli("validate", "nul")
    ran = cli("run", "nul", "--no-input")
    assert validated.exit_code == ran.exit_code == 2
    assert "NUL byte" in validated.stderr and "NUL byte" in ran.stderr
    assert not list((home / "sessions").glob("*.json")) if (home / "sessions").exists() else True


# --------------------------------------------------------------------------- max_level


@pytest.mark.parametrize("written", ["coaching", "Coaching", "COACHING", "auto", "Observation"])
def test_max_level_accepts_any_case(tmp_path: Path, written: str) -> None:
    path = write(tmp_path, f"steps:\n  - id: a\n    run: x\n    max_level: {written}\n")
    assert load_workflow(path).steps[0].max_level == written.upper()


def test_max_level_still_refuses_an_unknown_level(tmp_path: Path) -> None:
    path = write(tmp_path, "steps:\n  - id: a\n    run: x\n    max_level: manual\n")
    assert "max_level of step 1 must be one of OBSERVATION, COACHING, AUTO" in refusal(path)


def test_a_lower_case_ceiling_caps_the_step(cli: Cli, home: Path) -> None:
    write_workflow(
        home,
        "capped",
        "coaching: {min_decisions: 1, strict: false}\n"
        "steps:\n  - id: a\n    run: 'true'\n    max_level: coaching\n",
    )
    sid = cli.start("capped")
    assert cli("decide", sid, "accept").exit_code == 0
    out = cli.json("readiness", "capped")
    step = out["workflows"][0]["steps"][0]
    assert step["level"] == "COACHING" and step["accepts_needed"] is None


# --------------------------------------------------------------------------- quoting hints


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("echo status: ok", "quote the value: a ': ' in it starts a YAML mapping"),
        ("{{ v }} --now", "quote the value: one that starts with {{ is read as a YAML mapping"),
        ("{{ v }}", "quote the value: one that starts with {{ is read as a YAML mapping"),
        ('"{{ v }}" --now', "quote the value whole"),
    ],
)
def test_an_unquoted_value_gets_a_quote_hint(tmp_path: Path, value: str, hint: str) -> None:
    path = write(tmp_path, f"variables:\n  v: x\nsteps:\n  - id: a\n    run: {value}\n")
    message = refusal(path)
    assert message.startswith(f"{path}:5: "), message
    assert hint in message


@pytest.mark.parametrize(
    "text",
    [
        "steps:\n  - id: a\n    run: x\n  - id: b\n   run: y\n",  # bad indentation
        "steps: [{id: a, run: x}\n",  # unclosed list
        "a: 1\n---\nb: 2\n",
        "steps:\n  - id: a\n    run: [x] y\n",  # a list, then text: not about {{ or ': '
        "steps:\n  - id: a\n    run: {a: 1}\n",  # a real (flow) mapping
    ],
)
def test_other_yaml_errors_get_no_quote_hint(tmp_path: Path, text: str) -> None:
    assert "quote" not in refusal(write(tmp_path, text))


@pytest.mark.parametrize(
    "value", ['"echo status: ok"', "'{{ v }} --now'", "echo {{ v }}", "echo a:b", '"a" # c']
)
def test_quoted_values_load(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"variables:\n  v: x\nsteps:\n  - id: a\n    run: {value}\n")
    assert load_workflow(path).steps[0].run
