"""One rendering helper for every command: `--format` and `--table-format` declared once.

Tables go through tabulate (imported only when a table is printed), CSV through the csv
module, JSON through `json.dumps` with a stable key order (keys are only ever added).

Tables are for people, so they fit the terminal (like `gh` and `kubectl`): a command
declares which columns matter (`View`), `--wide` shows all of them, `--columns` picks some,
and when even the default set is too wide, long text cells are cut with `…`, then the
least useful columns go. CSV and JSON are for programs: always every column, never cut.
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
    formats: Sequence[str] = DATA_FORMATS, default: str | None = None, *, wide: bool = False
) -> Callable[[F], F]:
    """Add `--format` (and `--table-format` when tables are offered) to a command.

    `wide=True` adds `--wide` and `--columns` too (the command takes `wide` and `columns`).
    """

    def decorator(fn: F) -> F:
        if wide:
            fn = click.option(
                "--columns",
                metavar="COL,COL…",
                help="Table columns to show, by their CSV/JSON names (see --wide).",
            )(fn)
            fn = click.option(
                "--wide", is_flag=True, help="Show every column, uncut (tables only)."
            )(fn)
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


class View:
    """How a table shows to a person: which columns by default, which columns go first when
    the terminal is too narrow (`drop`, in order), then which text may be cut (`shrink`)."""

    def __init__(
        self,
        columns: Sequence[str],
        default: Sequence[str] | None = None,
        *,
        shrink: Sequence[str] = (),
        drop: Sequence[str] = (),
    ) -> None:
        self.columns = tuple(columns)
        self.default = tuple(default) if default is not None else self.columns
        self.shrink = tuple(shrink)
        self.drop = tuple(drop)


HEADERS = {
    "workflow_id": "workflow",
    "step_id": "step",
    "session_id": "session",
    "acceptance_rate": "rate",
    "confidence": "conf",
    "accepts_needed": "needs",
    "suggestions": "judged",
    "exit_code": "exit",
    "updated_at": "updated",
    "created_at": "created",
    "decided_at": "decided",
    "decided_by": "by",
}
ROUNDED = ("acceptance_rate", "confidence")  # as the reasons print them: 0.85, not 0.8500
MIN_CUT = 12  # a cut text cell keeps at least this many characters


def terminal_width() -> int | None:
    """$COLUMNS, else the terminal's width when stdout is one; None (no fitting) for pipes."""
    import os
    import sys

    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    try:
        if sys.stdout.isatty():
            return os.get_terminal_size(sys.stdout.fileno()).columns or None
    except (AttributeError, ValueError, OSError):
        pass
    return None


def short_time(value: str) -> str:
    """`2026-11-30T12:46:03.838368Z` → `2026-11-30T12:46:03Z`: seconds are enough for a
    person, and it stays one ISO-8601 word that `events --since` takes back."""
    if len(value) > 20 and value[10:11] == "T" and value[19:20] == "." and value.endswith("Z"):
        return value[:19] + "Z"
    return value


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 1)] + "…"


def pick_columns(view: View, wide: bool, columns: str | None) -> tuple[str, ...]:
    """--columns (validated against the view), else --wide (all), else the default set."""
    if columns:
        from coachctl.errors import UsageError

        wanted = tuple(c.strip() for c in columns.split(",") if c.strip())
        unknown = [c for c in wanted if c not in view.columns]
        if unknown or not wanted:
            named = ", ".join(unknown) if unknown else repr(columns)
            raise UsageError(f"invalid --columns: {named} (choose from {', '.join(view.columns)})")
        return wanted
    return view.columns if wide else view.default


def fit_table(
    rows: Sequence[Mapping[str, Any]],
    view: View,
    table_format: str,
    *,
    wide: bool = False,
    columns: str | None = None,
    width: int | None = None,
) -> str:
    """A table of `view`'s columns that fits `width` (the terminal's unless given).

    Nothing is cut or dropped with --wide or --columns: the person asked for those.
    """
    chosen = list(pick_columns(view, wide, columns))
    cells = [{c: display(c, r.get(c)) for c in view.columns} for r in rows]
    width = terminal_width() if width is None else width
    text = table_of(cells, chosen, table_format)
    if width is None or wide or columns:
        return text
    limits: dict[str, int] = {}
    drops = [c for c in view.drop if c in chosen]
    while _width(text) > width:
        over = _width(text) - width
        cuttable = [c for c in view.shrink if c in chosen and max_len(cells, c, limits) > MIN_CUT]
        if drops:
            chosen.remove(drops.pop(0))
        elif cuttable:
            c = max(cuttable, key=lambda k: max_len(cells, k, limits))
            limits[c] = max(MIN_CUT, max_len(cells, c, limits) - over)
        else:
            break
        shown = [{c: cut(v, limits.get(c, len(v))) for c, v in r.items()} for r in cells]
        text = table_of(shown, chosen, table_format)
    return text


def max_len(cells: Sequence[Mapping[str, str]], column: str, limits: Mapping[str, int]) -> int:
    longest = max((len(r[column]) for r in cells), default=0)
    return min(longest, limits.get(column, longest))


def _width(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def display(column: str, value: Any) -> str:
    """A cell as a person reads it: rates to two decimals, short timestamps, one line."""
    if column in ROUNDED and isinstance(value, float):
        return f"{value:.2f}"
    text = cell(value)
    if column.endswith("_at") or column == "ts":
        text = short_time(text)
    return text.replace("\n", " ⏎ ")


def table_of(cells: Sequence[Mapping[str, str]], columns: Sequence[str], table_format: str) -> str:
    from tabulate import tabulate, tabulate_formats

    if table_format not in tabulate_formats:
        raise click.BadParameter(
            f"unknown table format {table_format!r} (try: simple, github, grid, plain)",
            param_hint="--table-format",
        )
    body = [[r.get(c, "") for c in columns] for r in cells]
    headers = [HEADERS.get(c, c) for c in columns]
    return tabulate(body, headers=headers, tablefmt=table_format, disable_numparse=True)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.1f}"
    return str(value)


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
    view: View | None = None,
    wide: bool = False,
    pick: str | None = None,
) -> None:
    """Print rows as a table, CSV, or JSON (`json_obj` when the JSON shape is richer).

    CSV has every one of `columns`; a table shows `view` fitted to the terminal.
    """
    if fmt == "json":
        click.echo(to_json(list(rows) if json_obj is None else json_obj))
    elif fmt == "csv":
        click.echo(csv_text(rows, columns))
    elif not rows:
        click.echo("(none)")
    else:
        v = view or View(columns)
        click.echo(fit_table(rows, v, table_format, wide=wide, columns=pick))
