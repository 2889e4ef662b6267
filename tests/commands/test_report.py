"""`report`: where it writes, bad input, and the page itself parsed as HTML."""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli
from tests.report import seed


class Page(HTMLParser):
    """Every start tag with its attributes, and the text (entities decoded)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.void = {"meta", "br", "img", "input", "link", "hr", "area", "base", "col", "wbr"}
        self.svg_leaf = {"line", "circle", "rect", "polygon", "polyline", "path"}
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.void:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a
            for t, a in self.tags
            if t == tag and all(attrs[k] in (a.get(k) or "").split() for k in attrs)
        ]


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    assert text.startswith("<!DOCTYPE html>")
    assert not page.errors, page.errors[:5]
    assert page.stack == [], f"unclosed: {page.stack}"
    return page


@pytest.fixture
def seeded(cli: Cli) -> Cli:
    seed.seeded(cli)
    return cli


def report(cli: Cli, *args: str) -> tuple[str, Page]:
    r = cli("report", *args, "-o", "-")
    assert r.exit_code == 0, r.stderr
    return r.stdout, parse(r.stdout)


def test_writes_coachctl_report_html_here_and_prints_its_path(seeded: Cli) -> None:
    r = seeded("report")
    assert r.exit_code == 0, r.stderr
    path = Path.cwd() / "coachctl-report.html"
    assert r.stdout == f"{path}\n"
    parse(path.read_text())
    assert oct(path.stat().st_mode & 0o777) == oct(0o644 & ~_umask())
    assert [p.name for p in Path.cwd().iterdir()] == ["coachctl-report.html"]  # no temp left


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_output_file_and_folder(seeded: Cli, tmp_path: Path) -> None:
    out = tmp_path / "artifacts" / "trust.html"
    out.parent.mkdir()
    r = seeded("report", "hello", "-o", str(out))
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == str(out)
    page = parse(out.read_text())
    assert [a["data-workflow"] for a in page.find("section", **{"class": "workflow"})] == ["hello"]
    r = seeded("report", "-o", str(out.parent))
    assert r.exit_code == 0, r.stderr
    assert (out.parent / "coachctl-report.html").is_file()


def test_structure_ids_and_one_trust_chart_per_workflow(seeded: Cli) -> None:
    text, page = report(seeded)
    workflows = ["hello", "incident-triage", "odd", "rotate-certs"]
    sections = page.find("section", **{"class": "workflow"})
    assert sorted(str(a["data-workflow"]) for a in sections) == workflows
    assert sorted(str(a["id"]) for a in sections) == [f"wf-{w}" for w in workflows]
    charts = page.find("svg", **{"class": "trust"})
    assert sorted(str(a["data-workflow"]) for a in charts) == workflows
    cells = set(page.text)
    for step in ("greet", "clock", "look", "uptime", "notify", "fetch", "reload", "verify"):
        assert step in cells, step
    # the hello chart has its band, its rate line, the threshold and its level changes
    hello = text.split('data-workflow="hello" viewBox')[1].split("</svg>")[0]
    for part in ('class="band"', 'class="rate"', 'class="threshold"', 'class="change'):
        assert part in hello, part
    assert page.find("svg", **{"class": "modes"})


def test_self_contained_nothing_external_no_script(seeded: Cli) -> None:
    text, page = report(seeded)
    for tag, attrs in page.tags:
        assert "src" not in attrs, (tag, attrs)
        href = attrs.get("href")
        assert href is None or href.startswith("#"), (tag, attrs)
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
        assert tag not in ("script", "link", "iframe", "img", "object", "embed", "base"), tag
    styles = "".join(a for a in page.text if "{" in a)
    assert "url(" not in styles and "@import" not in styles
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        "http://evil.example", ""
    )


def test_hostile_strings_show_as_text(seeded: Cli) -> None:
    text, page = report(seeded)
    body = "".join(page.text)
    for hostile in (seed.HOSTILE_FEEDBACK, seed.HOSTILE_CORRECTION, seed.HOSTILE_NAME):
        assert hostile in body, hostile  # shown, as text
    assert "<script>" not in text and "<img" not in text and "<style>body" not in text
    assert '<a href="http' not in text
    assert len(page.find("style")) == 1


def test_since_and_bad_input(seeded: Cli, tmp_path: Path) -> None:
    _, page = report(seeded, "--since", "2d")
    assert "since" in "".join(page.text)
    for args, message in [
        (["--since", "yesterday"], "invalid --since"),
        (["nope"], "unknown workflow: nope"),
    ]:
        r = seeded("report", *args)
        assert r.exit_code == 2
        assert r.stderr.startswith("coachctl: ") and message in r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert not (Path.cwd() / "coachctl-report.html").exists()


def test_an_unwritable_output_is_one_line_and_leaves_nothing(seeded: Cli, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "r.html"
    r = seeded("report", "-o", str(target))
    assert r.exit_code == 1
    assert r.stderr.startswith(f"coachctl: cannot write {target}") and r.stderr.count("\n") == 1
    old = tmp_path / "old.html"
    old.write_text("the previous report")
    os.chmod(tmp_path, 0o500)
    try:
        r = seeded("report", "-o", str(old))
        if os.geteuid() != 0:  # root writes anyway; the path above covered the error
            assert r.exit_code == 1
            assert old.read_text() == "the previous report"
    finally:
        os.chmod(tmp_path, 0o700)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".old")] == []


def test_an_empty_home_still_makes_a_page(cli: Cli) -> None:
    for p in (cli.home / "workflows").iterdir():
        p.unlink()
    _, page = report(cli)
    assert "No workflows in this home yet." in "".join(page.text)


def test_unreadable_session_is_left_out_with_a_warning(seeded: Cli) -> None:
    bad = seeded.home / "sessions" / "mzzzzzzz-zzzz.json"
    bad.write_text("{not json")
    r = seeded("report", "-o", "-")
    assert r.exit_code == 0
    assert "coachctl: warning: left out" in r.stderr and "mzzzzzzz-zzzz" in r.stderr
    assert "mzzzzzzz-zzzz" in "".join(parse(r.stdout).text)


def test_scope_rows_show_when_the_stats_carry_them(
    seeded: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trust scope (issue 12) adds a "scope" key to each step object: a column appears."""
    from coachctl.engine import history

    real = history.report

    def scoped(*args: Any, **kw: Any) -> Any:
        rep = real(*args, **kw)
        for w in rep.workflows:
            for s in w["steps"]:
                s["scope"] = {"env": "<prod>"} if w["workflow_id"] == "hello" else None
        return rep

    _, before = report(seeded)
    assert "scope" not in before.text
    monkeypatch.setattr(history, "report", scoped)
    _, page = report(seeded)
    assert "scope" in page.text
    assert "env=<prod>" in page.text
