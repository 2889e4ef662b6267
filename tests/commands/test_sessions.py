"""`sessions` and `show`: listing, filters, formats, unreadable files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.conftest import Cli


@pytest.fixture
def three(cli: Cli) -> list[str]:
    a = cli.start()
    b = cli.start()
    cli("pause", b)
    c = cli.json("run", "incident-triage", "--mode", "observation")["session_id"]
    return [a, b, c]


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_sessions_formats(cli: Cli, three: list[str], fmt: str) -> None:
    result = cli("sessions", "--format", fmt)
    assert result.exit_code == 0
    if fmt == "json":
        rows = json.loads(result.stdout)
        assert [r["session_id"] for r in rows] == sorted(three)
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert {r["session_id"] for r in rows} == set(three)
        assert rows[0].keys() >= {"workflow_id", "status", "mode"}
    else:
        for sid in three:
            assert sid in result.stdout


@pytest.mark.parametrize(
    "args, count",
    [
        (["--status", "paused"], 1),
        (["--mode", "observation"], 1),
        (["--workflow", "hello"], 2),
        (["--workflow", "hello", "--status", "active"], 1),
        (["--workflow", "nothing"], 0),
    ],
)
def test_sessions_filters(cli: Cli, three: list[str], args: list[str], count: int) -> None:
    rows = json.loads(cli("sessions", *args, "--format", "json").stdout)
    assert len(rows) == count


def test_table_format_option(cli: Cli, three: list[str]) -> None:
    out = cli("sessions", "--table-format", "github").stdout
    assert out.splitlines()[1].startswith("|--")
    bad = cli("sessions", "--table-format", "nope")
    assert bad.exit_code == 2 and "unknown table format" in bad.stderr


def test_unreadable_file_is_named_once(cli: Cli, home: Path, three: list[str]) -> None:
    (home / "sessions" / "broken-0001.json").write_text("{oops")
    result = cli("sessions", "--format", "json")
    assert result.exit_code == 0
    assert len(json.loads(result.stdout)) == 3
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 1 and "broken-0001.json" in warnings[0]


def test_empty_home(cli: Cli) -> None:
    assert json.loads(cli("sessions", "--format", "json").stdout) == []
    assert cli("sessions").stdout.strip() == "(none)"


def test_show_text_and_json(cli: Cli) -> None:
    sid = cli.start()
    cli("decide", sid, "accept")
    cli("decide", sid, "reject", "--feedback", "no")
    text = cli("show", sid).stdout
    assert "step 3/3: look" in text and "decisions:" in text and "reject" in text
    data = json.loads(cli("show", sid, "--format", "json").stdout)
    assert [d["decision"] for d in data["decisions"]] == ["accept", "reject"]
    assert data["decisions"][0]["output_tail"] == "hello from coachctl\n"
    assert data["stats"]["accepted"] == 1 and data["stats"]["rejected"] == 1


def test_show_unknown(cli: Cli) -> None:
    result = cli("show", "zzzz-none")
    assert result.exit_code == 2 and "unknown session" in result.stderr
