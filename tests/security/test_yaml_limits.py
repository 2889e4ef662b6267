"""YAML is parsed with the safe loader only, and a hostile document is refused quickly."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Cli, write_workflow

LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
id: laughs
steps: *i
"""

LAUGHS_IN_VARIABLES = LAUGHS.replace("steps: *i", "variables: *i\nsteps:\n  - run: echo")


@pytest.mark.parametrize("text", [LAUGHS, LAUGHS_IN_VARIABLES], ids=["top", "variables"])
def test_billion_laughs_is_refused_quickly_and_small(tmp_path: Path, text: str) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(text)
    # tracemalloc, not ru_maxrss: Linux carries the parent's peak RSS into a forked child.
    code = (
        "import sys, time, tracemalloc\n"
        "from coachctl.engine.workflow_load import load_workflow\n"
        "from coachctl.errors import WorkflowError\n"
        "tracemalloc.start()\n"
        "t = time.monotonic()\n"
        "try:\n"
        "    load_workflow(sys.argv[1])\n"
        "except WorkflowError as e:\n"
        "    print(e)\n"
        "print(time.monotonic() - t)\n"
        "print(tracemalloc.get_traced_memory()[1])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    message, took, peak = out.stdout.splitlines()
    assert message.startswith(f"{path}:"), message
    assert float(took) < 2.0, f"{took}s"
    assert int(peak) < 50 * 2**20, f"{int(peak) // 2**20} MB for a 1 KB document"


def test_billion_laughs_through_the_cli_is_one_line_exit_2(cli: Cli, home: Path) -> None:
    write_workflow(home, "laughs", LAUGHS)
    began = time.monotonic()
    res = cli("run", "laughs", "--no-input")
    assert time.monotonic() - began < 2.0
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and res.stderr.startswith(str(home / "workflows"))


@pytest.mark.parametrize(
    "text",
    [
        "id: x\nsteps: !!python/object/apply:os.system ['touch PWNED']\n",
        "!!python/object/apply:os.system ['touch PWNED']\n",
        "id: x\nsteps:\n  - run: !!python/name:os.system\n",
        "id: !!binary aGVsbG8=\nsteps:\n  - run: echo\n",
        "id: x\nsteps: !!set {a: null}\n",
    ],
)
def test_only_the_safe_loader(cli: Cli, home: Path, text: str) -> None:
    write_workflow(home, "tags", text)
    res = cli("validate", "tags")
    assert res.exit_code == 2
    assert "Traceback" not in res.stderr
    assert not (Path.cwd() / "PWNED").exists()


@pytest.mark.parametrize("depth", [50, 5000])
def test_deep_nesting_is_an_error_not_a_crash(cli: Cli, home: Path, depth: int) -> None:
    write_workflow(home, "deep", "id: x\nsteps: " + "[" * depth + "]" * depth + "\n")
    res = cli("run", "deep", "--no-input")
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_a_huge_file_is_refused_without_reading_it_all(cli: Cli, home: Path) -> None:
    path = write_workflow(home, "huge", "id: huge\nsteps:\n" + "  - run: echo x\n" * 200_000)
    assert path.stat().st_size > 1 << 20
    res = cli("run", "huge", "--no-input")
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1
