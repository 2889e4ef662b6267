"""The `store` fixture: every contract test runs on the file store AND on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


class StoreUnderTest:
    """Which store a test's coachctl processes use; `url` is None for the file store."""

    def __init__(self, kind: str, url: str | None) -> None:
        self.kind = kind
        self.url = url

    def open(self, home: Path, lock_timeout: float = 10.0) -> Any:
        """The store as a command opens it (for holding a lock from the test itself)."""
        from coachctl.cli import Settings

        return Settings(str(home), lock_timeout, False, self.url).store()


@pytest.fixture(params=["file", "postgres"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> StoreUnderTest:
    if request.param == "file":
        monkeypatch.delenv("COACHCTL_STORE", raising=False)
        return StoreUnderTest("file", None)
    url = str(request.getfixturevalue("pg_url"))
    monkeypatch.setenv("COACHCTL_STORE", url)
    return StoreUnderTest("postgres", url)


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["COACHCTL_USER"] = "tester"
    e.pop("COACHCTL_DEBUG", None)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def command(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "coachctl", "--home", str(home), *args]


def run(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A real coachctl process on the test's store (COACHCTL_STORE is in the environment)."""
    return subprocess.run(
        command(home, *args), capture_output=True, text=True, timeout=timeout, env=env()
    )


def proc(home: Path, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(home, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        **kwargs,
    )
