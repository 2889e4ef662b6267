"""Every `coachctl …` command the README and docs/reference.md show parses as Click would
run it (options exist, choices are valid, arguments are there): a reader can paste them."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from coachctl.cli import cli
from tests.commands.test_help import _parse
from tests.conftest import REPO

DOCS = [REPO / "README.md", REPO / "docs" / "reference.md"]


def commands(path: Path) -> list[str]:
    """`coachctl …` lines inside fenced code blocks (`$ ` prompts and shell tails removed)."""
    found: list[str] = []
    fenced = False
    for raw in path.read_text().splitlines():
        if raw.lstrip().startswith("```"):
            fenced = not fenced
            continue
        line = raw.strip().removeprefix("$ ")
        if not fenced or not line.startswith("coachctl ") or "…" in line:
            continue
        line = re.split(r"\s(?:\||\|\||&&|;|>|2>|#)\s?", line)[0]
        found.append(line)
    return found


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_shown_command_parses(path: Path) -> None:
    shown = commands(path)
    assert len(shown) >= 3, shown
    for line in shown:
        args = shlex.split(line)[1:]
        try:
            _parse(cli, "coachctl", args, None)
        except Exception as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"{path.name}: {line!r}: {exc}") from exc


def test_start_here_has_exactly_the_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    start = text.split("## Start here", 1)[1].split("\n## ", 1)[0]
    block = start.split("```sh\n", 1)[1].split("```", 1)[0]
    assert block.splitlines() == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    assert "beside this repository" not in text and "CONTRACT" not in text
