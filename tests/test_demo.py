"""scripts/demo.sh: no install noise when nothing changed, and a line to paste that works.

Run on a copy of the checkout whose `.venv` points at the interpreter running the tests,
so nothing is downloaded: a fake `python` stands in for pip where an install is expected.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def checkout(tmp_path: Path, python: str) -> Path:
    """A copy of what demo.sh needs, with `.venv/bin/{python,coachctl}`."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "demo.sh", root / "scripts" / "demo.sh")
    shutil.copytree(REPO / "workflows", root / "workflows")
    for name in ("setup.cfg", "pyproject.toml"):
        shutil.copy(REPO / name, root / name)
    bin_ = root / ".venv" / "bin"
    bin_.mkdir(parents=True)
    (bin_ / "python").symlink_to(python)
    coachctl = bin_ / "coachctl"
    coachctl.write_text(f'#!/bin/sh\nexec {sys.executable} -m coachctl "$@"\n')
    coachctl.chmod(0o755)
    return root


def demo(root: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COACHCTL_HOME"}
    env.update({"TMPDIR": str(tmp_path), "PYTHONPATH": str(REPO)})
    return subprocess.run(
        ["bash", str(root / "scripts" / "demo.sh")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def fake_python(tmp_path: Path, rc: int) -> str:
    """A `python` that logs `-m pip …` calls (and prints pip-like noise) instead of installing."""
    log = tmp_path / "pip.log"
    script = tmp_path / "fake-python"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {log}\n'
        'echo "  !! ********** setuptools warning box **********"\n'
        f"exit {rc}\n"
    )
    script.chmod(0o755)
    return str(script)


def test_first_run_installs_quietly_then_never_again(tmp_path: Path) -> None:
    root = checkout(tmp_path, fake_python(tmp_path, 0))
    first = demo(root, tmp_path)
    assert first.returncode == 0, first.stderr
    calls = (tmp_path / "pip.log").read_text().splitlines()
    assert calls == ["-m pip install --quiet --upgrade pip", "-m pip install --quiet -e ."]
    assert "warning box" not in first.stdout + first.stderr
    assert first.stdout.startswith("installing coachctl into .venv …\n")
    second = demo(root, tmp_path)
    assert second.returncode == 0, second.stderr
    assert len((tmp_path / "pip.log").read_text().splitlines()) == 2  # nothing installed
    assert second.stdout.startswith("coachctl demo home: ")
    assert second.stderr == ""
    # a changed setup.cfg installs again
    with (root / "setup.cfg").open("a") as f:
        f.write("\n# changed\n")
    demo(root, tmp_path)
    assert len((tmp_path / "pip.log").read_text().splitlines()) == 4


def test_a_failing_install_shows_its_output(tmp_path: Path) -> None:
    root = checkout(tmp_path, fake_python(tmp_path, 3))
    r = demo(root, tmp_path)
    assert r.returncode == 1
    assert "warning box" in r.stderr and "demo.sh: failed: .venv/bin/python -m pip" in r.stderr


def test_the_printed_line_and_hints_work_when_pasted(tmp_path: Path) -> None:
    root = checkout(tmp_path, sys.executable)
    (root / ".venv" / ".coachctl-demo-stamp").write_text(
        subprocess.run(
            "cat setup.cfg pyproject.toml | cksum",
            shell=True,
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    r = demo(root, tmp_path)
    assert r.returncode == 0, r.stderr
    [paste] = [ln.strip() for ln in r.stdout.splitlines() if ln.strip().startswith("export ")]
    assert paste.startswith(f'export PATH={root}/.venv/bin:"$PATH" COACHCTL_HOME=')
    [hint] = re.findall(r"coachctl decide \S+ accept --step greet", r.stdout)
    [remove] = re.findall(r"When you are done with it:  (rm -rf \S+)", r.stdout)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "COACHCTL_HOME"}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run(
        ["bash", "-c", f"{paste}\n{hint}\n{remove}"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "hello from coachctl" in out.stdout and "step 2/3: clock" in out.stdout
    home = paste.rsplit("COACHCTL_HOME=", 1)[1]
    assert not Path(home).exists()  # the printed rm removed the demo home
