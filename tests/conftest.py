"""Shared fixtures: every test gets a throwaway home; none touches the repo's sessions/."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "workflows"
REPO_SESSIONS = REPO / "sessions"


def _repo_sessions_snapshot() -> set[str]:
    return set(os.listdir(REPO_SESSIONS)) if REPO_SESSIONS.is_dir() else set()


@pytest.fixture(scope="session", autouse=True)
def _repo_sessions_untouched() -> Iterator[None]:
    """Fail the run if any test wrote into the working copy's own sessions/ folder."""
    before = _repo_sessions_snapshot()
    yield
    after = _repo_sessions_snapshot()
    assert after == before, f"tests wrote into {REPO_SESSIONS}: {sorted(after - before)}"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cwd and COACHCTL_HOME point into tmp_path; a stable user; no colour, no debug."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("COACHCTL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COACHCTL_USER", "tester")
    monkeypatch.delenv("COACHCTL_DEBUG", raising=False)
    monkeypatch.delenv("COACHCTL_STORE", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.delenv("EDITOR", raising=False)


@pytest.fixture(autouse=True)
def _close_indexes() -> Iterator[None]:
    """Close the index connections a test's in-process commands opened.

    The engine caches one index per Store in a WeakKeyDictionary whose values hold their
    key, so in one process (CliRunner) every command leaks its sqlite file descriptors;
    past 1024 open files pexpect's select() fails in every later panel test.
    """
    yield
    from coachctl.engine import history

    cache = getattr(history, "_INDEXES", None)
    if cache is not None:
        for idx in list(cache.values()):
            idx.close()
        cache.clear()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home with the bundled example workflows copied in."""
    h = tmp_path / "home"
    h.mkdir(exist_ok=True)
    shutil.copytree(EXAMPLES, h / "workflows")
    return h


def write_workflow(home: Path, name: str, text: str) -> Path:
    (home / "workflows").mkdir(parents=True, exist_ok=True)
    path = home / "workflows" / f"{name}.yaml"
    path.write_text(text)
    return path


def only_workflow(home: Path, name: str, text: str) -> Path:
    """The home with `name` as its only workflow (the bundled examples removed)."""
    for p in (home / "workflows").iterdir():
        p.unlink()
    write_workflow(home, name, text)
    return home


class Cli:
    """CliRunner bound to a home; `cli("decide", sid, "accept")` → Result."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.runner = CliRunner()

    def __call__(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> Result:
        from coachctl.cli import cli

        return self.runner.invoke(
            cli, ["--home", str(self.home), *args], input=input, env=env, catch_exceptions=False
        )

    def json(self, *args: str) -> Any:
        result = self(*args, "--format", "json")
        assert result.exit_code in (0, 1), (result.exit_code, result.output, result.stderr)
        return json.loads(result.stdout)

    def start(self, workflow: str = "hello", *extra: str) -> str:
        """Start a coaching session without a terminal and return its id."""
        state = self.json("coach", workflow, "--no-input", *extra)
        return str(state["session_id"])


@pytest.fixture
def cli(home: Path) -> Cli:
    return Cli(home)


def coachctl_cmd() -> list[str]:
    """How a test starts coachctl as a real process (same interpreter as the tests)."""
    return [sys.executable, "-m", "coachctl"]


# -- PostgreSQL: one throwaway cluster per test run, one fresh database per test ----------


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """The test cluster (tests/store/pg.py), or the server named by COACHCTL_TEST_PG.

    With CI=true (how .ci/run runs the suite) a missing server or driver FAILS the tests
    that need it; a developer run elsewhere skips them, saying loudly why."""
    from tests.store.pg import Cluster, Unavailable

    try:
        cluster = Cluster.from_env() or Cluster.start()
    except Unavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL tests must run in CI, but: {exc}", pytrace=False)
        pytest.skip(
            f"PostgreSQL tests NOT RUN: {exc} (install PostgreSQL 15 server binaries, "
            "or set COACHCTL_TEST_PG to a libpq URL of a server where you may create databases)"
        )
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_empty(pg_cluster: Any) -> Iterator[str]:
    """A new empty database (no coachctl schema) for this test alone; its URL."""
    url = pg_cluster.create_database()
    yield url
    pg_cluster.drop_database(url)


@pytest.fixture
def pg_url(pg_empty: str) -> str:
    """A new database with the coachctl schema applied (`coachctl store upgrade`)."""
    from coachctl.store.postgres import schema
    from coachctl.store.postgres.connect import connect

    conn = connect(pg_empty, 10.0)
    try:
        schema.upgrade(conn, pg_empty)
    finally:
        conn.close()
    return pg_empty
