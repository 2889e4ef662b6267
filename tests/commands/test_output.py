"""Tables fit the terminal (default columns, --wide, --columns); CSV and JSON stay complete."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from coachctl.commands._output import View, fit_table, short_time
from tests.conftest import Cli

TABLES = [
    ["stats"],
    ["stats", "--by", "step"],
    ["workflows"],
    ["sessions"],
    ["readiness", "--format", "table"],
    ["readiness"],
    ["events"],
    ["corrections", "list"],
]


@pytest.fixture
def busy(cli: Cli, home: Path) -> Cli:
    """Sessions on every bundled workflow, with a correction and a long reason or two."""
    for _ in range(2):
        sid = cli.start("hello")
        cli("decide", sid, "accept")
        cli("decide", sid, "correct", "--correction", "date -u +%s")
        cli("decide", sid, "reject", "--feedback", "too much output for a first look, really")
    sid = cli.start("rotate-certs", "--var", "env=staging")
    cli("decide", sid, "reject", "--feedback", "wrong host")
    cli.start("incident-triage")
    return cli


def widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


@pytest.mark.parametrize("args", TABLES, ids=" ".join)
def test_every_table_fits_100_columns(busy: Cli, args: list[str]) -> None:
    r = busy(*args, env={"COLUMNS": "100"})
    assert r.exit_code in (0, 1), r.stderr
    assert r.stdout.strip()
    assert widest(r.stdout) <= 100, r.stdout


@pytest.mark.parametrize("args", [["stats"], ["stats", "--by", "step"], ["workflows"]])
def test_wide_shows_every_column_uncut(busy: Cli, args: list[str]) -> None:
    narrow = busy(*args, env={"COLUMNS": "100"}).stdout
    wide = busy(*args, "--wide", env={"COLUMNS": "100"}).stdout
    assert widest(wide) > 100
    assert "…" not in wide
    header = wide.splitlines()[0].split()
    assert {"rejected", "corrected", "skipped"} <= set(header) or "path" in header
    assert len(header) > len(narrow.splitlines()[0].split())


def test_columns_picks_and_bad_names_are_exit_2(busy: Cli) -> None:
    r = busy("stats", "--columns", "workflow_id,skipped")
    assert r.exit_code == 0
    assert r.stdout.splitlines()[0].split() == ["workflow", "skipped"]
    bad = busy("stats", "--columns", "workflow_id,nope")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("coachctl: invalid --columns: nope (choose from workflow_id, ")
    assert bad.stderr.count("\n") == 1


@pytest.mark.parametrize("by", ["workflow", "step"])
def test_csv_is_complete_whatever_the_terminal(busy: Cli, by: str) -> None:
    from coachctl.commands.stats import STEP_COLUMNS, WORKFLOW_COLUMNS

    r = busy("stats", "--by", by, "--format", "csv", env={"COLUMNS": "40"})
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    expected = STEP_COLUMNS if by == "step" else [c for c in WORKFLOW_COLUMNS if c != "trend"]
    assert list(rows[0]) == list(expected)
    assert all("…" not in v for row in rows for v in row.values())


def test_tables_and_events_show_timestamps_to_the_second(busy: Cli) -> None:
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
    sessions = busy("sessions").stdout
    assert stamp.search(sessions) and "." not in stamp.search(sessions).group(0)  # type: ignore[union-attr]
    first = busy("events").stdout.splitlines()[0].split()[0]
    assert stamp.fullmatch(first)
    raw = busy.json("sessions")[0]["updated_at"]
    assert "." in raw  # JSON keeps the full precision


def test_events_lines_are_whole_with_wide_or_in_a_pipe(busy: Cli) -> None:
    cut = busy("events", env={"COLUMNS": "60"}).stdout.splitlines()
    assert all(len(line) <= 60 for line in cut)
    assert any(line.endswith("…") for line in cut)
    whole = busy("events", "--wide", env={"COLUMNS": "60"}).stdout
    assert "too much output for a first look, really" in whole
    assert "…" not in busy("events").stdout  # no COLUMNS, not a terminal: nothing is cut


def test_readiness_text_wraps_with_an_indent(busy: Cli) -> None:
    lines = busy("readiness", env={"COLUMNS": "60"}).stdout.splitlines()
    assert all(len(line) < 60 for line in lines)
    assert any(line.startswith("      ") for line in lines)


def test_fit_drops_then_cuts() -> None:
    view = View(("a", "b", "c"), shrink=("c",), drop=("b",))
    rows = [{"a": "x", "b": "bbbbbbbbbb", "c": "c" * 60}]
    text = fit_table(rows, view, "plain", width=40)
    assert widest(text) <= 40
    assert "bbbb" not in text and text.rstrip().endswith("…")
    assert fit_table(rows, view, "plain", width=40, wide=True).count("c" * 60) == 1


def test_short_time() -> None:
    assert short_time("2026-11-30T12:46:03.838368Z") == "2026-11-30T12:46:03Z"
    assert short_time("not a time") == "not a time"
