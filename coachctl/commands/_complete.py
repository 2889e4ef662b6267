"""Shell completion (Click's protocol): session ids, workflows, step ids.

Completion runs on every Tab, so it must be quick: it never builds or refreshes the index.
Session ids come from the listing of the sessions folder (names only), newest first; only
the few shown are opened, for their workflow and status. Nothing here may print or raise:
a broken home simply completes nothing.

Kept cheap to import (`decide` names these functions): click's completion module and the
engine are imported only when a shell asks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

#: Sessions opened for their help text; the rest of the matches complete without it.
DESCRIBED = 20


def _home(ctx: click.Context) -> Path:
    """The home the command line names (--home, else COACHCTL_HOME, else the cwd).

    During completion the root callback does not run, so read the parsed root option.
    """
    from coachctl.engine.home import resolve_home

    home = ctx.find_root().params.get("home")
    return resolve_home(home if isinstance(home, str) else None)


def _store(ctx: click.Context) -> Any:
    """The store the command line names (--store, COACHCTL_STORE, coachctl.yaml, else the
    home's sessions/), as the command itself would open it."""
    from coachctl.engine.stores import open_store
    from coachctl.store.selection import store_url

    home = _home(ctx)
    option = ctx.find_root().params.get("store_option")
    url = store_url(option if isinstance(option, str) else None, home)
    return open_store(url, home, lock_timeout=0.5)


def sessions(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Session ids starting with `incomplete` (or whose part after `-` does), newest first,
    each with its workflow and status as help."""
    from click.shell_completion import CompletionItem

    try:
        store = _store(ctx)
        ids = sorted(store.list_ids(), reverse=True)
    except Exception:
        return []
    found = [i for i in ids if i.startswith(incomplete)]
    if not found and incomplete:
        found = [i for i in ids if i.rsplit("-", 1)[-1].startswith(incomplete)]
    items = []
    for n, sid in enumerate(found):
        help_text = None
        if n < DESCRIBED:
            try:
                help_text = _describe(store.load(sid))
            except Exception:
                help_text = None
        items.append(CompletionItem(sid, help=help_text))
    return items


def _describe(raw: dict[str, Any]) -> str:
    """`hello · paused at clock`: what a person needs to pick the right session."""
    text = f"{raw.get('workflow_id')} · {raw.get('status')}"
    steps, cursor = raw.get("steps") or [], int(raw.get("cursor") or 0)
    if raw.get("status") in ("active", "paused", "failed") and cursor < len(steps):
        text += f" at {steps[cursor].get('id')}"
    return text


def workflows(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Workflow ids of the home; file paths once the word looks like one (`/`, `.`)."""
    from click.shell_completion import CompletionItem

    if "/" in incomplete or incomplete.startswith(".") or incomplete.endswith((".yaml", ".yml")):
        return [CompletionItem(incomplete, type="file")]
    items: list[CompletionItem] = []
    try:
        folder = _home(ctx) / "workflows"
        names = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
    except Exception:
        names = []
    for path in names:
        if path.stem.startswith(incomplete):
            items.append(CompletionItem(path.stem, help=_first_name(path)))
    if not items:
        return [CompletionItem(incomplete, type="file")]
    return items


def _first_name(path: Path) -> str | None:
    """The workflow's `name:` line, read without YAML (a quick look at the top of the file)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            for _ in range(40):
                line = f.readline()
                if not line:
                    break
                if line.startswith("name:"):
                    return line[5:].strip().strip("'\"") or None
    except OSError:
        return None
    return None


def _earlier(ctx: click.Context, name: str) -> str | None:
    """The first argument, as parsed; while an option still waits for its value, Click's
    resilient parsing leaves the arguments unparsed in `ctx.args`: the first is it."""
    value = ctx.params.get(name)
    if isinstance(value, str):
        return value
    return ctx.args[0] if ctx.args else None


def _step_items(steps: list[dict[str, Any]], incomplete: str) -> list[CompletionItem]:
    from click.shell_completion import CompletionItem

    return [
        CompletionItem(str(s["id"]), help=str(s.get("name") or "") or None)
        for s in steps
        if str(s.get("id", "")).startswith(incomplete)
    ]


def workflow_steps(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Step ids of the workflow named earlier on the command line (`run W --start-at …`)."""
    ref = _earlier(ctx, "workflow")
    if ref is None:
        return []
    try:
        from coachctl.engine.workflow_files import resolve_workflow_path
        from coachctl.engine.workflow_load import load_workflow

        wf = load_workflow(resolve_workflow_path(ref, _home(ctx)))
        steps = [{"id": s.id, "name": s.name} for s in wf.steps]
    except Exception:
        return []
    return _step_items(steps, incomplete)


def session_steps(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Step ids of the session named earlier (`decide SESSION … --step …`), its current
    step first."""
    ref = _earlier(ctx, "session")
    if ref is None:
        return []
    try:
        store = _store(ctx)
        raw = store.load(store.resolve(ref))
        steps = list(raw.get("steps", []))
        cursor = int(raw.get("cursor", 0))
    except Exception:
        return []
    ordered = steps[cursor:] + steps[:cursor]
    return _step_items(ordered, incomplete)


def choices(*values: str) -> Any:
    """A completer for an option whose values a command checks itself (`--by`)."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
        return [v for v in values if v.startswith(incomplete)]

    return complete
