"""The root command: global options, lazy subcommands, and the one place errors become exits.

Subcommands are imported only when invoked (Click's documented LazyGroup pattern), and the
root `--help` lists them from the short help kept here, so `coachctl --help` costs little
more than importing click itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from coachctl import __version__

if TYPE_CHECKING:  # imported when a command runs: `coachctl --help` never needs them
    from coachctl.errors import CoachctlError

# name -> (module:attribute, short help shown by `coachctl --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("coachctl.commands.run:run", "Start a session of a workflow."),
    "coach": ("coachctl.commands.coach:coach", "Start a coaching session (every step asks)."),
    "decide": ("coachctl.commands.decide:decide", "Decide the current step of a session."),
    "pause": ("coachctl.commands.lifecycle:pause", "Pause a session; resume it later."),
    "resume": ("coachctl.commands.lifecycle:resume", "Resume a paused session."),
    "cancel": ("coachctl.commands.lifecycle:cancel", "End a session for good."),
    "sessions": ("coachctl.commands.sessions:sessions", "List sessions."),
    "show": ("coachctl.commands.sessions:show", "Show one session and its decisions."),
    "stats": ("coachctl.commands.stats:stats", "Acceptance metrics per workflow or step."),
    "readiness": (
        "coachctl.commands.readiness:readiness",
        "CI gate: are workflows ready for AUTO?",
    ),
    "corrections": ("coachctl.commands.corrections:corrections", "Manage correction packs."),
    "events": ("coachctl.commands.events:events", "Print or follow the event log."),
    "validate": ("coachctl.commands.workflows:validate", "Check workflow files."),
    "workflows": ("coachctl.commands.workflows:workflows", "List the home's workflows."),
    "doctor": ("coachctl.commands.doctor:doctor", "Check (and repair) sessions and derived state."),
    "report": ("coachctl.commands.report:report", "Write an HTML report of how trust grew."),
    "store": ("coachctl.commands.store:store", "The store: status, upgrade, migrate."),
}


class Settings:
    """What the root options decide, handed to every subcommand through `ctx.obj`.

    (A plain class, not a dataclass: `dataclasses` pulls in `inspect`, which alone costs
    more than a tenth of `coachctl --help`.)
    """

    def __init__(
        self,
        home_option: str | None,
        lock_timeout: float,
        debug: bool,
        store_option: str | None = None,
    ) -> None:
        self.home_option = home_option
        self.lock_timeout = lock_timeout
        self.debug = debug
        self.store_option = store_option

    def store(self) -> Any:
        """The store, built once per invocation (every command reaches it through here):
        PostgreSQL when --store, COACHCTL_STORE or HOME/coachctl.yaml names one (§7)."""
        built = self.__dict__.get("_store")
        if built is None:
            from coachctl.engine.home import resolve_home
            from coachctl.engine.stores import open_store
            from coachctl.store.selection import store_url

            home = resolve_home(self.home_option)
            built = open_store(store_url(self.store_option, home), home, self.lock_timeout)
            self.__dict__["_store"] = built
        return built


def _check_lock_timeout(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """A number of seconds to wait: `nan` would wait forever and `inf` is not a timeout."""
    if not 0 <= value < float("inf"):  # also false for nan
        raise click.BadParameter(f"{value} (expected a finite number of seconds >= 0)", ctx, param)
    return value


def debug_enabled() -> bool:
    return os.environ.get("COACHCTL_DEBUG", "") not in ("", "0")


def _show_help(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(ctx.get_help(), color=ctx.color)
        ctx.exit()


def _show_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"coachctl, version {__version__}", color=ctx.color)
        ctx.exit()


def help_width(max_width: int | None = None) -> int:
    """The width click's help formatter would pick, without `shutil.get_terminal_size`:
    importing shutil pulls in zlib, bz2 and lzma, a twentieth of `coachctl --help`.
    Same rules: FORCED_WIDTH, else $COLUMNS, else the terminal of stdout, else 80."""
    from click import formatting

    if formatting.FORCED_WIDTH is not None:
        return formatting.FORCED_WIDTH
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
        columns = columns or 80
    return max(min(columns, max_width or 80) - 2, 50)


def quick_help_option(cmd: click.Command, ctx: click.Context) -> click.Option | None:
    """Click's `--help` option, built without gettext: click's own calls `gettext` for its
    help text on every run, which searches for translation files and imports `locale`
    (about 2 ms of every `decide`). Same names, text and behaviour."""
    names = cmd.get_help_option_names(ctx)
    if not names or not cmd.add_help_option:
        return None
    option: click.Option | None = cmd.__dict__.get("_quick_help")
    if option is None:
        option = click.Option(
            [*names, "coachctl_help"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            help="Show this message and exit.",
            callback=_show_help,
        )
        cmd.__dict__["_quick_help"] = option  # one object per command: click compares them
    return option


class QuickHelpCommand(click.Command):
    """A command whose `--help` costs no gettext (for commands scripts run in loops)."""

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        return quick_help_option(self, ctx)


class SuggestingGroup(click.Group):
    """A group that names the command probably meant, whatever Click's version does."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """An unknown command name says which one was probably meant (`stat` → `stats`)."""
        name = args[0] if args else ""
        if (
            name
            and not name.startswith("-")
            and not ctx.resilient_parsing
            and self.get_command(ctx, name) is None
        ):
            from difflib import get_close_matches

            close = get_close_matches(name, self.list_commands(ctx), n=3)
            hint = " or ".join(f"'{c}'" for c in close)
            raise click.UsageError(
                f"No such command '{name}'." + (f" Did you mean {hint}?" if hint else ""), ctx
            )
        return super().resolve_command(ctx, args)


class LazyGroup(SuggestingGroup):
    """A group whose subcommands are imported on first use."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            import importlib

            path = self.lazy[cmd_name][0]
            module_name, attr = path.split(":")
            cmd = getattr(importlib.import_module(module_name), attr)
            assert isinstance(cmd, click.Command)
            return cmd
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self.lazy[name][1]) for name in sorted(self.lazy)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class RootGroup(LazyGroup):
    """Turns every CoachctlError into one stderr line and its exit code (CONTRACT §4)."""

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        return quick_help_option(self, ctx)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        """Every context inherits the root's terminal_width: help never imports shutil."""
        if extra.get("terminal_width") is None and "terminal_width" not in self.context_settings:
            extra["terminal_width"] = help_width(
                extra.get("max_content_width", self.context_settings.get("max_content_width"))
            )
        return super().make_context(info_name, args, parent, **extra)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Click's own usage errors, too, become one line (`coachctl: …`) and exit 2."""
        call = super().main
        if not standalone_mode:
            return call(args, prog_name, complete_var, False, **extra)
        try:
            rv = call(args, prog_name, complete_var, False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            # Bare `coachctl` (or `coachctl corrections`): the whole help, as Click prints it
            # (stderr, exit 2), not squashed into the one-line error below.
            exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.ClickException as exc:
            ctx: Any = getattr(exc, "ctx", None)
            where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            click.echo(f"coachctl: {one_line(exc.format_message())}{where}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("coachctl: aborted", err=True)
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        from coachctl.errors import CoachctlError, stop_status

        previous = _catch_stop_signals()
        try:
            return super().invoke(ctx)
        except CoachctlError as exc:
            with contextlib.suppress(OSError):  # stderr may be a terminal that hung up
                report(exc)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt as exc:
            with contextlib.suppress(OSError):
                click.echo("coachctl: interrupted", err=True)
            ctx.exit(stop_status(exc))
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:
            # `coachctl events | head`: the reader left; that is not our error.
            _silence_stdout()
            ctx.exit(0)
        except Exception as exc:
            if debug_enabled():
                raise
            name = type(exc).__name__
            click.echo(
                f"coachctl: unexpected error: {name}: {exc} "
                "(set COACHCTL_DEBUG=1 for the traceback)",
                err=True,
            )
            ctx.exit(1)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def _catch_stop_signals() -> dict[int, Any]:
    """SIGTERM and SIGHUP become `Stopped`, a KeyboardInterrupt: they pause a session the
    same way Ctrl-C does (a second one interrupts that pause too). Returns what to restore."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}

    def stop(signum: int, frame: object) -> None:
        from coachctl.errors import Stopped

        raise Stopped(signum)

    previous: dict[int, Any] = {}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_IGN:
            continue  # `nohup coachctl …` asked for SIGHUP to be ignored: keep it so
        previous[signum] = signal.signal(signum, stop)
    return previous


def report(exc: CoachctlError) -> None:
    from coachctl.errors import WorkflowError

    message = exc.message if isinstance(exc, WorkflowError) else f"coachctl: {exc.message}"
    if debug_enabled():
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__)
    click.echo(one_line(message), err=True)


def one_line(text: str) -> str:
    """Errors echo user input: never let it break the line or drive the terminal."""
    from coachctl.errors import one_line as escape

    return escape(text)


def warn(message: str) -> None:
    """A command's warning: one stderr line, escaped exactly as errors are."""
    click.echo(one_line(f"coachctl: warning: {message}"), err=True)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


@click.group("coachctl", cls=RootGroup, lazy=COMMANDS, context_settings=CONTEXT_SETTINGS)
@click.option(
    "--home",
    metavar="DIR",
    # COACHCTL_HOME is read by engine.home, not by click: click takes an empty variable for
    # an unset one, and COACHCTL_HOME='' must be refused rather than mean the current folder.
    help="Folder holding workflows/ and sessions/ [env COACHCTL_HOME; default: current dir].",
)
@click.option(
    "--store",
    "store_option",
    metavar="URL",
    envvar="COACHCTL_STORE",
    help="A postgresql:// URL: share one store with a team [env COACHCTL_STORE; default: "
    "store: in HOME/coachctl.yaml, else HOME/sessions/].",
)
@click.option(
    "--lock-timeout",
    type=float,
    callback=_check_lock_timeout,
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for a session's lock before giving up (exit 3).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks (same as COACHCTL_DEBUG=1).")
# Not click.version_option: it calls gettext at import time (see quick_help_option).
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    help="Show the version and exit.",
    callback=_show_version,
)
@click.pass_context
def cli(
    ctx: click.Context, home: str | None, store_option: str | None, lock_timeout: float, debug: bool
) -> None:
    """coachctl: turn runbooks into automation that earns trust step by step.

    Workflows (YAML) run one step at a time: people observe, then coachctl coaches
    (proposes each step, you decide with one key), and a step whose exact command has
    earned enough trust runs on its own (AUTO).
    """
    if debug:
        os.environ["COACHCTL_DEBUG"] = "1"
    ctx.obj = Settings(home, lock_timeout, debug or debug_enabled(), store_option)


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="coachctl")
