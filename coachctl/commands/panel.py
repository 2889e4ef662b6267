"""The interactive panel: one step at a time, single keys, for a person at a terminal.

`run`, `coach` and `resume` hand over here (through `run.drive`) when a terminal is
attached. A KeyboardInterrupt (Ctrl-C at the key prompt, at a text prompt, in the editor,
or while a command runs) leaves this module as KeyboardInterrupt: `drive` pauses the
session and exits 130, so nothing is lost.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from coachctl.commands._panel_io import LineTracker, events_mark, events_since, readline_input
from coachctl.commands._panel_words import (
    announcement,
    level_changes,
    levels_of,
    session_stats_text,
    step_trust_text,
    workflow_stats_text,
)

if TYPE_CHECKING:
    from coachctl.engine.session import Session
    from coachctl.store.base import Store

KEYS = {"a": "accept", "r": "reject", "c": "correct", "m": "manual", "s": "skip"}
HELP = [
    ("a", "accept: run the suggestion; its output streams here"),
    ("r", "reject: do not run it (you may say why)"),
    ("c", "correct: edit the command ($VISUAL/$EDITOR, else a prompt) and run that; empty cancels"),
    ("m", "manual: you did the step yourself; say what you ran (optional) so coachctl learns it"),
    ("s", "skip: leave the step out this time (counts neither way)"),
    ("p, q", "pause and leave; `coachctl resume SESSION` comes back to this step"),
    ("?", "this help"),
    ("Ctrl-C", "pause and leave at any moment, even while a command runs (exit 130)"),
]
LEVEL_COLOURS = {"AUTO": "green", "COACHING": "yellow", "OBSERVATION": "magenta"}
KEY_WORDS = {
    "a": "accept",
    "r": "reject",
    "c": "correct",
    "m": "manual",
    "s": "skip",
    "p": "pause",
    "?": "help",
}
# After a failure or an interruption the key bar itself is the hint: what `a` and `m` mean now.
AFTER = {
    "failed": {"a": "retry"},
    "interrupted": {"a": "run again", "m": "done"},
}
DONE_WORDS = {
    "reject": "rejected",
    "skip": "skipped",
    "manual": "recorded as done by you",
}


def interact(ctx: click.Context, store: Store, session_id: str) -> None:
    """Loop over the session's steps until it ends or the person pauses."""
    panel = Panel(store, session_id)
    try:
        panel.loop()
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):  # a closed terminal (SIGHUP) takes no output
            click.echo()  # leave the prompt's line before drive's "interrupted" message
        raise


def colour_enabled() -> bool:
    """Colour only on a terminal, never with NO_COLOR (https://no-color.org) or TERM=dumb."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return sys.stdout.isatty()


@dataclass
class Trust:
    """What the panel says about trust: the step on its exact command, and the workflow.

    `step` is `metrics.step_metrics` of the session's step (None without a command);
    `workflow` is `history.workflow_metrics` (None when the file is gone or invalid).
    """

    step: dict[str, Any] | None
    workflow: dict[str, Any] | None


def trust_of(store: Store, session: Session, step: Mapping[str, Any]) -> Trust:
    """Metrics for the step's exact command (the session's snapshot) and its workflow."""
    from coachctl.engine import history
    from coachctl.errors import CoachctlError

    wf: dict[str, Any] | None = None
    try:
        from coachctl.engine.workflow_load import load_workflow

        workflow = load_workflow(session.workflow_path)
        if workflow.id == session.workflow_id:
            wf = history.workflow_metrics(store, workflow, within=history.session_scope(session))
    except (CoachctlError, OSError, TypeError):
        wf = None
    if not step.get("suggestion"):
        return Trust(None, wf)
    return Trust(history.session_step_metrics(store, session, step), wf)


class Panel:
    """One session on a terminal: draw the step, read a key, decide, repeat."""

    def __init__(self, store: Store, session_id: str) -> None:
        import shutil

        self.store = store
        self.sid = session_id
        self.colour = colour_enabled()
        self.said: set[tuple[Any, Any]] = set()  # adoptions announced (read twice per decision)
        self.width = max(40, shutil.get_terminal_size((80, 24)).columns)

    # -- output ----------------------------------------------------------------------

    def style(self, text: str, **kw: Any) -> str:
        return click.style(text, **kw) if self.colour else text

    def echo(self, text: str = "", *, err: bool = False) -> None:
        click.echo(text, err=err, color=self.colour)

    def wrapped(self, text: str, first: str, rest: str, **kw: Any) -> None:
        """Print `text` wrapped to the terminal width (never truncated), each line styled;
        the first line after `first` (which may be styled), the others after `rest`."""
        import textwrap

        lead = len(click.unstyle(first))
        lines: list[str] = []
        for raw in text.splitlines() or [""]:
            lines.extend(
                textwrap.wrap(
                    raw,
                    width=max(20 + lead, self.width - 1),
                    initial_indent=" " * (lead if not lines else len(rest)),
                    subsequent_indent=" " * len(rest),
                    break_long_words=True,
                    break_on_hyphens=False,
                    drop_whitespace=True,
                )
                or [" " * (lead if not lines else len(rest))]
            )
        for i, line in enumerate(lines):
            body = line[lead:] if i == 0 else line[len(rest) :]
            self.echo((first if i == 0 else rest) + (self.style(body, **kw) if kw else body))

    def warn(self, text: str) -> None:
        from coachctl.errors import one_line  # escaped exactly as the CLI's errors are

        self.echo(self.style(one_line(text), fg="red"), err=True)

    # -- input -----------------------------------------------------------------------

    def key(self, allowed: Sequence[str], words: Mapping[str, str] | None = None) -> str:
        """One key of `allowed`; the key bar names each (`words` renames some: `retry`).

        On a narrow terminal the bar is compact (`[a]ccept [r]eject …`), so the bar and the
        word echoed after it stay on one line.
        """
        full = "  ".join(f"[{k}] {self._word(k, words)}" for k in allowed) + "  > "
        compact = len(full) + len(" correct") > self.width
        sep = " " if compact else "  "
        prompt = sep.join(self._key_label(k, words, compact) for k in allowed) + sep + "> "
        click.echo(prompt, nl=False, color=self.colour)
        while True:
            try:
                ch = click.getchar()
            except EOFError:  # Ctrl-D: leave the same way as q
                ch = "q"
            except OSError:  # EIO: the terminal is gone
                ch = ""
            if not ch:  # a read of nothing: the terminal hung up (its SIGHUP may come
                import signal  # later, or never under nohup): pause as for that signal

                from coachctl.errors import Stopped

                raise Stopped(signal.SIGHUP)
            if ch in ("\r", "\n", " "):
                continue
            if ch in allowed or (ch == "q" and "p" in allowed):
                return ch
            self.echo()
            self.echo(f"  {ch!r} does nothing here: press ? for help")
            click.echo(prompt, nl=False, color=self.colour)

    def _word(self, k: str, words: Mapping[str, str] | None) -> str:
        return (words or {}).get(k) or KEY_WORDS[k]

    def _key_label(
        self, k: str, words: Mapping[str, str] | None = None, compact: bool = False
    ) -> str:
        word = self._word(k, words)
        if compact and word.startswith(k):
            return f"[{self.style(k, bold=True)}]{word[1:]}"
        return f"[{self.style(k, bold=True)}] {word}"

    def ask(self, text: str, prefill: str | None = None) -> str:
        """A line of text; Enter alone gives "". Ctrl-C/Ctrl-D here pause like anywhere.

        Every prompt is written to stdout, which the panel only runs on when it is the
        terminal: `2>/dev/null` never hides it (`input()` without readline, and so
        `click.prompt`, writes its prompt to stderr). With `prefill` the line starts as
        that text and has readline's editing; other prompts read a plain terminal line
        (its own erase keys work), where a Ctrl-C always interrupts at once.
        """
        prompt = f"{text}: "
        if prefill is not None:
            edited = readline_input(prompt, prefill)
            if edited is not None:
                return edited.strip()
        click.echo(prompt, nl=False)
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:  # Ctrl-D
            raise KeyboardInterrupt
        return line.strip()

    def correction(self, suggestion: str) -> str | None:
        """The corrected command from $VISUAL/$EDITOR, else an inline prompt; None cancels."""
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
        if editor:
            text = (
                f"{suggestion}\n\n# Edit the command above, save and quit. Lines starting with #\n"
                "# are ignored; an empty command cancels the correction.\n"
            )
            try:
                result = click.edit(text, editor=editor, extension=".sh", require_save=False)
            except click.ClickException as exc:
                self.warn(f"  {exc.format_message()}: correction cancelled")
                return None
            lines = [
                ln.rstrip() for ln in (result or "").splitlines() if not ln.lstrip().startswith("#")
            ]
            command = "\n".join(lines).strip()
        elif "\n" in suggestion:  # one line of editing cannot hold it: show it, ask anew
            self.wrapped(suggestion, "  suggestion: ", "              ")
            self.echo("  (a command of several lines is easier to edit with $EDITOR set)")
            command = self.ask("  corrected command (empty cancels)")
        else:
            self.echo("  edit the command (Ctrl-U clears the line; empty cancels):")
            command = self.ask("  corrected command", prefill=suggestion)
        if not command:
            self.echo("  empty: correction cancelled")
            return None
        if command == suggestion:
            self.echo("  unchanged: correction cancelled (press a to accept it as it is)")
            return None
        return command

    # -- the loop --------------------------------------------------------------------

    def loop(self) -> None:
        from coachctl.engine import persist, views

        while True:
            session = persist.load(self.store, self.sid)
            step = session.current_step
            if session.status != "active" or step is None:
                self.finish(session)
                return
            state = views.state(self.store, session)
            trust = trust_of(self.store, session, step)
            self.draw(session, state, trust)
            choice = self.choose(session, state)
            if choice is None:
                return
            decision, kwargs = choice
            mark = events_mark(self.store)
            if not self.decide(session, step, decision, kwargs):
                continue
            levels = self.announce(mark, session, levels_of(trust.workflow))
            self.run_auto(session)
            self.announce(mark, session, levels)

    def announce(
        self, mark: str, session: Session, before: dict[str, str] | None
    ) -> dict[str, str] | None:
        """One line for each change the decision just caused, at the moment it happens: a
        correction adopted or a command learned (the events the decision wrote), a step or
        the workflow reaching AUTO or falling back (its levels now against `before`, which
        also catches a step's first change, before the index has recorded any level).
        Returns the levels now."""
        found, _ = events_since(self.store, mark)
        news = [
            e
            for e in found
            if e.get("session_id") == self.sid
            and e.get("event") == "suggestion_adopted"
            and (e.get("step_id"), e.get("command")) not in self.said
        ]
        wf = trust_of(self.store, session, {}).workflow
        after = levels_of(wf)
        if before is not None and after is not None and wf is not None:
            news.extend(level_changes(str(wf["workflow_id"]), before, after))
        for e in news:
            self.said.add((e.get("step_id"), e.get("command")))
            text = announcement(e)
            if text is not None:
                up = not text.startswith("fell back")
                sign = self.style("  ★ " if up else "  ▼ ", fg="green" if up else "yellow")
                self.wrapped(text, sign, "    ", bold=True)
        return after

    def draw(self, session: Session, state: Mapping[str, Any], trust: Trust) -> None:
        step = state["step"]
        total = state["progress"]["total"]
        self.echo()
        self.echo(self.style("-" * min(self.width - 1, 100), dim=True))
        name = session.workflow_name
        title = f"{session.workflow_id}" + (
            f" ({name})" if name and name != session.workflow_id else ""
        )
        self.wrapped(
            f"{title} · step {step['index'] + 1}/{total} · {session.mode} · session {session.id}",
            "",
            "  ",
            bold=True,
        )
        label = step["name"] if step["name"] == step["id"] else f"{step['name']}  [{step['id']}]"
        self.wrapped(label, "", "  ", bold=True)
        level = step["level"]
        level_text = self.style(level, fg=LEVEL_COLOURS.get(level), bold=True)
        if trust.step is not None:
            said = step_trust_text(trust.step)
        else:
            said = "no command yet: coachctl learns it from your reports"
        self.wrapped(f"· {said}", f"  level {level_text} ", "    ")
        if step.get("instructions"):
            self.wrapped(step["instructions"], "  instructions: ", "                ")
        observe = self.observing(session, step)
        if step.get("suggestion"):
            label = "  usually: $ " if observe else "  $ "
            self.wrapped(step["suggestion"], label, " " * len(label), fg="cyan", bold=True)
        status = step.get("status")
        if status == "failed":
            why = exit_text(_last_record(session), (session.current_step or {}).get("timeout"))
            self.echo(self.style(f"  ! the last attempt failed ({why})", fg="red", bold=True))
        elif status == "interrupted":
            self.echo(
                self.style("  ! interrupted while running: it may have run.", fg="red", bold=True)
            )
        elif status == "running":
            self.echo(self.style("  ... running in another process: wait, or press p", fg="yellow"))
        if observe:
            self.echo("  Do this step yourself, then press m to report what you ran (s skips it).")
        self.stats(state, trust.workflow)

    def stats(self, state: Mapping[str, Any], wf: Mapping[str, Any] | None, alone: int = 0) -> None:
        """The live stats line: the session's counts, then the workflow's trust."""
        self.wrapped(
            session_stats_text(state["stats"], alone), self.style("  stats ", dim=True), "        "
        )
        if wf is not None:
            self.wrapped(workflow_stats_text(wf), "        ", "        ")

    def observing(self, session: Session, step: Mapping[str, Any]) -> bool:
        return session.mode == "observation" or not step.get("suggestion")

    def choose(
        self, session: Session, state: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any]] | None:
        """Read keys until a decision is made (its options asked), or None to pause."""
        step = state["step"]
        allowed = (
            ["m", "s", "p", "?"]
            if self.observing(session, step)
            else ["a", "r", "c", "m", "s", "p", "?"]
        )
        words = AFTER.get(str(step.get("status")))
        while True:
            ch = self.key(allowed, words)
            if ch in ("p", "q"):
                self.echo("pause")
                self.pause(session, step)
                return None
            if ch == "?":
                self.echo("help")
                self.help()
                continue
            decision = KEYS[ch]
            self.echo(decision)
            kwargs: dict[str, Any] = {}
            if decision == "correct":
                command = self.correction(step["suggestion"])
                if command is None:
                    continue
                kwargs["correction"] = command
            elif decision == "reject":
                kwargs["feedback"] = self.ask("  why (optional, Enter to skip)") or None
            elif decision == "manual":
                kwargs["command"] = (
                    self.ask("  what did you run? (optional, Enter to skip)") or None
                )
            return decision, kwargs

    def help(self) -> None:
        self.echo("  keys (no Enter needed):")
        for k, text in HELP:
            self.wrapped(text, f"    {k:<7}", " " * 11)

    def pause(self, session: Session, step: Mapping[str, Any]) -> None:
        from coachctl.engine import lifecycle

        lifecycle.pause(self.store, self.sid, "paused from the panel")
        self.echo(
            f"paused at step {step['index'] + 1}/{len(session.steps)} ({step['id']}); "
            f"continue with: coachctl resume {self.sid}"
        )

    def decide(
        self, session: Session, step: Mapping[str, Any], decision: str, kwargs: dict[str, Any]
    ) -> bool:
        """Make the decision, streaming a command's output; False if it was refused."""
        from coachctl.engine import deciding
        from coachctl.errors import CoachctlError, Stopped

        to_run = kwargs.get("correction") if decision == "correct" else step.get("command")
        if decision in ("accept", "correct") and to_run:
            self.wrapped(str(to_run), self.style("  running: $ ", dim=True), "             ")
        out_stream = LineTracker()
        try:
            out = deciding.decide(
                self.store,
                self.sid,
                decision,
                step_guard=str(step["id"]),
                stream=out_stream,
                terminal=True,
                **kwargs,
            )
        except CoachctlError as exc:
            self.warn(f"coachctl: {exc}")
            return False
        out_stream.close()
        rec = out.record or {}
        if out.interrupted:
            with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
                self.echo()  # the terminal echoed ^C mid-line
                self.echo(self.style("  interrupted: outcome recorded, session paused", fg="red"))
            raise Stopped(out.exit_status - 128)
        if rec.get("executed"):
            took = _took(rec.get("duration"))
            if out.failed:
                why = exit_text(rec, step.get("timeout"))
                self.echo(self.style(f"  FAILED: {why}{took}", fg="red", bold=True))
            else:
                verb = "corrected and ran" if decision == "correct" else "ok"
                self.echo(self.style(f"  {verb}: exit 0{took}", fg="green"))
        else:
            word = DONE_WORDS.get(decision, decision)
            if decision == "manual" and rec.get("command"):
                word += f": {rec['command']}"
            self.wrapped(word, "  ", "    ")
        return True

    def run_auto(self, session: Session) -> None:
        """In mixed sessions, run the AUTO steps that follow the decision, one line each."""
        from coachctl.commands.run import progress_line
        from coachctl.engine import auto, persist

        fresh = persist.load(self.store, self.sid)
        if fresh.mode not in ("mixed", "auto") or fresh.status != "active":
            return
        # Like `drive`: one line per step; the output is kept in the session (`coachctl show`).
        out = auto.run_auto_steps(self.store, fresh, stream=None, progress=progress_line)
        if out.interrupted:
            from coachctl.errors import Stopped

            raise Stopped(out.exit_status - 128)

    def finish(self, session: Session) -> None:
        from coachctl.engine import views

        state = views.state(self.store, session)
        self.echo()
        done = state["progress"]
        if session.status == "completed":
            head = self.style(f"session {session.id} completed", fg="green", bold=True)
            self.echo(f"{head}: {done['total']}/{done['total']} steps · coachctl show {session.id}")
        else:
            self.echo(f"session {session.id} is {session.status}")
            if session.status == "paused":
                self.echo(f"continue with: coachctl resume {session.id}")
        wf: dict[str, Any] | None = trust_of(self.store, session, {}).workflow
        from coachctl.commands._common import ran_alone

        self.stats(state, wf, ran_alone(session.decisions))


def _took(duration: Any) -> str:
    return f" in {duration:.1f}s" if isinstance(duration, (int, float)) else ""


def exit_text(rec: Mapping[str, Any], timeout: Any = None) -> str:
    """`exit 3`, `timed out after 3 s`, `stopped by Ctrl-C`, `killed by SIGKILL`."""
    from coachctl.engine.outcome import outcome_text

    seconds = float(timeout) if isinstance(timeout, (int, float)) else None
    return outcome_text({"executed": True, **rec}, seconds) or "not run"


def _last_record(session: Session) -> Mapping[str, Any]:
    step_id = (session.current_step or {}).get("id")
    for d in reversed(session.decisions):
        if d.get("step_id") == step_id:
            record: Mapping[str, Any] = d
            return record
    return {}
