"""Learning and correction packs per (step, trust scope) at the CLI (issue 12): what people
corrected in staging becomes staging's suggestion, never prod's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.commands.test_scope import DEPLOY
from tests.conftest import Cli, only_workflow, write_workflow

FAST = "echo deploying to staging --fast"

# A step without `run`: people report what they did; it is learned per scope.
NOTIFY = """
id: notify
variables:
  env: null
coaching:
  trust_scope: [env]
  min_observations: 2
steps:
  - id: post
    instructions: Tell the channel
"""


@pytest.fixture
def deploy(home: Path) -> Path:
    return only_workflow(home, "deploy", DEPLOY)


def correct(cli: Cli, n: int, command: str, *var: str, workflow: str = "deploy") -> None:
    for _ in range(n):
        sid = cli.start(workflow, *var)
        r = cli("decide", sid, "correct", "--correction", command, "--no-exec")
        assert r.exit_code == 0, r.stderr


def proposes(cli: Cli, workflow: str, *var: str) -> Any:
    """What a new session of `workflow` proposes for its first step (a real session)."""
    state = cli.json("coach", workflow, "--no-input", *var)
    return state["step"]["suggestion"]


def judged(cli: Cli, workflow: str, env: str) -> dict[str, Any]:
    """The first step as `readiness` judges it in env=ENV."""
    out = cli.json("readiness", workflow, "--var", f"env={env}")
    return dict(out["workflows"][0]["steps"][0])


def adopted_events(cli: Cli) -> list[dict[str, Any]]:
    lines = cli("events", "--format", "json").stdout.splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == "suggestion_adopted"]


def test_a_staging_correction_becomes_stagings_suggestion_never_prods(
    cli: Cli, deploy: Path
) -> None:
    correct(cli, 2, FAST, "--var", "env=staging")  # adopt_after: 2
    assert proposes(cli, "deploy", "--var", "env=staging") == FAST
    assert proposes(cli, "deploy", "--var", "env=prod") == "echo deploying to prod"
    assert judged(cli, "deploy", "staging")["suggestion"] == FAST
    assert judged(cli, "deploy", "prod")["suggestion"] == "echo deploying to {{ env }}"

    # Prod's own corrections count for prod only: one is not adopt_after.
    correct(cli, 1, FAST, "--var", "env=prod")
    assert proposes(cli, "deploy", "--var", "env=prod") == "echo deploying to prod"
    plan = cli("run", "deploy", "--var", "env=prod", "--dry-run")
    assert "echo deploying to prod" in plan.stdout and FAST not in plan.stdout

    [event] = adopted_events(cli)
    assert (event["command"], event["scope"]) == (FAST, {"env": "staging"})

    rows = cli.json("corrections", "list", "deploy")["corrections"]
    assert sorted((json.dumps(r["scope"]), r["times"], r["adopted"]) for r in rows) == [
        ('{"env": "prod"}', 1, False),
        ('{"env": "staging"}', 2, True),
    ]
    table = cli("corrections", "list", "deploy").stdout.splitlines()
    assert table[0].split()[:3] == ["workflow", "step", "scope"]
    assert any("env=staging" in line and "yes" in line for line in table[2:])

    exported = yaml.safe_load(cli("corrections", "export", "deploy").stdout)
    assert [(s["step"], s["scope"]) for s in exported["steps"]] == [
        ("deploy", {"env": "prod"}),
        ("deploy", {"env": "staging"}),
    ]
    assert cli("doctor").exit_code == 0


def test_a_learned_command_is_learned_per_scope(cli: Cli, home: Path) -> None:
    write_workflow(home, "notify", NOTIFY)
    for _ in range(2):
        sid = cli.start("notify", "--var", "env=staging")
        r = cli("decide", sid, "manual", "--command", "post #staging")
        assert r.exit_code == 0, r.stderr
    sid = cli.start("notify", "--var", "env=prod")
    assert cli("decide", sid, "manual", "--command", "post #prod").exit_code == 0

    assert proposes(cli, "notify", "--var", "env=staging") == "post #staging"
    assert proposes(cli, "notify", "--var", "env=prod") is None
    staging, prod = judged(cli, "notify", "staging"), judged(cli, "notify", "prod")
    assert (staging["level"], staging["suggestion"]) == ("COACHING", "post #staging")
    assert (prod["level"], prod["suggestion"]) == ("OBSERVATION", None)
    [event] = adopted_events(cli)
    assert (event["source"], event["scope"]) == ("observed", {"env": "staging"})


def test_a_pack_built_without_a_trust_scope_is_rebuilt_when_the_workflow_gains_one(
    cli: Cli, deploy: Path
) -> None:
    unscoped = DEPLOY.replace("  trust_scope: [env]\n", "")
    write_workflow(deploy, "deploy", unscoped)
    correct(cli, 2, FAST, "--var", "env=staging")
    assert proposes(cli, "deploy", "--var", "env=prod") == FAST  # one pack for all: as before
    pack = deploy / "sessions" / "packs" / "deploy.json"
    assert "trust_scope" not in json.loads(pack.read_text())

    write_workflow(deploy, "deploy", DEPLOY)  # now trust is per env
    # The old sessions teach the env in their variables: staging's correction stays staging's.
    assert proposes(cli, "deploy", "--var", "env=prod") == "echo deploying to prod"
    assert proposes(cli, "deploy", "--var", "env=staging") == FAST
    assert json.loads(pack.read_text())["trust_scope"] == ["env"]
    assert cli("doctor").exit_code == 0


def test_hand_choices_are_per_scope(cli: Cli, deploy: Path) -> None:
    r = cli("corrections", "adopt", "deploy", "deploy", "--command", "echo careful", "--var",
            "env=prod")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == (
        "deploy/deploy for env=prod now proposes: echo careful (manual; it starts at zero trust)"
    )
    assert proposes(cli, "deploy", "--var", "env=prod") == "echo careful"
    assert proposes(cli, "deploy", "--var", "env=staging") == "echo deploying to staging"
    [event] = adopted_events(cli)
    assert event["scope"] == {"env": "prod"}
    (deploy / "sessions" / "packs" / "deploy.json").unlink()  # a choice is truth: never lost
    assert proposes(cli, "deploy", "--var", "env=prod") == "echo careful"

    unnamed = cli("corrections", "adopt", "deploy", "deploy", "--command", "echo x")
    assert unnamed.exit_code == 2 and unnamed.stdout == ""
    assert "deploy: name the scope: --var env=…" in unnamed.stderr
    wrong = cli("corrections", "drop", "deploy", "deploy", "--var", "region=eu")
    assert wrong.exit_code == 2
    assert wrong.stderr.strip() == "coachctl: --var region: not a trust_scope variable of deploy"
    none = cli("corrections", "drop", "deploy", "deploy", "--var", "env=staging")
    assert none.exit_code == 2
    assert "has no learned or adopted suggestion for env=staging" in none.stderr

    dropped = cli("corrections", "drop", "deploy", "deploy", "--var", "env=prod")
    assert dropped.exit_code == 0, dropped.stderr
    assert proposes(cli, "deploy", "--var", "env=prod") == "echo deploying to prod"


def test_a_hand_choice_made_before_the_trust_scope_holds_in_every_scope(
    cli: Cli, deploy: Path
) -> None:
    write_workflow(deploy, "deploy", DEPLOY.replace("  trust_scope: [env]\n", ""))
    r = cli("corrections", "adopt", "deploy", "deploy", "--command", "echo careful")
    assert r.exit_code == 0, r.stderr
    write_workflow(deploy, "deploy", DEPLOY)
    # Never lost: every scope proposes it until it has a suggestion of its own.
    assert proposes(cli, "deploy", "--var", "env=prod") == "echo careful"
    assert proposes(cli, "deploy", "--var", "env=staging") == "echo careful"
    rows = cli.json("corrections", "list", "deploy")["corrections"]
    assert [(r["scope"], r["correction"], r["adopted"]) for r in rows] == [
        (None, "echo careful", True)
    ]
    # Dropping it in prod drops it there only.
    assert cli("corrections", "drop", "deploy", "deploy", "--var", "env=prod").exit_code == 0
    assert proposes(cli, "deploy", "--var", "env=prod") == "echo deploying to prod"
    assert proposes(cli, "deploy", "--var", "env=staging") == "echo careful"
    assert cli("doctor").exit_code == 0


def test_import_goes_to_each_steps_scope(cli: Cli, deploy: Path, tmp_path: Path) -> None:
    correct(cli, 2, FAST, "--var", "env=staging")
    target = tmp_path / "pack.yaml"
    assert cli("corrections", "export", "deploy", "-o", str(target)).exit_code == 0

    other = tmp_path / "other"
    (other / "workflows").mkdir(parents=True)
    write_workflow(other, "deploy", DEPLOY)
    there = Cli(other)
    r = there("corrections", "import", str(target), "--yes")
    assert r.exit_code == 0, r.stderr
    assert "deploy for env=staging: suggestion (none) -> " + FAST in r.stdout
    assert proposes(there, "deploy", "--var", "env=staging") == FAST
    assert proposes(there, "deploy", "--var", "env=prod") == "echo deploying to prod"

    # A pack without scopes goes to the scope --var names (and needs one named).
    plain = {"workflow": "deploy", "steps": [{"step": "deploy", "suggestion": {
        "command": "echo plain", "base": "echo deploying to {{ env }}"}}]}  # fmt: skip
    target.write_text(yaml.safe_dump(plain))
    unnamed = there("corrections", "import", str(target), "--yes")
    assert unnamed.exit_code == 2 and "name the scope" in unnamed.stderr
    r = there("corrections", "import", str(target), "--yes", "--var", "env=prod")
    assert r.exit_code == 0, r.stderr
    assert proposes(there, "deploy", "--var", "env=prod") == "echo plain"
    assert proposes(there, "deploy", "--var", "env=staging") == FAST

    # A scoped pack cannot go into a workflow without that trust_scope.
    write_workflow(other, "deploy", DEPLOY.replace("  trust_scope: [env]\n", ""))
    exported = yaml.safe_load(cli("corrections", "export", "deploy").stdout)
    target.write_text(yaml.safe_dump(exported))
    refused = there("corrections", "import", str(target), "--yes")
    assert refused.exit_code == 2
    assert refused.stderr.strip() == (
        "coachctl: step deploy is for env=staging but deploy has no trust_scope: "
        "it cannot be imported here"
    )


def test_the_report_shows_each_scope_its_own_corrections(cli: Cli, deploy: Path) -> None:
    from coachctl.engine import report as rp
    from coachctl.engine.stores import file_store
    from coachctl.report.html import page

    correct(cli, 2, FAST, "--var", "env=staging")
    correct(cli, 1, "echo prod by hand", "--var", "env=prod")
    data = rp.gather(file_store(deploy), ["deploy"])
    shown = {json.dumps(w["scope"]): w["corrections"] for w in data["workflows"]}
    assert {k: [r["correction"] for r in rows] for k, rows in shown.items()} == {
        '{"env": "prod"}': ["echo prod by hand"],
        '{"env": "staging"}': [FAST],
    }
    assert "deploy</code> (env=staging)" in page(data)


def test_the_panel_names_the_scope_of_what_it_learned() -> None:
    from coachctl.commands._panel_words import announcement

    event = {"event": "suggestion_adopted", "step_id": "deploy", "command": FAST}
    assert announcement({**event, "scope": {"env": "staging"}}) == (
        f"deploy now suggests your correction for env=staging: {FAST} (it starts at zero trust)"
    )
    assert announcement({**event, "scope": None}) == (
        f"deploy now suggests your correction: {FAST} (it starts at zero trust)"
    )


def test_adopt_without_a_command_takes_the_scopes_own_most_frequent(cli: Cli, deploy: Path) -> None:
    correct(cli, 1, FAST, "--var", "env=staging")
    correct(cli, 1, "echo prod slowly", "--var", "env=prod")
    r = cli("corrections", "adopt", "deploy", "deploy", "--var", "env=prod")
    assert r.exit_code == 0, r.stderr
    assert proposes(cli, "deploy", "--var", "env=prod") == "echo prod slowly"
    assert proposes(cli, "deploy", "--var", "env=staging") == "echo deploying to staging"


def test_doctor_checks_and_repairs_a_scopes_entries(cli: Cli, deploy: Path) -> None:
    correct(cli, 1, FAST, "--var", "env=staging")
    proposes(cli, "deploy", "--var", "env=staging")  # the pack is written
    path = deploy / "sessions" / "packs" / "deploy.json"
    pack = json.loads(path.read_text())
    [key] = pack["scopes"]
    pack["scopes"][key]["steps"]["deploy"]["corrections"][0]["times"] = 5
    path.write_text(json.dumps(pack))
    found = cli("doctor")
    assert found.exit_code == 1
    assert "correction pack deploy: step deploy (env=staging): stored" in found.stdout
    assert cli("doctor", "--repair").exit_code == 0
    assert cli("doctor").exit_code == 0
    assert proposes(cli, "deploy", "--var", "env=staging") == "echo deploying to staging"
