"""The PostgreSQL test fixture itself: without a server, CI fails and a developer run skips
loudly (never a silent pass)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ONE_PG_TEST = "tests/store/test_pg_admin.py::test_concurrent_upgrades_apply_each_migration_once"


def run_without_server(ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "COACHCTL_TEST_PG")}
    env["COACHCTL_PG_BIN"] = "/nonexistent/postgresql/bin"
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", ONE_PG_TEST],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("ci", [True, False])
def test_a_missing_server_fails_in_ci_and_skips_loudly_elsewhere(ci: bool) -> None:
    done = run_without_server(ci)
    out = done.stdout + done.stderr
    if ci:
        assert done.returncode != 0, out
        assert "PostgreSQL tests must run in CI" in out
    else:
        assert done.returncode == 0, out
        assert "1 skipped" in out and "PostgreSQL tests NOT RUN" in out
