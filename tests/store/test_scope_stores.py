"""Trust scope on BOTH stores (issue 12): AUTO in staging is not AUTO in prod, whether the
history lives in the home's sessions/ or in PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.commands.test_scope import DEPLOY, SIBLINGS, accept
from tests.conftest import Cli, write_workflow
from tests.store.conftest import StoreUnderTest, run


def test_staging_trust_is_not_prod_trust(cli: Cli, store: StoreUnderTest) -> None:
    write_workflow(cli.home, "deploy", DEPLOY)
    accept(cli, "deploy", 3, "--var", "env=staging")
    accept(cli, "deploy", 1, "--var", "env=prod")
    # Real processes, as CI runs the gate.
    assert run(cli.home, "readiness", "deploy", "--var", "env=staging").returncode == 0
    prod = run(cli.home, "readiness", "deploy", "--var", "env=prod")
    assert prod.returncode == 1, prod.stderr
    assert "deploy: not ready for env=prod (level COACHING)" in prod.stdout
    unnamed = run(cli.home, "readiness", "deploy")
    assert unnamed.returncode == 2
    assert "name the scope: --var env=…" in unnamed.stderr
    out = json.loads(run(cli.home, "stats", "deploy", "--format", "json").stdout)
    assert [(w["scope"], w["sessions"], w["accepted"], w["level"]) for w in out["workflows"]] == [
        ({"env": "prod"}, 1, 1, "COACHING"),
        ({"env": "staging"}, 3, 3, "AUTO"),
    ]
    plan = run(cli.home, "run", "deploy", "--var", "env=prod", "--dry-run")
    assert "(AUTO for env=staging; COACHING here)" in plan.stdout
    events = run(cli.home, "events", "--format", "json").stdout.splitlines()
    changed = [json.loads(e) for e in events if '"level_changed"' in e]
    assert {(e["step_id"], e["to"], json.dumps(e["scope"])) for e in changed} == {
        ("deploy", "AUTO", '{"env": "staging"}'),
        (None, "AUTO", '{"env": "staging"}'),
    }
    assert run(cli.home, "doctor").returncode == 0


def test_a_steps_own_threshold(cli: Cli, store: StoreUnderTest, tmp_path: Path) -> None:
    write_workflow(cli.home, "siblings", SIBLINGS)
    for i in range(7):
        sid = cli.start("siblings")
        for _ in range(2):
            decision = "reject" if i == 0 else "accept"
            assert cli("decide", sid, decision, "--no-exec").exit_code == 0
    out = json.loads(run(cli.home, "readiness", "siblings", "--format", "json").stdout)
    build, migrate = out["workflows"][0]["steps"]
    assert (build["ready"], migrate["ready"]) == (True, False)
    assert migrate["rules"]["threshold"] == 0.95


def test_a_staging_correction_is_never_prods_suggestion(cli: Cli, store: StoreUnderTest) -> None:
    """Learning per (step, scope) on both stores: adopt_after corrections in staging."""
    write_workflow(cli.home, "deploy", DEPLOY)
    fast = "echo deploying to staging --fast"
    start = ("coach", "deploy", "--no-input", "--var", "env=staging", "--format", "json")
    for _ in range(2):  # adopt_after: 2
        sid = json.loads(run(cli.home, *start).stdout)["session_id"]
        done = run(cli.home, "decide", sid, "correct", "--correction", fast, "--no-exec")
        assert done.returncode == 0, done.stderr

    def proposes(env: str) -> str:
        out = run(cli.home, "run", "deploy", "--var", f"env={env}", "--dry-run")
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert fast in proposes("staging")
    assert fast not in proposes("prod") and "echo deploying to prod" in proposes("prod")
    listed = json.loads(run(cli.home, "corrections", "list", "deploy", "--format", "json").stdout)
    assert [(r["scope"], r["adopted"]) for r in listed["corrections"]] == [
        ({"env": "staging"}, True)
    ]
    events = run(cli.home, "events", "--format", "json").stdout.splitlines()
    adopted = [json.loads(e) for e in events if '"suggestion_adopted"' in e]
    assert [(e["command"], e["scope"]) for e in adopted] == [(fast, {"env": "staging"})]
    # A hand choice for prod stays prod's.
    hand = run(cli.home, "corrections", "adopt", "deploy", "deploy", "--command", "echo careful",
               "--var", "env=prod")  # fmt: skip
    assert hand.returncode == 0, hand.stderr
    assert "echo careful" in proposes("prod") and "echo careful" not in proposes("staging")
    assert run(cli.home, "doctor").returncode == 0


UNSCOPED = DEPLOY.replace("  trust_scope: [env]\n", "")


def test_sessions_from_before_the_trust_scope_count_toward_their_values(
    cli: Cli, store: StoreUnderTest
) -> None:
    """Issue 12: three accepts with env=staging recorded while the workflow had no
    trust_scope count for staging once `trust_scope: [env]` is added, and not for prod."""
    write_workflow(cli.home, "deploy", UNSCOPED)
    accept(cli, "deploy", 3, "--var", "env=staging")
    accept(cli, "deploy", 1, "--var", "env=prod")
    assert run(cli.home, "readiness", "deploy").returncode == 0  # unscoped: 4 accepts pooled
    write_workflow(cli.home, "deploy", DEPLOY)
    staging = run(cli.home, "readiness", "deploy", "--var", "env=staging")
    assert staging.returncode == 0, staging.stdout + staging.stderr
    assert "deploy: ready for env=staging (level AUTO)" in staging.stdout
    prod = run(cli.home, "readiness", "deploy", "--var", "env=prod")
    assert prod.returncode == 1, prod.stdout + prod.stderr
    out = json.loads(run(cli.home, "stats", "deploy", "--format", "json").stdout)
    assert [(w["scope"], w["sessions"], w["accepted"], w["level"]) for w in out["workflows"]] == [
        ({"env": "prod"}, 1, 1, "COACHING"),
        ({"env": "staging"}, 3, 3, "AUTO"),
    ]
    # New sessions add to the old ones: two more prod accepts make three.
    accept(cli, "deploy", 2, "--var", "env=prod")
    assert run(cli.home, "readiness", "deploy", "--var", "env=prod").returncode == 0
    doctor = run(cli.home, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def test_an_existing_database_learns_the_values_on_upgrade(
    cli: Cli, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: summaries written before schema 2 have no `values`; `store upgrade`
    backfills them from each session's JSON, and doctor then finds nothing to repair."""
    from coachctl.store.postgres.connect import connect

    monkeypatch.setenv("COACHCTL_STORE", pg_url)
    write_workflow(cli.home, "deploy", UNSCOPED)
    accept(cli, "deploy", 3, "--var", "env=staging")
    conn = connect(pg_url, 10.0)
    try:
        with conn.cursor() as cur:  # as schema 1 left them
            cur.execute("UPDATE coachctl_sessions SET summary = summary - 'values'")
            cur.execute("DELETE FROM coachctl_schema WHERE version > 1")
        conn.commit()
    finally:
        conn.close()
    old = run(cli.home, "stats")
    assert old.returncode == 2 and "run `coachctl store upgrade`" in old.stderr
    up = run(cli.home, "store", "upgrade")
    assert up.returncode == 0, up.stderr
    write_workflow(cli.home, "deploy", DEPLOY)
    staging = run(cli.home, "readiness", "deploy", "--var", "env=staging")
    assert staging.returncode == 0, staging.stdout + staging.stderr
    assert run(cli.home, "readiness", "deploy", "--var", "env=prod").returncode == 1
    doctor = run(cli.home, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    # A summary that lost its values is a finding (they decide which windows count it).
    conn = connect(pg_url, 10.0)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "UPDATE coachctl_sessions SET summary = summary - 'values'"
                " WHERE id = (SELECT min(id) FROM coachctl_sessions)"
            )
        conn.commit()
    finally:
        conn.close()
    found = run(cli.home, "doctor")
    assert found.returncode == 1
    assert "summary differs from its record" in found.stdout + found.stderr
    assert run(cli.home, "doctor", "--repair").returncode == 0
    assert run(cli.home, "doctor").returncode == 0
