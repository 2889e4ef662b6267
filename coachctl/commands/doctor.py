"""`doctor`: check every session file and the derived index; `--repair` rebuilds it."""

from __future__ import annotations

import click

from coachctl.commands._common import get_store
from coachctl.commands._output import output_options, to_json

EPILOG = """\b
Examples:
  coachctl doctor               # exit 1 names every difference
  coachctl doctor --repair      # rebuild the index and the correction packs
"""


@click.command(epilog=EPILOG)
@click.option(
    "--repair",
    is_flag=True,
    help="Rebuild the index and correction packs; remove leftover temp files.",
)
@output_options(("text", "json"))
@click.pass_context
def doctor(ctx: click.Context, repair: bool, fmt: str) -> None:
    """Check every session file, the derived index and the correction packs against a full
    recomputation from the session files. Exit 1 on any problem; `--repair` fixes what can
    be fixed (the index, the packs, keeping what people chose by hand, temp files left by
    killed writers) and exits 0 when all is well.

    A step left running by a dead process is reported but never cleared: a person decides it.
    """
    from coachctl.engine.doctor import doctor as check

    findings, checked = check(get_store(ctx), repair=repair)
    problems = [f for f in findings if f.problem]
    if fmt == "json":
        click.echo(
            to_json(
                {
                    "ok": not problems,
                    "sessions_checked": checked,
                    "problems": len(problems),
                    "findings": [f.to_json() for f in findings],
                }
            )
        )
    else:
        for f in findings:
            click.echo(f"{'problem' if f.problem else 'note'}: {f.message}")
        if problems:
            click.echo(
                f"doctor: {len(problems)} problem{'s' if len(problems) != 1 else ''} "
                f"in {checked} session files" + ("" if repair else " (try --repair)")
            )
        else:
            click.echo(f"doctor: ok ({checked} session files checked)")
    ctx.exit(1 if problems else 0)
