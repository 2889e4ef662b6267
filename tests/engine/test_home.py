"""engine.home: which folder is the home, and the refusals before any command uses it.

Unreadable homes are proved with real processes in tests/commands/test_root.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from coachctl.engine.home import resolve_home
from coachctl.errors import UsageError


def test_the_option_wins_over_the_variable_which_wins_over_the_current_folder(
    tmp_path: Path,
) -> None:
    opt, env = tmp_path / "opt", tmp_path / "env"
    opt.mkdir()
    env.mkdir()
    assert resolve_home(str(opt), {"COACHCTL_HOME": str(env)}) == opt
    assert resolve_home(None, {"COACHCTL_HOME": str(env)}) == env
    assert resolve_home(None, {}) == Path.cwd()


def test_a_relative_home_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "h").mkdir()
    monkeypatch.chdir(tmp_path)
    assert resolve_home("h", {}) == tmp_path / "h"


@pytest.mark.parametrize(
    ("option", "environ", "message"),
    [
        (None, {"COACHCTL_HOME": ""}, "COACHCTL_HOME is set but empty"),
        (None, {"COACHCTL_HOME": "  "}, "COACHCTL_HOME is set but empty"),
        ("", {}, "--home is empty"),
        ("", {"COACHCTL_HOME": "/tmp"}, "--home is empty"),
    ],
)
def test_empty_values_are_refused(
    option: str | None, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        resolve_home(option, environ)


def test_a_missing_home_is_refused_and_not_created(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no such home: .*/typo \(from --home; create it"):
        resolve_home(str(tmp_path / "typo"), {})
    assert not (tmp_path / "typo").exists()


def test_a_file_is_not_a_home(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match=r"is not a folder"):
        resolve_home(None, {"COACHCTL_HOME": str(tmp_path / "f")})


def test_a_path_through_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match=r"cannot use home .*: Not a directory"):
        resolve_home(str(tmp_path / "f" / "h"), {})
