"""`coachctl store status|upgrade|migrate`: which store is in use, and its upkeep (§7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from coachctl.commands._output import output_options, to_json


def _selected(ctx: click.Context) -> tuple[Path, str | None]:
    from coachctl.engine.home import resolve_home
    from coachctl.store.selection import store_url

    settings = ctx.find_root().obj
    home = resolve_home(settings.home_option)
    return home, store_url(settings.store_option, home)


@click.group(
    epilog="""\b
Examples:
  coachctl store upgrade
  coachctl store status --format json
  coachctl store migrate --to postgresql://db.example/coachctl

The database is named by --store before the command, COACHCTL_STORE, or a
store: line in HOME/coachctl.yaml.
"""
)
def store() -> None:
    """The store in use: the home's sessions/ folder, or a PostgreSQL database shared by a
    team (--store URL, COACHCTL_STORE, or `store:` in HOME/coachctl.yaml)."""


@store.command(short_help="Which store is in use: kind, URL, schema version, counts, user.")
@output_options(("text", "json"))
@click.pass_context
def status(ctx: click.Context, fmt: str) -> None:
    """Which store is in use, its schema version, counts, and the database user.

    Exits 0 even when the database's schema does not match this coachctl (it says so and
    names the fix); 2 when the database cannot be reached.
    """
    home, url = _selected(ctx)
    settings = ctx.find_root().obj
    info: dict[str, Any]
    if url is None:
        from coachctl.engine.stores import file_store

        files = file_store(home, settings.lock_timeout)
        summaries, bad = files.list_sessions()
        info = {
            "kind": "file",
            "location": files.describe().removeprefix("file store "),
            "schema_version": None,
            "schema_expected": None,
            "schema_ok": True,
            "counts": {"sessions": len(summaries), "unreadable": len(bad)},
            "user": None,
            "moved_to": files.moved_to(),
        }
    else:
        from coachctl.store.postgres.admin import status as pg_status

        info = pg_status(url, settings.lock_timeout)
    if fmt == "json":
        click.echo(to_json(info))
        return
    click.echo(f"store:    {info['kind']} {info['location']}")
    if info["kind"] == "postgres":
        click.echo(f"user:     {info['user']}")
        state = "ok" if info["schema_ok"] else f"needs {info['schema_expected']}: {info['fix']}"
        click.echo(f"schema:   version {info['schema_version']} ({state})")
    counts = ", ".join(f"{v} {k}" for k, v in info["counts"].items())
    click.echo(f"contents: {counts or '-'}")
    if info.get("moved_to"):
        click.echo(f"moved to: {info['moved_to']} (writes here are refused)")


@store.command(short_help="Create or upgrade the PostgreSQL store's schema.")
@output_options(("text", "json"))
@click.pass_context
def upgrade(ctx: click.Context, fmt: str) -> None:
    """Create or upgrade the database schema (safe to run from several places at once).

    The file store has no schema: there it changes nothing and says so.
    """
    _home, url = _selected(ctx)
    settings = ctx.find_root().obj
    out: dict[str, Any]
    if url is None:
        out = {"kind": "file", "before": None, "after": None, "changed": False}
        message = "the file store has no schema to upgrade"
    else:
        from coachctl.store.postgres.admin import upgrade as pg_upgrade

        before, after, where = pg_upgrade(url, settings.lock_timeout)
        out = {"kind": "postgres", "before": before, "after": after, "changed": before != after}
        message = (
            f"{where}: schema upgraded from version {before} to {after}"
            if before != after
            else f"{where}: schema already at version {after}"
        )
    click.echo(to_json(out) if fmt == "json" else message)


@store.command(short_help="Copy the whole store into an empty one; mark the source moved.")
@click.option(
    "--to",
    "target",
    required=True,
    metavar="TARGET",
    help="A postgresql:// URL, or a home folder whose sessions/ receives the store.",
)
@output_options(("text", "json"))
@click.pass_context
def migrate(ctx: click.Context, target: str, fmt: str) -> None:
    """Copy the whole store in use into an empty one, check, and mark the source as moved.

    Sessions, decisions, events in their order, correction packs and the choices people
    made by hand are copied; `stats --format json` must then be equal on both sides.
    Later writes to the source are refused (exit 2, naming the new store); nothing is
    deleted. Workflows stay YAML files in this home.
    """
    import sys
    from pathlib import Path

    from coachctl.engine import history
    from coachctl.engine.stores import file_store, open_store
    from coachctl.errors import UsageError
    from coachctl.store import migrate as mig
    from coachctl.store.postgres.connect import is_url

    settings = ctx.find_root().obj
    source = settings.store()
    if is_url(target):
        dest = open_store(target, source.home, settings.lock_timeout, create=True)
    else:
        dest_home = Path(target).expanduser().absolute()
        if dest_home.exists() and not dest_home.is_dir():
            raise UsageError(f"--to {target}: not a folder")
        dest = file_store(dest_home, settings.lock_timeout)
        dest.home = source.home  # its sessions run this home's workflows
    if dest.describe() == source.describe():
        raise UsageError(f"--to names the store in use ({source.describe()})")

    bar: Any = None
    progress = None
    if sys.stderr.isatty() and fmt == "text":
        total = len(source.list_sessions())
        bar = click.progressbar(length=total, label="sessions", file=sys.stderr)
        bar.__enter__()

        def progress(what: str, done: int, total: int | None) -> None:
            if what == "sessions":
                bar.update(1)

    try:
        counts = mig.copy(source, dest, progress)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    before = history.report(source).to_json()
    after = history.report(dest).to_json()
    mig.verify(before, after, source, dest)
    source.mark_moved(dest.describe())
    out = {"from": source.describe(), "to": dest.describe(), **counts, "stats_equal": True}
    if fmt == "json":
        click.echo(to_json(out))
        return
    click.echo(
        f"copied {counts['sessions']} sessions, {counts['events']} events, "
        f"{counts['packs']} packs, {counts['hand_choices']} hand choices "
        f"from {source.describe()} to {dest.describe()}; stats agree. "
        f"{source.describe()} is now marked as moved: use the new store."
    )
