"""`coachctl corrections`: list, export, import, adopt, drop, through the CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path

import pexpect
import pytest
import yaml

from tests.conftest import Cli, coachctl_cmd

COLUMNS = ["workflow_id", "step_id", "base", "correction", "times", "adopted", "source", "stale"]


def corrected_twice(cli: Cli) -> None:
    """Two hello sessions that correct greet the same way: it is adopted."""
    for _ in range(2):
        sid = cli.start()
        result = cli("decide", sid, "correct", "--correction", "echo hi there")
        assert result.exit_code == 0, result.stderr


def rows(cli: Cli, *args: str) -> list[dict[str, object]]:
    data = cli.json("corrections", "list", *args)
    assert set(data) == {"corrections"}
    return list(data["corrections"])


def test_list_is_empty_at_first(cli: Cli) -> None:
    assert rows(cli) == []
    assert cli("corrections", "list").stdout.strip() == "(none)"


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_list_formats(cli: Cli, fmt: str) -> None:
    corrected_twice(cli)
    result = cli("corrections", "list", "hello", "--format", fmt)
    assert result.exit_code == 0, result.stderr
    if fmt == "json":
        [row] = json.loads(result.stdout)["corrections"]
        assert {k: row[k] for k in COLUMNS} == {
            "workflow_id": "hello",
            "step_id": "greet",
            "base": "echo {{ greeting }}",
            "correction": "echo hi there",
            "times": 2,
            "adopted": True,
            "source": "corrected",
            "stale": False,
        }
        assert row["last_at"].endswith("Z")
    elif fmt == "csv":
        parsed = list(csv.reader(io.StringIO(result.stdout)))
        assert parsed == [
            COLUMNS,
            [
                "hello",
                "greet",
                "echo {{ greeting }}",
                "echo hi there",
                "2",
                "True",
                "corrected",
                "False",
            ],
        ]
    else:
        lines = result.stdout.splitlines()
        # people read short headers; CSV and JSON keep the full names
        assert lines[0].split() == ["workflow", "step", *COLUMNS[2:]]
        assert lines[2].split() == [
            "hello", "greet", "echo", "{{", "greeting", "}}", "echo", "hi", "there", "2", "yes",
            "corrected", "no",
        ]  # fmt: skip


def test_list_table_format(cli: Cli) -> None:
    corrected_twice(cli)
    result = cli("corrections", "list", "--table-format", "github")
    assert result.stdout.startswith("| workflow ")
    bad = cli("corrections", "list", "--table-format", "nope")
    assert bad.exit_code == 2 and "unknown table format 'nope'" in bad.stderr


def test_adopted_correction_is_the_suggestion_at_zero_trust(cli: Cli) -> None:
    corrected_twice(cli)
    state = cli.json("coach", "hello", "--no-input")
    assert state["step"]["suggestion"] == "echo hi there"
    assert state["step"]["level"] == "COACHING"
    events = [
        json.loads(line)
        for line in (cli.home / "sessions" / "events.jsonl").read_text().splitlines()
    ]
    adopted = [e for e in events if e["event"] == "suggestion_adopted"]
    assert [(e["step_id"], e["command"], e["source"]) for e in adopted] == [
        ("greet", "echo hi there", "corrected")
    ]


def test_stale_when_the_yaml_changes(cli: Cli, home: Path) -> None:
    corrected_twice(cli)
    wf = home / "workflows" / "hello.yaml"
    wf.write_text(
        wf.read_text().replace("run: echo {{ greeting }}", "run: printf %s {{ greeting }}")
    )
    [row] = rows(cli, "hello")
    assert (row["adopted"], row["stale"]) == (False, True)
    state = cli.json("coach", "hello", "--no-input")
    assert state["step"]["suggestion"] == "printf %s 'hello from coachctl'"


def test_export_to_stdout_and_file(cli: Cli, tmp_path: Path) -> None:
    corrected_twice(cli)
    out = cli("corrections", "export", "hello")
    assert out.exit_code == 0
    doc = yaml.safe_load(out.stdout)
    assert doc["workflow"] == "hello"
    assert doc["steps"][0]["suggestion"]["command"] == "echo hi there"
    target = tmp_path / "pack.yaml"
    written = cli("corrections", "export", "hello", "-o", str(target))
    assert written.exit_code == 0 and written.stdout == ""
    assert f"exported 1 step(s) of hello to {target}" in written.stderr
    assert yaml.safe_load(target.read_text()) == doc


def _other_home(tmp_path: Path, home: Path) -> Cli:
    other = tmp_path / "other"
    other.mkdir()
    (other / "workflows").mkdir()
    (other / "workflows" / "hello.yaml").write_text((home / "workflows" / "hello.yaml").read_text())
    return Cli(other)


def test_import_needs_yes_without_a_terminal(cli: Cli, home: Path, tmp_path: Path) -> None:
    corrected_twice(cli)
    target = tmp_path / "pack.yaml"
    cli("corrections", "export", "hello", "-o", str(target))
    other = _other_home(tmp_path, home)
    refused = other("corrections", "import", str(target))
    assert refused.exit_code == 2
    assert refused.stderr == "coachctl: not imported: without a terminal, confirm with --yes\n"
    assert "greet: suggestion (none) -> echo hi there" in refused.stdout
    assert other.json("corrections", "list") == {"corrections": []}
    done = other("corrections", "import", str(target), "--yes")
    assert done.exit_code == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"importing {target} into hello changes:",
        "  greet: suggestion (none) -> echo hi there",
        "  greet: correction echo {{ greeting }} -> echo hi there: times 0 -> 2",
        "imported 2 change(s) into hello",
    ]
    [row] = rows(other)
    assert (row["correction"], row["adopted"], row["source"], row["times"]) == (
        "echo hi there",
        True,
        "imported",
        2,
    )
    state = other.json("coach", "hello", "--no-input")
    assert state["step"]["suggestion"] == "echo hi there"
    again = other("corrections", "import", str(target), "--yes")
    assert again.exit_code == 0 and again.stdout.startswith("nothing to change")


def test_import_asks_at_a_terminal(cli: Cli, home: Path, tmp_path: Path) -> None:
    corrected_twice(cli)
    target = tmp_path / "pack.yaml"
    cli("corrections", "export", "hello", "-o", str(target))
    other = _other_home(tmp_path, home)
    env = {**os.environ, "COACHCTL_HOME": str(other.home)}
    args = [*coachctl_cmd()[1:], "corrections", "import", str(target)]
    child = pexpect.spawn(sys.executable, args, env=env, encoding="utf-8", timeout=20)
    child.expect(r"apply these changes\? \[y/N\]")
    child.sendline("n")
    child.expect("nothing changed")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert rows(other) == []
    child = pexpect.spawn(sys.executable, args, env=env, encoding="utf-8", timeout=20)
    child.expect(r"apply these changes\? \[y/N\]")
    child.sendline("y")
    child.expect("imported 2 change")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert [r["source"] for r in rows(other)] == ["imported"]


def test_adopt_and_drop(cli: Cli) -> None:
    sid = cli.start()
    cli("decide", sid, "correct", "--correction", "echo once")
    adopted = cli("corrections", "adopt", "hello", "greet")
    assert adopted.exit_code == 0, adopted.stderr
    assert (
        adopted.stdout
        == "hello/greet now proposes: echo once (corrected; it starts at zero trust)\n"
    )
    assert cli.json("coach", "hello", "--no-input")["step"]["suggestion"] == "echo once"
    dropped = cli("corrections", "drop", "hello", "greet")
    assert dropped.stdout == "hello/greet dropped echo once; it proposes echo {{ greeting }}\n"
    assert (
        cli.json("coach", "hello", "--no-input")["step"]["suggestion"]
        == "echo 'hello from coachctl'"
    )
    given = cli.json("corrections", "adopt", "hello", "clock", "--command", "date -u +%F")
    assert (given["command"], given["source"], given["base"]) == (
        "date -u +%F",
        "manual",
        "date -u",
    )
    assert cli.json("corrections", "drop", "hello", "clock")["suggestion"] == "date -u"


def test_adopt_an_observed_command(cli: Cli) -> None:
    sid = json.loads(
        cli("run", "incident-triage", "--mode", "observation", "--format", "json").stdout
    )["session_id"]
    for cmd in ("uptime", "df -h .", "ps aux"):
        cli("decide", sid, "manual", "--command", cmd)
    cli("decide", sid, "manual", "--command", "slack-post web ok")
    [row] = rows(cli, "incident-triage")
    assert (row["step_id"], row["base"], row["source"], row["adopted"]) == (
        "notify",
        None,
        "observed",
        False,
    )
    assert cli("corrections", "adopt", "incident-triage", "notify").exit_code == 0
    assert rows(cli, "incident-triage")[0]["adopted"] is True
    plan = cli.json("run", "incident-triage", "--dry-run")
    assert plan["steps"][3]["command"] == "slack-post web ok"
    assert plan["steps"][3]["source"] == "learned"


@pytest.mark.parametrize(
    "args, message",
    [
        (["list", "nope"], "coachctl: unknown workflow: nope"),
        (["export", "nope"], "coachctl: unknown workflow: nope"),
        (["adopt", "nope", "greet"], "coachctl: unknown workflow: nope"),
        (
            ["adopt", "hello", "nostep"],
            "coachctl: unknown step 'nostep' in workflow hello (steps: greet, clock, look)",
        ),
        (["drop", "hello", "nostep"], "coachctl: unknown step 'nostep' in workflow hello"),
        (
            ["drop", "hello", "greet"],
            "coachctl: step greet of hello has no learned or adopted suggestion",
        ),
        (["adopt", "hello", "greet"], "coachctl: nothing to adopt for step greet"),
        (
            ["adopt", "hello", "greet", "--command", "echo {{ who }}"],
            "coachctl: undefined variable in command: who",
        ),
        (["adopt", "hello", "greet", "--command", ""], "coachctl: the command is empty"),
        (
            ["import", "missing.yaml"],
            "coachctl: cannot read missing.yaml: No such file or directory",
        ),
        (
            ["export", "hello", "-o", "/nonexistent/dir/p.yaml"],
            "coachctl: cannot write /nonexistent/dir/p.yaml",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli: Cli, args: list[str], message: str) -> None:
    result = cli("corrections", *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(message), result.stderr


@pytest.mark.parametrize(
    "text, message",
    [
        ("workflow: [unclosed\n", "bad.yaml:2: invalid correction pack:"),
        ("- 1\n- 2\n", "bad.yaml: invalid correction pack: expected a mapping"),
        ("workflow: nope\nsteps: []\n", "unknown workflow: nope"),
        ("workflow: hello\nsteps:\n  - step: nostep\n", "unknown step 'nostep' in workflow hello"),
        (
            "workflow: hello\nsteps:\n  - step: greet\n"
            "    suggestion: {command: 'echo {{ who }}', base: null}\n",
            "undefined variable in command: who",
        ),
        (
            "workflow: hello\nsteps:\n  - step: greet\n"
            "    corrections: [{base: null, correction: x, times: two}]\n",
            "bad.yaml: invalid correction pack: steps[0].corrections[0]",
        ),
    ],
)
def test_invalid_import_file(cli: Cli, tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "cwd" / "bad.yaml"
    path.write_text(text)
    result = cli("corrections", "import", "bad.yaml", "--yes")
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not (cli.home / "sessions" / "packs").exists()


def test_help(cli: Cli) -> None:
    for sub in ("list", "export", "import", "adopt", "drop"):
        result = cli("corrections", sub, "--help")
        assert result.exit_code == 0 and "Usage:" in result.stdout
