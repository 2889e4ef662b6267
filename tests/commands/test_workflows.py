"""`validate` and `workflows`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Cli, write_workflow


def test_validate_bundled_examples(cli: Cli) -> None:
    result = cli("validate", "hello", "rotate-certs", "incident-triage")
    assert result.exit_code == 0
    assert result.stdout.count(": ok (") == 3


def test_validate_reports_every_bad_file_with_line(cli: Cli, home: Path) -> None:
    a = write_workflow(home, "a", "steps:\n  - id: x\n    run: echo {{ nope }}\n")
    b = write_workflow(home, "b", "name: B\nsteps: []\n")
    result = cli("validate", "a", "b", "hello")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"{a}:3:") and "nope" in lines[0]
    assert lines[1].startswith(f"{b}:")
    assert "2 of 3 workflow files invalid" in lines[2]
    assert "hello.yaml: ok" in result.stdout


def test_validate_needs_an_argument(cli: Cli) -> None:
    assert cli("validate").exit_code == 2


def test_workflows_lists_the_home(cli: Cli) -> None:
    rows = json.loads(cli("workflows", "--format", "json").stdout)
    assert [r["workflow_id"] for r in rows] == ["hello", "incident-triage", "rotate-certs"]
    assert {r["level"] for r in rows} <= {"OBSERVATION", "COACHING", "AUTO"}
    assert all(r["ready"] is False for r in rows)


def test_workflows_warns_on_invalid_file(cli: Cli, home: Path) -> None:
    write_workflow(home, "zz-bad", "steps: 3\n")
    result = cli("workflows", "--format", "json")
    assert result.exit_code == 0
    assert "zz-bad.yaml" in result.stderr
    assert len(json.loads(result.stdout)) == 4
