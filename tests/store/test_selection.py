"""Which store a command uses (CONTRACT §7), and that the file store never loads a driver."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from coachctl.errors import UsageError
from coachctl.store.selection import store_url
from tests.conftest import Cli, coachctl_cmd

A = "postgresql://a.example/one"
B = "postgresql://b.example/two"
C = "postgres://c.example/three"


def test_option_beats_environment_beats_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "h"
    home.mkdir()
    assert store_url(None, home) is None
    (home / "coachctl.yaml").write_text(f"# team settings\nother: 1\nstore: '{C}'  # shared\n")
    assert store_url(None, home) == C
    monkeypatch.setenv("COACHCTL_STORE", B)
    assert store_url(None, home) == B
    assert store_url(A, home) == A
    monkeypatch.setenv("COACHCTL_STORE", "")
    assert store_url(None, home) == C


@pytest.mark.parametrize("bad", ["/srv/sessions", "mysql://x/y", "postgresql:/x"])
def test_a_store_that_is_not_a_postgres_url_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(UsageError, match="expected a postgresql:// URL"):
        store_url(bad, tmp_path)
    (tmp_path / "coachctl.yaml").write_text(f"store: {bad}\n")
    with pytest.raises(UsageError, match=r"coachctl.yaml:1: store:"):
        store_url(None, tmp_path)


def test_a_bad_store_value_is_one_line_and_masked(cli: Cli) -> None:
    result = cli("--store", "mysql://u:secretpw@h/db", "store", "status")
    assert result.exit_code == 2
    assert "secretpw" not in result.stderr and result.stderr.count("\n") == 1


def _poisoned_driver(tmp_path: Path, body: str) -> dict[str, str]:
    """PYTHONPATH with a fake `psycopg2` that runs `body` when imported."""
    fake = tmp_path / "fake" / "psycopg2"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(body)
    return {**os.environ, "PYTHONPATH": str(tmp_path / "fake")}


def test_a_file_store_decide_never_imports_the_driver(cli: Cli, tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    env = _poisoned_driver(tmp_path, f"open({str(marker)!r}, 'w').close()\n")
    sid = cli.start("hello")
    for args in (
        ["decide", sid, "accept", "--no-exec"],
        ["stats"],
        ["store", "status"],
        ["sessions"],
    ):
        done = subprocess.run(
            [*coachctl_cmd(), "--home", str(cli.home), *args],
            capture_output=True,
            text=True,
            env=env,
        )
        assert done.returncode in (0, 1), done.stderr
        assert not marker.exists(), f"{args} imported the database driver"


def test_a_missing_driver_says_how_to_install_it(tmp_path: Path) -> None:
    env = _poisoned_driver(tmp_path, "raise ImportError('No module named psycopg2')\n")
    (tmp_path / "home").mkdir()
    done = subprocess.run(
        [
            *coachctl_cmd(),
            *("--home", str(tmp_path / "home")),
            *("--store", "postgresql://127.0.0.1:1/db", "store", "status"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "coachctl: the PostgreSQL store needs its driver, which is not installed: "
        "pip install 'coachctl[postgres]'\n"
    )
