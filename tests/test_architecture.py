"""The layering rules, checked: the engine never imports click; --help stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "coachctl"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((PACKAGE / "engine").glob("*.py")), ids=lambda p: p.name)
def test_engine_module_never_imports_click(path: Path) -> None:
    assert "click" not in _imports(path)
    assert "tabulate" not in _imports(path)


def test_engine_import_does_not_pull_in_click() -> None:
    code = (
        "import sys, importlib, pkgutil, coachctl.engine as e\n"
        "for m in pkgutil.iter_modules(e.__path__):\n"
        "    importlib.import_module('coachctl.engine.' + m.name)\n"
        "print('click' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("argv", [["--help"], ["decide", "--help"], ["stats", "--help"]])
def test_help_imports_neither_yaml_nor_tabulate(argv: list[str]) -> None:
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['coachctl', *{argv!r}]\n"
        "try:\n"
        "    runpy.run_module('coachctl', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('yaml', 'tabulate', 'sqlite3') if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY=" in out.stderr
    assert out.stderr.rsplit("HEAVY=", 1)[1].strip() == ""


FILE_STORE_WORDS = ("sessions_dir", ".locks", "events.jsonl", "events_path", "load_raw", "save_raw")


@pytest.mark.parametrize(
    "path",
    sorted(p for p in PACKAGE.rglob("*.py") if (PACKAGE / "store" / "files") not in p.parents),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_only_the_file_store_knows_its_paths(path: Path) -> None:
    """Issue 8: commands, engine and metrics talk to the Store interface; nothing outside
    coachctl/store/files/ builds a path under sessions/ or knows its files and locks."""
    tree = ast.parse(path.read_text())
    found = [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)]
    found += [
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]
    found = [w for w in FILE_STORE_WORDS for x in found if w in x]
    found += [  # home / "sessions"
        "/ 'sessions'"
        for n in ast.walk(tree)
        if isinstance(n, ast.BinOp)
        and isinstance(n.op, ast.Div)
        and isinstance(n.right, ast.Constant)
        and n.right.value == "sessions"
    ]
    assert found == []


def _modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    return names


@pytest.mark.parametrize(
    "path", sorted((PACKAGE / "store").rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_stores_never_import_engine_rules(path: Path) -> None:
    """Arrows point down: the engine hands a store its rules (`derive`, `fast_derive`); a
    store that imported them would keep a second copy of the seam's other side."""
    assert [
        m for m in _modules(path) if m == "coachctl.engine" or m.startswith("coachctl.engine.")
    ] == []
