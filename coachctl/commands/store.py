"""`coachctl store status|upgrade|migrate`: which store is in use, and its upkeep (§7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from coachctl.commands._output import output_options, to_json


def _selected(ctx: click.Context) -> tuple[Path, str | None]:
    from coachctl.engine.store import resolve_home
    from coachctl.store.selection import store_url

    settings = ctx.find_root().obj
    home = resolve_home(settings.home_option)
    return home, store_url(settings.store_option, home)


@click.group()
def store() -> None:
    """The store in use: the home's sessions/ folder, or a PostgreSQL database shared by a
    team (--store URL, COACHCTL_STORE, or `store:` in HOME/coachctl.yaml)."""


@store.command()
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
        from coachctl.engine.store import Store

        files = Store(home, settings.lock_timeout)
        info = {
            "kind": "file",
            "location": str(files.sessions_dir),
            "schema_version": None,
            "schema_expected": None,
            "schema_ok": True,
            "counts": {"sessions": len(files.list_ids())},
            "user": None,
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


@store.command()
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
