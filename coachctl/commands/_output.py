"""One rendering helper for every command: `--format` and `--table-format` declared once.

Tables go through tabulate (imported only when a table is printed), CSV through the csv
module, JSON through `json.dumps` with a stable key order (keys are only ever added).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

DATA_FORMATS = ("table", "json", "csv")
STATE_FORMATS = ("text", "json")


def output_options(
    formats: Sequence[str] = DATA_FORMATS, default: str | None = None
) -> Callable[[F], F]:
    """Add `--format` (and `--table-format` when tables are offered) to a command."""

    def decorator(fn: F) -> F:
        if "table" in formats:
            fn = click.option(
                "--table-format",
                default="simple",
                show_default=True,
                metavar="NAME",
                help="Any tabulate format: simple, github, grid, plain, …",
            )(fn)
        fn = click.option(
            "--format",
            "fmt",
            type=click.Choice(list(formats)),
            default=default or formats[0],
            show_default=True,
            help="Output format.",
        )(fn)
        return fn

    return decorator


def state_options(fn: F) -> F:
    """`--format text|json` for commands that print one session state."""
    from coachctl.commands._common import state_options as options

    return options(fn)  # type: ignore[no-any-return]


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.1f}"
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], table_format: str) -> str:
    from tabulate import tabulate, tabulate_formats

    if table_format not in tabulate_formats:
        raise click.BadParameter(
            f"unknown table format {table_format!r} (try: simple, github, grid, plain)",
            param_hint="--table-format",
        )
    body = [[cell(r.get(c)) for c in columns] for r in rows]
    return tabulate(body, headers=list(columns), tablefmt=table_format, disable_numparse=True)


def csv_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
    return buf.getvalue().rstrip("\n")


def emit_rows(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    fmt: str,
    table_format: str = "simple",
    *,
    json_obj: Any = None,
) -> None:
    """Print rows as a table, CSV, or JSON (`json_obj` when the JSON shape is richer)."""
    if fmt == "json":
        click.echo(to_json(list(rows) if json_obj is None else json_obj))
    elif fmt == "csv":
        click.echo(csv_text(rows, columns))
    else:
        click.echo(table(rows, columns, table_format) if rows else "(none)")
