"""`report`: one self-contained HTML page of how trust grew (CONTRACT §4)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import click

from coachctl.commands import _complete
from coachctl.commands._common import get_store

DEFAULT_NAME = "coachctl-report.html"

EPILOG = """\b
Examples:
  coachctl report                                # ./coachctl-report.html, every workflow
  coachctl report hello -o trust.html --since 30d
  coachctl report -o artifacts/                  # in CI: upload artifacts/coachctl-report.html
"""


def write_whole(path: Path, text: str) -> None:
    """Replace `path` whole or not at all (a CI step never uploads half a report)."""
    import tempfile

    from coachctl.errors import StorageError

    folder = path.parent
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o644 & ~umask)  # a page to share, unlike the 0600 session files
        os.replace(tmp, path)
    except OSError as exc:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc


@click.command(epilog=EPILOG)
@click.argument("workflows", nargs=-1, shell_complete=_complete.workflows)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    help=f"Where to write the page ('-' for stdout) [default: ./{DEFAULT_NAME}].",
)
@click.option(
    "--since",
    metavar="AGE",
    help="Only history from then on: an age (7d, 12h) or an ISO-8601 time. "
    "Levels and metrics stay today's.",
)
@click.pass_context
def report(
    ctx: click.Context, workflows: tuple[str, ...], output: str | None, since: str | None
) -> None:
    """Write an HTML report of how trust grew, for people and CI artifacts.

    One self-contained file (inline styles and SVG charts; no network, no script needed to
    read it; light, dark and print): per workflow its level and readiness, acceptance per
    session with its 95% confidence band and the threshold, level changes, sessions by
    mode, and per step its metrics, correction pack and most recent decisions. Default: every
    workflow in the home. Prints the path it wrote.
    """
    from coachctl.engine import report as gather
    from coachctl.engine.events import parse_since
    from coachctl.report.html import page

    when = parse_since(since) if since is not None else None
    store = get_store(ctx)
    data = gather.gather(store, workflows, since=when)
    for line in data["warnings"]:
        click.echo(f"coachctl: warning: {line}", err=True)
    text = page(data)
    if output == "-":
        click.echo(text, nl=False)
        return
    path = Path(output if output else DEFAULT_NAME)
    if path.is_dir():
        path = path / DEFAULT_NAME
    write_whole(path, text)
    click.echo(str(path.resolve()))
