"""`stats`: §5 JSON, table with trend, CSV, --by step, unreadable files, bad input."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, only_workflow, write_workflow

WORKFLOW_KEYS = {
    "workflow_id", "level", "ready", "sessions", "suggestions", "accepted", "rejected",
    "corrected", "manual", "failed", "skipped", "acceptance_rate", "confidence", "steps",
}  # fmt: skip
STEP_KEYS = {
    "step_id", "level", "ready", "suggestion", "suggestions", "accepted", "rejected", "corrected",
    "manual", "failed", "skipped", "acceptance_rate", "confidence", "accepts_needed", "reason",
}  # fmt: skip
GLOBAL_KEYS = {
    "workflows", "ready_workflows", "sessions", "suggestions", "accepted", "rejected",
    "corrected", "manual", "failed", "skipped", "acceptance_rate", "confidence",
}  # fmt: skip

TWO_STEPS = """
id: two
coaching:
  min_decisions: 3
  strict: false
steps:
  - id: one
    run: echo one
  - id: two
    run: echo two
"""


@pytest.fixture
def only_two(home: Path) -> Path:
    return only_workflow(home, "two", TWO_STEPS)


def session_with(cli: Cli, *decisions: str) -> str:
    sid = cli.start("two")
    for d in decisions:
        args = ["correct", "--correction", "echo fixed"] if d == "correct" else [d]
        r = cli("decide", sid, *args, "--no-exec")
        assert r.exit_code == 0, r.stderr
    return sid


def test_json_is_exactly_contract_shape(cli: Cli, only_two: Path) -> None:
    session_with(cli, "accept", "reject")
    session_with(cli, "accept", "skip")
    out = cli.json("stats")
    assert set(out) == {"workflows", "global"}
    [w] = out["workflows"]
    assert set(w) >= WORKFLOW_KEYS
    assert all(set(s) >= STEP_KEYS for s in w["steps"])
    assert set(out["global"]) >= GLOBAL_KEYS
    one, two = w["steps"]
    assert (one["step_id"], one["suggestions"], one["accepted"], one["acceptance_rate"]) == (
        "one",
        2,
        2,
        1.0,
    )
    assert (two["rejected"], two["skipped"], two["suggestions"], two["accepted"]) == (1, 1, 1, 0)
    assert two["acceptance_rate"] == 0.0
    assert (w["sessions"], w["suggestions"], w["accepted"], w["rejected"], w["skipped"]) == (
        2,
        3,
        2,
        1,
        1,
    )
    assert w["acceptance_rate"] == 0.667
    assert out["global"]["workflows"] == 1 and out["global"]["sessions"] == 2
    assert out["global"]["accepted"] == 2 and out["global"]["suggestions"] == 3


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_every_format_has_a_row_per_workflow_and_global(cli: Cli, only_two: Path, fmt: str) -> None:
    session_with(cli, "accept", "accept")
    r = cli("stats", "--format", fmt)
    assert r.exit_code == 0, r.stderr
    assert r.stderr == ""
    if fmt == "json":
        assert [w["workflow_id"] for w in json.loads(r.stdout)["workflows"]] == ["two"]
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(r.stdout)))
        assert [row["workflow_id"] for row in rows] == ["two", "(all)"]
        assert rows[0]["accepted"] == "2" and rows[1]["accepted"] == "2"
        assert "trend" not in rows[0]
    else:
        lines = r.stdout.splitlines()
        assert lines[0].split()[:3] == ["workflow", "level", "ready"]
        assert lines[0].split()[-1] == "trend"
        assert lines[2].startswith("two ") and lines[3].startswith("(all) ")


def test_by_step(cli: Cli, only_two: Path) -> None:
    session_with(cli, "accept", "reject")
    r = cli("stats", "--by", "step", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [(x["workflow_id"], x["step_id"], x["accepted"], x["rejected"]) for x in rows] == [
        ("two", "one", "1", "0"),
        ("two", "two", "0", "1"),
        ("(all)", "", "1", "1"),
    ]
    assert rows[0]["accepts_needed"] == "2" and rows[0]["reason"] == "1 of 3 decisions"


def test_trend_column_is_a_sparkline_per_session(cli: Cli, only_two: Path) -> None:
    session_with(cli, "accept", "accept")  # 100%
    session_with(cli, "reject", "reject")  # 0%
    session_with(cli, "accept", "reject")  # 50%
    session_with(cli, "skip")  # nothing judged: a gap
    r = cli("stats", "--table-format", "plain")
    row = next(line for line in r.stdout.splitlines() if line.startswith("two "))
    assert row.endswith("█▁▅") or row.rstrip().endswith("█▁▅")
    out = cli.json("stats")
    assert out["workflows"][0]["trend"] == [1.0, 0.0, 0.5, None]


def test_unreadable_session_is_left_out_with_one_warning(cli: Cli, only_two: Path) -> None:
    session_with(cli, "accept")
    bad = only_two / "sessions" / "zzzz-bad.json"
    bad.write_text("{not json")
    r = cli("stats", "--format", "json")
    assert r.exit_code == 0
    assert r.stderr.splitlines() == [
        f"coachctl: warning: left out unreadable session file {bad}: not valid JSON"
    ]
    assert json.loads(r.stdout)["workflows"][0]["sessions"] == 1


def test_named_workflows_and_orphans(cli: Cli, only_two: Path) -> None:
    session_with(cli, "accept")
    (only_two / "workflows" / "two.yaml").rename(only_two / "gone.yaml")
    out = cli.json("stats")
    [w] = out["workflows"]
    assert (w["workflow_id"], w["source"], w["accepted"]) == ("two", "sessions", 1)
    assert [s["step_id"] for s in w["steps"]] == ["one", "two"]
    assert cli.json("stats", "two")["workflows"][0]["source"] == "sessions"


def test_current_suggestion_only(cli: Cli, only_two: Path) -> None:
    session_with(cli, "accept", "accept")
    write_workflow(only_two, "two", TWO_STEPS.replace("echo one", "echo ONE"))
    out = cli.json("stats", "two")
    one, two = out["workflows"][0]["steps"]
    assert (one["suggestion"], one["suggestions"], two["suggestions"]) == ("echo ONE", 0, 1)


def test_index_and_full_recomputation_agree(cli: Cli, only_two: Path) -> None:
    from coachctl.engine import history
    from coachctl.engine.stores import file_store

    for ds in (("accept", "reject"), ("correct", "manual"), ("skip", "accept")):
        session_with(cli, *ds)
    fast, slow = file_store(only_two), file_store(only_two, use_index=False)
    assert history.report(fast).to_json() == history.report(slow).to_json()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "coachctl: unknown workflow: nope (no workflow file, and no session of it)"),
        (["--by", "day"], "coachctl: invalid --by: day (expected workflow or step)"),
        (["../etc"], "coachctl: unknown workflow: ../etc (no workflow file, and no session of it)"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    cli: Cli, only_two: Path, args: list[str], message: str
) -> None:
    r = cli("stats", *args)
    assert r.exit_code == 2
    assert r.stderr.splitlines() == [message]
    assert r.stdout == ""


def test_invalid_named_workflow_file_is_exit_2(cli: Cli, only_two: Path) -> None:
    write_workflow(only_two, "broken", "id: broken\nsteps: 3\n")
    r = cli("stats", "broken")
    assert r.exit_code == 2
    assert len(r.stderr.splitlines()) == 1 and "broken.yaml" in r.stderr


def test_empty_home(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()  # a home that does not exist is refused (test_home.py)
    out: Any = Cli(tmp_path / "empty").json("stats")
    assert out["workflows"] == [] and out["global"]["workflows"] == 0
