"""Workflow variables and templates: `--var` values, and `{{ name }}` filled in safely.

Kept together because they share one rule: a value goes into a `run` as exactly one shell word
(`shlex.quote`), or the template is refused. Pure engine code: raises UsageError, prints nothing.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from coachctl.engine.shellscan import unsafe_placeholder
from coachctl.errors import UsageError

if TYPE_CHECKING:
    from coachctl.engine.workflow import Workflow

#: Variable names: the same shape `--var KEY=VALUE` accepts and `{{ name }}` can reference.
VAR_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: `{{ name }}` with optional whitespace inside the braces.
TEMPLATE_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def parse_var_assignments(items: Sequence[str]) -> dict[str, str]:
    """`--var KEY=VALUE` options as a dict; split on the first `=`, the last one for a key wins."""
    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not VAR_NAME_RE.match(key):
            raise UsageError(f"invalid --var '{item}': expected KEY=VALUE")
        result[key] = value
    return result


def resolve_variables(workflow: Workflow, overrides: Mapping[str, str]) -> dict[str, str]:
    """Defaults overridden by `--var`; refuses unknown names and leaves no required one empty."""
    unknown = [name for name in overrides if name not in workflow.variables]
    if unknown:
        declared = ", ".join(workflow.variables) or "none"
        plural = "s" if len(unknown) > 1 else ""
        raise UsageError(f"unknown variable{plural}: {', '.join(unknown)} (declared: {declared})")
    values: dict[str, str] = {}
    missing: list[str] = []
    for name, default in workflow.variables.items():
        value = overrides.get(name, default)
        if value is None:
            missing.append(name)
        else:
            values[name] = value
    if missing:
        plural = "s" if len(missing) > 1 else ""
        hint = " ".join(f"--var {name}=VALUE" for name in missing)
        raise UsageError(f"missing required variable{plural}: {', '.join(missing)} (pass {hint})")
    return values


def template_variables(template: str) -> list[str]:
    """Names used as `{{ name }}`, in order of first use, without duplicates."""
    return list(dict.fromkeys(m.group(1) for m in TEMPLATE_RE.finditer(template)))


def _render(template: str, variables: Mapping[str, str], quote: Callable[[str, str], str]) -> str:
    """One pass: a value that itself contains `{{ other }}` is never expanded again."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise UsageError(f"undefined variable: {name}")
        return quote(name, variables[name])

    return TEMPLATE_RE.sub(substitute, template)


def _shell_word(name: str, value: str) -> str:
    if "\0" in value:
        raise UsageError(f"variable {name} contains a NUL byte, which a shell argument cannot hold")
    return shlex.quote(value)


def render_run(template: str, variables: Mapping[str, str]) -> str:
    """Fill in a `run` template; every value becomes exactly one shell word.

    Values are `shlex.quote`d, which is only safe where the shell reads a plain word: a
    placeholder inside quotes, a comment, `$((...))` or a here-document is refused (UsageError)
    rather than rendered into something a value could break out of.
    """
    problem = unsafe_placeholder(template, TEMPLATE_RE)
    if problem is not None:
        raise UsageError(problem)
    return _render(template, variables, _shell_word)


def render_text(template: str, variables: Mapping[str, str]) -> str:
    """Fill in `instructions` for a person to read: values go in as they are."""
    return _render(template, variables, lambda _name, value: value)
