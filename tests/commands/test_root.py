"""The root command: bare `coachctl`, typos, `--lock-timeout`, and choosing the home.

Permission tests run coachctl as a real process that the folder's mode binds: as root (which
reads through any mode) the process runs under `setpriv` without the capabilities that
override file permissions, so the same test means the same thing for every user, CI included.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from coachctl.cli import cli as root
from tests.conftest import REPO, Cli


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(root, list(args), env=env, catch_exceptions=False)


# --------------------------------------------------------------------------- help and typos


@pytest.mark.parametrize("args", [[], ["corrections"]])
def test_bare_group_prints_its_whole_help_like_click(args: list[str]) -> None:
    res = invoke(*args)
    assert res.exit_code == 2  # what Click's no_args_is_help exits with
    assert res.stderr.startswith(f"Usage: coachctl {' '.join(args)}".rstrip() + " [OPTIONS]")
    assert "\nCommands:\n" in res.stderr
    assert len(res.stderr.splitlines()) > 10  # the help, not one squashed error line
    assert "coachctl: Usage" not in res.stderr


def test_a_mistyped_command_suggests_the_close_one() -> None:
    res = invoke("stat")
    assert res.exit_code == 2
    assert res.stderr == (
        "coachctl: No such command 'stat'. Did you mean 'stats'? (see 'coachctl --help')\n"
    )


def test_a_mistyped_subcommand_suggests_the_close_one() -> None:
    res = invoke("corrections", "lst")
    assert res.exit_code == 2
    assert "No such command 'lst'. Did you mean 'list'?" in res.stderr


def test_an_unknown_command_far_from_any_has_no_suggestion() -> None:
    res = invoke("frobnicate")
    assert res.exit_code == 2
    assert "Did you mean" not in res.stderr


# --------------------------------------------------------------------------- --lock-timeout


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e400", "-1", "-0.5"])
def test_lock_timeout_refuses_nan_infinity_and_negatives(home: Path, value: str) -> None:
    res = invoke("--home", str(home), "--lock-timeout", value, "stats")
    assert res.exit_code == 2
    assert res.stdout == ""
    assert res.stderr.startswith("coachctl: Invalid value for '--lock-timeout'")
    assert len(res.stderr.splitlines()) == 1


@pytest.mark.parametrize("value", ["0", "0.5", "30"])
def test_lock_timeout_accepts_finite_non_negative_seconds(home: Path, value: str) -> None:
    assert invoke("--home", str(home), "--lock-timeout", value, "stats").exit_code == 0


# --------------------------------------------------------------------------- homes


def test_an_empty_coachctl_home_is_refused_not_taken_for_the_current_folder(
    tmp_path: Path,
) -> None:
    (Path.cwd() / "workflows").mkdir()
    res = invoke("stats", env={"COACHCTL_HOME": ""})
    assert res.exit_code == 2
    assert res.stderr == (
        "coachctl: COACHCTL_HOME is set but empty (unset it to use the current folder)\n"
    )
    assert not (Path.cwd() / "sessions").exists()


def test_an_empty_home_option_is_refused() -> None:
    res = invoke("--home", "", "stats")
    assert res.exit_code == 2
    assert "--home is empty" in res.stderr


def test_without_home_or_variable_the_current_folder_is_the_home(home: Path) -> None:
    os.chdir(home)
    res = invoke("stats", "--format", "json", env={"COACHCTL_HOME": None})
    assert res.exit_code == 0, res.stderr
    assert '"workflow_id": "hello"' in res.stdout


@pytest.mark.parametrize("command", [["stats"], ["readiness"], ["sessions"], ["run", "hello"]])
def test_a_home_that_is_a_regular_file_is_exit_2(tmp_path: Path, command: list[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a folder\n")
    res = Cli(afile)(*command)
    assert res.exit_code == 2
    assert res.stderr == f"coachctl: home {afile} (from --home) is not a folder\n"


def test_a_mistyped_home_with_a_workflow_path_creates_nothing(home: Path, tmp_path: Path) -> None:
    typo = tmp_path / "hoem"
    res = Cli(typo)("run", str(home / "workflows" / "hello.yaml"), "--no-input")
    assert res.exit_code == 2
    assert res.stderr.startswith(f"coachctl: no such home: {typo} (from --home;")
    assert not typo.exists()
    assert not (home / "sessions").exists()


def test_a_missing_home_from_the_variable_names_the_variable(tmp_path: Path) -> None:
    res = invoke("sessions", env={"COACHCTL_HOME": str(tmp_path / "nope")})
    assert res.exit_code == 2
    assert "(from COACHCTL_HOME;" in res.stderr


# --------------------------------------------------------------------------- unreadable homes


def _unprivileged(args: list[str]) -> list[str]:
    """Run `args` so that file modes bind it, root included (see the module docstring)."""
    if os.geteuid() != 0:
        return args
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "root needs setpriv (util-linux) to be refused a read"
    drop = "-dac_override,-dac_read_search"
    return [setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}", *args]


def run_denied(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COACHCTL_USER="tester", PYTHONPATH=str(REPO))
    env.pop("COACHCTL_DEBUG", None)
    cmd = _unprivileged([sys.executable, "-m", "coachctl", "--home", str(home), *args])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture
def started(cli: Cli, home: Path) -> str:
    return cli.start("hello")


@pytest.fixture
def chmod_restored() -> Iterator[list[Path]]:
    changed: list[Path] = []
    yield changed
    for path in changed:
        os.chmod(path, 0o700)


@pytest.mark.parametrize("folder", ["sessions", "workflows", "."])
@pytest.mark.parametrize("command", ["readiness", "stats", "workflows"])
def test_a_folder_coachctl_cannot_read_is_exit_2_and_called_a_read_denial(
    home: Path, started: str, chmod_restored: list[Path], folder: str, command: str
) -> None:
    target = (home / folder).resolve()
    chmod_restored.append(target)
    os.chmod(target, 0)
    res = run_denied(home, command)
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert len(res.stderr.splitlines()) == 1, res.stderr
    assert "permission denied" in res.stderr
    assert "read-only" not in res.stderr
    assert "unexpected error" not in res.stderr


def test_show_in_an_unreadable_sessions_folder_is_exit_2(
    home: Path, started: str, chmod_restored: list[Path]
) -> None:
    chmod_restored.append(home / "sessions")
    os.chmod(home / "sessions", 0)
    res = run_denied(home, "show", started)
    assert res.returncode == 2, res.stderr
    assert res.stderr == f"coachctl: cannot read {home / 'sessions'}: permission denied\n"


# --------------------------------------------------------------------------- session references


@pytest.mark.parametrize("command", [["show"], ["decide", "-", "skip"], ["pause"], ["cancel"]])
def test_a_session_reference_over_the_file_name_limit_is_unknown(
    cli: Cli, started: str, command: list[str]
) -> None:
    ref = "a" * 300
    args = [ref if a == "-" else a for a in command]
    if len(args) == 1:
        args.append(ref)
    res = cli(*args)
    assert res.exit_code == 2, res.stderr
    assert res.stderr.startswith("coachctl: unknown session: aaaa")
    assert "OSError" not in res.stderr and "too long" not in res.stderr


def test_a_workflow_reference_over_the_file_name_limit_is_unknown(cli: Cli) -> None:
    res = cli("run", "w" * 300, "--no-input")
    assert res.exit_code == 2
    assert res.stderr.startswith("coachctl: unknown workflow: wwww")
