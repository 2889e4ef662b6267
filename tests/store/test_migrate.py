"""`coachctl store migrate --to URL|DIR`: both ways, into an empty store only, verified,
the source marked as moved (CONTRACT §7)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import Cli


def history(cli: Cli) -> list[str]:
    """A little of everything: decisions, a learned command, a hand choice, events."""
    sids = []
    for _ in range(3):
        sid = cli.start("hello")
        assert cli("decide", sid, "accept", "--no-exec").exit_code == 0
        assert cli("decide", sid, "correct", "--correction", "date").exit_code == 0
        sids.append(sid)
    adopted = cli("corrections", "adopt", "hello", "look", "--command", "ls -l")
    assert adopted.exit_code == 0, adopted.stderr
    paused = cli.start("hello")
    assert cli("pause", paused).exit_code == 0
    return [*sids, paused]


def snapshot(cli: Cli, sids: list[str]) -> tuple[object, ...]:
    stats = cli("stats", "--format", "json", "--by", "step")
    events = cli("events", "--format", "json")
    corrections = cli("corrections", "list", "--format", "json")
    shown = [cli.json("show", sid) for sid in sids]
    for s in shown:
        for d in s["decisions"]:
            d.pop("duration", None)
    return (
        json.loads(stats.stdout),
        [json.loads(line) for line in events.stdout.splitlines()],
        corrections.stdout,
        shown,
    )


def test_file_to_postgres_and_back(cli: Cli, pg_empty: str, tmp_path: Path) -> None:
    sids = history(cli)
    before = snapshot(cli, sids)

    moved = cli("store", "migrate", "--to", pg_empty, "--format", "json")
    assert moved.exit_code == 0, moved.stderr
    out = json.loads(moved.stdout)
    assert (out["sessions"], out["hand_choices"], out["stats_equal"]) == (4, 1, True)
    assert out["events"] == len(before[1])

    refused = cli("decide", sids[0], "skip")
    assert refused.exit_code == 2
    assert "was moved to postgres store" in refused.stderr
    assert cli("show", sids[0]).exit_code == 0  # reads still work, nothing deleted
    status = cli("store", "status")
    assert "moved to: postgres store postgresql://" in status.stdout

    on_pg = Cli(cli.home)
    env = {"COACHCTL_STORE": pg_empty}
    assert snapshot_with(on_pg, sids, env) == before

    back = tmp_path / "back"
    res = on_pg("store", "migrate", "--to", str(back), env=env)
    assert res.exit_code == 0, res.stderr
    assert on_pg("decide", sids[0], "skip", env=env).exit_code == 2
    # the folder now holds the store: a home with the same workflows reads it the same
    shutil.copytree(cli.home / "workflows", back / "workflows")
    assert snapshot(Cli(back), sids) == before


def snapshot_with(cli: Cli, sids: list[str], env: dict[str, str]) -> tuple[object, ...]:
    import os

    saved = os.environ.get("COACHCTL_STORE")
    os.environ["COACHCTL_STORE"] = env["COACHCTL_STORE"]
    try:
        return snapshot(cli, sids)
    finally:
        if saved is None:
            del os.environ["COACHCTL_STORE"]
        else:
            os.environ["COACHCTL_STORE"] = saved


def test_a_non_empty_target_is_refused_and_nothing_is_marked(
    cli: Cli, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COACHCTL_STORE", pg_url)
    cli.start("hello")
    monkeypatch.delenv("COACHCTL_STORE")
    sid = cli.start("hello")
    res = cli("store", "migrate", "--to", pg_url)
    assert res.exit_code == 2
    assert "is not empty" in res.stderr and res.stderr.count("\n") == 1
    assert cli("decide", sid, "skip").exit_code == 0  # the source was not marked


def test_migrate_shows_a_progress_bar_on_a_terminal(cli: Cli, pg_empty: str) -> None:
    import os
    import sys

    import pexpect

    for _ in range(3):
        cli.start("hello")
    env = {k: v for k, v in os.environ.items() if k != "COACHCTL_STORE"}
    env["TERM"] = "xterm"
    child = pexpect.spawn(
        sys.executable,
        ["-m", "coachctl", "--home", str(cli.home), "store", "migrate", "--to", pg_empty],
        env=env,
        timeout=30,
        encoding="utf-8",
        dimensions=(24, 100),
    )
    child.expect_exact("sessions")
    child.expect_exact("100%")
    child.expect_exact("copied 3 sessions")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_a_scopes_hand_choice_moves_both_ways(cli: Cli, pg_empty: str, tmp_path: Path) -> None:
    """Hand choices per trust scope are part of the record every store keeps whole."""
    from tests.commands.test_scope import DEPLOY
    from tests.conftest import write_workflow

    write_workflow(cli.home, "deploy", DEPLOY)
    adopt = ("corrections", "adopt", "deploy", "deploy", "--command", "echo careful")
    assert cli(*adopt, "--var", "env=prod").exit_code == 0

    def proposes(c: Cli, value: str, env: dict[str, str] | None = None) -> object:
        got = c("coach", "deploy", "--no-input", "--var", f"env={value}", "--format", "json",
                env=env)  # fmt: skip
        assert got.exit_code == 0, got.stderr
        return json.loads(got.stdout)["step"]["suggestion"]

    assert cli("store", "migrate", "--to", pg_empty).exit_code == 0
    on_pg = {"COACHCTL_STORE": pg_empty}
    assert proposes(cli, "prod", on_pg) == "echo careful"
    assert proposes(cli, "staging", on_pg) == "echo deploying to staging"

    back = tmp_path / "back"
    assert cli("store", "migrate", "--to", str(back), env=on_pg).exit_code == 0
    shutil.copytree(cli.home / "workflows", back / "workflows")
    assert proposes(Cli(back), "prod") == "echo careful"
    (back / "sessions" / "packs" / "deploy.json").unlink()  # rebuilt from the choices alone
    assert proposes(Cli(back), "prod") == "echo careful"
    assert proposes(Cli(back), "staging") == "echo deploying to staging"
