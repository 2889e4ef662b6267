"""Trust scope and per-step rules at the CLI (issue 12): AUTO in staging is not AUTO in prod."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pexpect
import pytest

from tests.commands.test_panel import Pty as PanelPty
from tests.conftest import Cli, only_workflow, write_workflow

# The example: a deploy step accepted three times with env=staging.
DEPLOY = """
id: deploy
variables:
  env: null
coaching:
  min_decisions: 3
  strict: false
  trust_scope: [env]
steps:
  - id: deploy
    run: echo deploying to {{ env }}
"""

# Two steps with the same history; one asks for more than the workflow does.
SIBLINGS = """
id: siblings
coaching:
  min_decisions: 3
  strict: false
steps:
  - id: build
    run: echo build
  - id: migrate
    run: echo migrate
    coaching: {threshold: 0.95, min_decisions: 5}
"""


@pytest.fixture
def deploy(home: Path) -> Path:
    return only_workflow(home, "deploy", DEPLOY)


def accept(cli: Cli, workflow: str, n: int, *var: str, steps: int = 1) -> None:
    for _ in range(n):
        sid = cli.start(workflow, *var)
        for _ in range(steps):
            r = cli("decide", sid, "accept", "--no-exec")
            assert r.exit_code == 0, r.stderr


def test_staging_trust_does_not_make_prod_auto(cli: Cli, deploy: Path) -> None:
    accept(cli, "deploy", 3, "--var", "env=staging")

    staging = cli("readiness", "deploy", "--var", "env=staging")
    assert staging.exit_code == 0, staging.output
    assert "deploy: ready for env=staging (level AUTO)" in staging.stdout

    prod = cli("readiness", "deploy", "--var", "env=prod")
    assert prod.exit_code == 1, prod.output
    assert "deploy: not ready for env=prod (level COACHING)" in prod.stdout
    assert "0 decisions; needs 3 more accepts in a row" in prod.stdout

    unnamed = cli("readiness", "deploy")
    assert unnamed.exit_code == 2
    assert unnamed.stdout == ""
    assert unnamed.stderr.strip() == (
        "coachctl: deploy: name the scope: --var env=… (a trust_scope variable without a default)"
    )

    plan = cli("run", "deploy", "--var", "env=prod", "--dry-run")
    assert plan.exit_code == 0, plan.output
    assert "mode mixed, trust scope env=prod" in plan.stdout
    assert "1. deploy [COACHING] asks a person (AUTO for env=staging; COACHING here)" in plan.stdout
    assert "$ echo deploying to prod" in plan.stdout
    staged = cli("run", "deploy", "--var", "env=staging", "--dry-run")
    assert "1. deploy [AUTO] runs alone\n" in staged.stdout


def test_prod_run_asks_a_person_while_staging_runs_alone(cli: Cli, deploy: Path) -> None:
    accept(cli, "deploy", 3, "--var", "env=staging")
    prod = cli.json("run", "deploy", "--var", "env=prod", "--no-input")
    assert prod["status"] == "active" and prod["step"]["id"] == "deploy"
    assert prod["step"]["level"] == "COACHING"
    staging = cli.json("run", "deploy", "--var", "env=staging", "--no-input")
    assert staging["status"] == "completed"
    auto = cli("run", "deploy", "--var", "env=prod", "--mode", "auto")
    assert auto.exit_code == 1
    assert "deploy is not ready: deploy" in auto.stderr


def test_session_records_its_scope(cli: Cli, deploy: Path) -> None:
    sid = cli.start("deploy", "--var", "env=staging")
    data = json.loads((deploy / "sessions" / f"{sid}.json").read_text())
    assert data["scope"] == {"env": "staging"}
    assert data["coaching"]["trust_scope"] == ["env"]
    # Fixed for its life: nothing that continues a session takes --var.
    for args in (("resume", sid), ("decide", sid, "accept")):
        r = cli(*args, "--var", "env=prod")
        assert r.exit_code == 2
        assert "No such option '--var'" in r.stderr


def test_stats_one_row_per_scope_and_json_keys(cli: Cli, deploy: Path) -> None:
    accept(cli, "deploy", 3, "--var", "env=staging")
    accept(cli, "deploy", 1, "--var", "env=prod")
    out = cli.json("stats", "deploy")
    scopes = [w["scope"] for w in out["workflows"]]
    assert scopes == [{"env": "prod"}, {"env": "staging"}]
    for w in out["workflows"]:
        assert [s["scope"] for s in w["steps"]] == [w["scope"]]
    prod, staging = out["workflows"]
    assert (prod["sessions"], prod["accepted"], prod["level"]) == (1, 1, "COACHING")
    assert (staging["sessions"], staging["accepted"], staging["level"]) == (3, 3, "AUTO")
    assert staging["steps"][0]["accepts_needed"] == 0
    assert prod["steps"][0]["accepts_needed"] == 2
    assert out["global"]["workflows"] == 1 and out["global"]["ready_workflows"] == 0
    assert out["global"]["sessions"] == 4 and out["global"]["accepted"] == 4
    assert set(out["workflows"][0]) >= {
        "workflow_id", "scope", "level", "ready", "sessions", "suggestions", "accepted",
        "acceptance_rate", "confidence", "steps",
    }  # fmt: skip

    only = cli.json("stats", "deploy", "--var", "env=staging")
    assert [w["scope"] for w in only["workflows"]] == [{"env": "staging"}]

    table = cli("stats", "deploy", "--table-format", "plain")
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["workflow", "scope", "level"]
    assert lines[1].split()[:3] == ["deploy", "env=prod", "COACHING"]
    assert lines[2].split()[:3] == ["deploy", "env=staging", "AUTO"]

    wrong = cli("stats", "deploy", "--var", "region=eu")
    assert wrong.exit_code == 2
    assert "--var region: not a trust_scope variable of deploy" in wrong.stderr


def test_unscoped_json_steps_carry_null_scope(cli: Cli, home: Path) -> None:
    write_workflow(home, "siblings", SIBLINGS)
    out = cli.json("stats", "siblings")
    (w,) = out["workflows"]
    assert w["scope"] is None
    assert [s["scope"] for s in w["steps"]] == [None, None]


def test_per_step_threshold_blocks_one_sibling(cli: Cli, home: Path) -> None:
    write_workflow(home, "siblings", SIBLINGS)
    # Both steps get the same history: 1 reject, then 6 accepts (rate 0.857).
    for i in range(7):
        sid = cli.start("siblings")
        decision = "reject" if i == 0 else "accept"
        for _ in range(2):
            assert cli("decide", sid, decision, "--no-exec").exit_code == 0
    out = cli.json("readiness", "siblings")
    build, migrate = out["workflows"][0]["steps"]
    assert (build["suggestions"], build["accepted"]) == (
        migrate["suggestions"],
        migrate["accepted"],
    )
    assert build["ready"] is True and build["level"] == "AUTO"
    assert migrate["ready"] is False and migrate["level"] == "COACHING"
    assert migrate["reason"] == "rate 0.86 < 0.95"
    assert migrate["rules"] == {"threshold": 0.95, "min_decisions": 5, "window": 50,
                                "strict": False}  # fmt: skip
    assert "rules" not in build
    r = cli("readiness", "siblings")
    assert r.exit_code == 1
    assert "migrate: rate 0.86, confidence 0.49, 7 decisions" in r.stdout
    assert "build:" not in r.stdout
    # The override is checked by validate like the workflow's own block.
    write_workflow(home, "bad", SIBLINGS.replace("threshold: 0.95", "threshold: 1.5"))
    v = cli("validate", str(home / "workflows" / "bad.yaml"))
    assert v.exit_code == 2
    assert "bad.yaml:11: coaching.threshold of step 2 must be > 0 and <= 1, not 1.5\n" in v.stderr


def test_sessions_count_toward_the_scope_they_recorded(cli: Cli, deploy: Path) -> None:
    """A session counts toward the trust_scope it recorded at start, its values taken from
    its `scope` or, when it has none, its `variables`. Sessions from before the workflow had
    a trust_scope count toward the values in their `variables` (issue 12)."""
    write_workflow(deploy, "deploy", DEPLOY.replace("  trust_scope: [env]\n", ""))
    accept(cli, "deploy", 3, "--var", "env=staging")
    for path in (deploy / "sessions").glob("*.json"):
        assert "scope" not in json.loads(path.read_text())  # no trust_scope: nothing recorded
    assert cli("readiness", "deploy").exit_code == 0  # unscoped: one pooled history
    write_workflow(deploy, "deploy", DEPLOY)
    assert cli("readiness", "deploy", "--var", "env=staging").exit_code == 0
    assert cli("readiness", "deploy", "--var", "env=prod").exit_code == 1
    accept(cli, "deploy", 3, "--var", "env=staging")
    assert cli("readiness", "deploy", "--var", "env=staging").exit_code == 0
    for path in (deploy / "sessions").glob("*.json"):  # as a writer without `scope` leaves them
        data = json.loads(path.read_text())
        data.pop("scope", None)
        path.write_text(json.dumps(data))
    assert cli("doctor", "--repair").exit_code == 0
    assert cli("readiness", "deploy", "--var", "env=staging").exit_code == 0
    assert cli("readiness", "deploy", "--var", "env=prod").exit_code == 1


def test_workflows_never_pools_scopes(cli: Cli, deploy: Path) -> None:
    accept(cli, "deploy", 3, "--var", "env=staging")
    accept(cli, "deploy", 1, "--var", "env=prod")
    (row,) = cli.json("workflows")
    # Pooled, 4 of 4 accepted would be AUTO; prod has 1 of 3 decisions.
    assert (row["workflow_id"], row["level"], row["ready"]) == ("deploy", "COACHING", False)
    assert row["sessions"] == 4


def test_doctor_checks_scoped_numbers(cli: Cli, deploy: Path) -> None:
    import sqlite3

    accept(cli, "deploy", 3, "--var", "env=staging")
    accept(cli, "deploy", 1, "--var", "env=prod")
    for path in (deploy / "sessions").glob("*.json"):  # old enough that the index trusts them
        os.utime(path, (path.stat().st_mtime - 60, path.stat().st_mtime - 60))
    assert cli("doctor", "--repair").exit_code == 0
    assert cli("doctor").exit_code == 0
    db = sqlite3.connect(deploy / "sessions" / ".index" / "index.sqlite")
    with db:  # the index now believes one staging session's decisions were made in prod
        db.execute(
            "UPDATE decisions SET scope=? WHERE session_id="
            "(SELECT min(session_id) FROM decisions WHERE scope LIKE ?)",
            ('{"env":"prod"}', "%staging%"),
        )
    db.close()
    r = cli("doctor")
    assert r.exit_code == 1, r.output
    assert '"env":"prod"' in r.stdout and "index" in r.stdout
    assert cli("doctor", "--repair").exit_code == 0
    assert cli("doctor").exit_code == 0


class Pty(PanelPty):
    """The panel tests' terminal, polling with poll(): by the time this test runs, in-process
    CLI calls of earlier tests may have left over 1024 descriptors open (select() fails)."""

    def __init__(self, home: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "VISUAL", "EDITOR")}
        env.update({"COACHCTL_HOME": str(home), "TERM": "xterm", "COACHCTL_USER": "tester"})
        env["NO_COLOR"] = "1"
        self.log = io.StringIO()
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "coachctl", "--home", str(home), *args],
            env=env,
            cwd=str(home),
            dimensions=(40, 120),
            timeout=10,
            encoding="utf-8",
            use_poll=True,
        )
        self.child.logfile_read = self.log


def test_journey_with_a_scope(cli: Cli, deploy: Path) -> None:
    """A new user's journey: trust earned in staging, a person still asked in prod (real
    processes, a real terminal for the panel)."""
    accept(cli, "deploy", 3, "--var", "env=staging")

    t = Pty(deploy, "run", "deploy", "--var", "env=prod")
    t.expect("level COACHING · no decisions for env=prod on this command yet")
    t.expect("$ echo deploying to prod")
    t.key("a")
    t.expect("deploying to prod")
    t.expect("workflow deploy: 1/1 accepted for env=prod (100%)")
    assert t.exit_code() == 0

    t = Pty(deploy, "run", "deploy", "--var", "env=prod")
    t.expect("level COACHING · 1/1 accepted for env=prod on this command · AUTO after 2 more")
    t.key("p")
    assert t.exit_code() == 0

    t = Pty(deploy, "run", "deploy", "--var", "env=staging")
    t.expect("[1/1] deploy … ok")
    assert t.exit_code() == 0

    assert cli("readiness", "deploy", "--var", "env=staging").exit_code == 0
    assert cli("readiness", "deploy", "--var", "env=prod").exit_code == 1
    out = cli.json("stats", "deploy", "--by", "step")
    assert [(w["scope"], w["sessions"]) for w in out["workflows"]] == [
        ({"env": "prod"}, 2),
        ({"env": "staging"}, 4),
    ]


def test_a_huge_window_recorded_in_an_old_session_breaks_nothing(cli: Cli, home: Path) -> None:
    """Before `coaching:` numbers were bounded a 2^63 window passed validate and was recorded
    in sessions; such a session must not break stats, readiness or doctor (issue 10)."""
    write_workflow(home, "siblings", SIBLINGS)
    sid = cli.start("siblings")
    path = home / "sessions" / f"{sid}.json"
    data = json.loads(path.read_text())
    data["coaching"]["window"] = 2**63
    data["steps"][1]["coaching"]["min_decisions"] = 2**63
    path.write_text(json.dumps(data))
    assert cli("decide", sid, "accept", "--no-exec").exit_code == 0
    (home / "workflows" / "siblings.yaml").unlink()  # its metrics now come from the session
    r = cli("stats", "siblings", "--format", "json")
    assert r.exit_code == 0, r.stderr
    (w,) = json.loads(r.stdout)["workflows"]
    assert w["rules"]["window"] == 50  # the recorded nonsense is ignored: the defaults
    assert cli("readiness", "siblings").exit_code == 1
    assert cli("doctor").exit_code == 0


def test_a_session_open_when_the_trust_scope_is_added(cli: Cli, deploy: Path) -> None:
    """Decided (docs/reference.md): a session started before its workflow had a trust_scope
    keeps its snapshot (unscoped: `show` says AUTO from the staging sessions like it), but
    runs a step unasked only when the scope its values count toward now has earned it, and
    its decisions count toward that scope."""
    write_workflow(deploy, "deploy", DEPLOY.replace("  trust_scope: [env]\n", ""))
    staging = cli.json("run", "deploy", "--no-input", "--var", "env=staging")  # mixed
    prod = cli.json("run", "deploy", "--no-input", "--var", "env=prod")
    assert staging["status"] == prod["status"] == "active"  # no trust yet: both wait
    accept(cli, "deploy", 3, "--var", "env=staging")
    write_workflow(deploy, "deploy", DEPLOY)
    assert cli.json("show", prod["session_id"])["step"]["level"] == "AUTO"  # its snapshot
    asked = cli.json("resume", prod["session_id"], "--no-input")
    assert (asked["status"], asked["stats"]["accepted"]) == ("active", 0)  # a person decides
    ran = cli.json("resume", staging["session_id"], "--no-input")
    assert ran["status"] == "completed"  # staging earned it: its step ran unasked
    assert cli("decide", prod["session_id"], "accept", "--no-exec").exit_code == 0
    (row,) = cli.json("stats", "deploy", "--var", "env=prod")["workflows"]
    assert (row["sessions"], row["accepted"], row["level"]) == (1, 1, "COACHING")
    assert cli("doctor").exit_code == 0
