"""Where each `{{ placeholder }}` of a `run` command sits in its shell syntax: a security check.

A value is filled in with `shlex.quote`, which makes it exactly one literal word only where the
shell reads a plain word. Elsewhere it can break out: inside double quotes `'$(cmd)'` still runs
cmd, and in a comment a newline in the value ends the comment. So a `run` template whose
placeholder sits anywhere but in a plain word is refused when the workflow is loaded.

The shell's grammar that matters here is the table `CONTEXTS` below: for each context (plain
word, single quotes, `$(...)`, ...) where a placeholder may not go, what opens a nested context,
what ends it, and what makes the rest of the command unknowable (`Lose`: a here-document, a
`$'...'` string that bash and dash read differently). The scanner walks the command once, with
a stack of contexts, and errs on the side of refusing. It assumes valid `sh` syntax: a POSIX
shell (what `shell=True` runs) exits on a syntax error, while `bash -c` would resume at the
next line, inside a value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Stands for one placeholder while scanning (a NUL in `run` is refused before).
MARK = "\0"
#: After one of these, `#` starts a comment; inside a word it is a plain character.
WORD_BREAKS = " \t\n;&|()<>"
#: A backslash-newline after these is joined too: the token may go on (`$(` → `$((`, `<<<`).
JOIN_THROUGH = ("$(", "<<")


@dataclass(frozen=True)
class Push:
    """Enter a nested context; `depth` counts the open brackets it starts with (`$((` is 2)."""

    context: str
    depth: int = 1


@dataclass(frozen=True)
class Lose:
    """From here on the scanner cannot follow the shell: any later placeholder is refused."""

    reason: str


@dataclass(frozen=True)
class Rule:
    """`token` at the scan position does `action`.

    `word_start`: only where a word starts (after one of WORD_BREAKS), as for `#`.
    `literal_after`: the context it opens reads a backslash as a plain character, so a
    backslash-newline right after the token is not a line continuation.
    """

    token: str
    action: Push | Lose
    word_start: bool = False
    literal_after: bool = False


@dataclass(frozen=True)
class Context:
    """One kind of place in shell syntax.

    place: how a placeholder here is described when refused; None where it is a plain word.
    joins_lines: a backslash-newline vanishes here before the shell reads tokens.
    escapes: a backslash makes the next character part of a word.
    end: the character that closes it; nest: (open, close) brackets counted until depth 0.
    """

    place: str | None
    joins_lines: bool
    escapes: bool
    end: str | None = None
    nest: tuple[str, str] | None = None
    rules: tuple[Rule, ...] = ()


#: What opens a substitution, in a plain word and inside double quotes alike.
_SUBSTITUTIONS = (
    Rule("`", Push("backquotes")),
    Rule("$((", Push("arithmetic", 2)),
    Rule("$(", Push("command")),
    Rule("${", Push("parameter")),
)

#: What the shell reads specially where a word may start (top level and inside `$(...)`).
_WORDS = (
    Rule("'", Push("single"), literal_after=True),
    Rule('"', Push("double")),
    # bash reads $'...' with backslash escapes, dash as `$` then '...': unknowable.
    Rule("$'", Lose("after a $'...' string")),
    Rule('$"', Push("double")),
    *_SUBSTITUTIONS,
    Rule("$[", Lose("after a $[...] expression")),
    Rule("((", Push("arithmetic", 2)),
    # Also bash's <<<, which dash reads as a here-document.
    Rule("<<", Lose("after a here-document (<<)")),
    Rule("#", Push("comment"), word_start=True, literal_after=True),
)

_HOLDING = Lose("after a ${...} holding quotes or commands")

CONTEXTS: dict[str, Context] = {
    "top": Context(None, joins_lines=True, escapes=True, rules=_WORDS),
    "command": Context(None, joins_lines=True, escapes=True, nest=("(", ")"), rules=_WORDS),
    "single": Context("inside single quotes", joins_lines=False, escapes=False, end="'"),
    "double": Context(
        "inside double quotes", joins_lines=True, escapes=True, end='"', rules=_SUBSTITUTIONS
    ),
    "backquotes": Context("inside backquotes", joins_lines=False, escapes=True, end="`"),
    "comment": Context("in a comment", joins_lines=False, escapes=False, end="\n"),
    "arithmetic": Context(
        "inside an arithmetic expression", joins_lines=True, escapes=False, nest=("(", ")")
    ),
    "parameter": Context(
        "inside ${...}",
        joins_lines=True,
        escapes=True,
        nest=("{", "}"),
        rules=(Rule("'", _HOLDING), Rule('"', _HOLDING), Rule("`", _HOLDING), Rule("$(", _HOLDING)),
    ),
}


#: The same rules indexed by their first character (derived from CONTEXTS, for speed).
_BY_FIRST: dict[str, dict[str, tuple[Rule, ...]]] = {
    name: {
        first: tuple(r for r in context.rules if r.token[0] == first)
        for first in {r.token[0] for r in context.rules}
    }
    for name, context in CONTEXTS.items()
}


def unsafe_placeholder(template: str, placeholder: re.Pattern[str]) -> str | None:
    """Why a placeholder in `template` would not be safely quoted, or None when all are.

    `placeholder` finds them; its group 1 is the variable's name, used in the message.
    """
    if MARK in template:
        return "contains a NUL byte"
    names = [m.group(1) for m in placeholder.finditer(template)]
    if not names:
        return None
    return _scan(placeholder.sub(MARK, template), names)


def refusal(name: str, where: str) -> str:
    return (
        f"{{{{ {name} }}}} is {where}, where shell quoting cannot protect its value; "
        f'use it as a plain word (it is quoted for you), e.g. echo "Hello, "{{{{ {name} }}}}'
    )


def _scan(text: str, names: list[str]) -> str | None:
    stack: list[tuple[str, int]] = [("top", 1)]  # (context name, brackets still open)
    seen = 0  # placeholders passed so far: names[seen] is the next one
    prev = "\n"  # the last character read, "x" after an escaped one or a placeholder
    continued = "\\\n" in text  # any line continuation left to join (most commands have none)
    i = 0
    while i < len(text):
        name, depth = stack[-1]
        context = CONTEXTS[name]
        candidates = _BY_FIRST[name].get(text[i], ())
        c = text[i]
        if c == MARK:
            if context.place is not None:
                return refusal(names[seen], context.place)
            seen += 1
            prev = "x"
            i += 1
            continue
        if continued and context.joins_lines:
            if text.startswith("\\\n", i):  # a line continuation: gone before tokens are read
                text = text[:i] + text[i + 2 :]
                continued = text.find("\\\n", i) >= 0  # none left before i
                continue
            if c != "\\" and not _opens_literal(candidates, c, prev):
                # Join what follows, so `$\<newline>{{ v }}` is seen as `${{ v }}`.
                before = len(text)
                text = _join_lines(text, i + 1)
                if text.startswith(JOIN_THROUGH, i):
                    text = _join_lines(text, i + 2)
                if len(text) != before:
                    continued = text.find("\\\n", i) >= 0
        if text[i + 1 : i + 2] == MARK and c in "\\$":
            where = context.place or ("after a backslash" if c == "\\" else "right after a $")
            return refusal(names[seen], where)
        step = 1
        rule = _rule_at(candidates, text, i, prev) if candidates else None
        if context.escapes and c == "\\":
            step = 2  # the escaped character is part of a word: no comment starts after it
        elif c == context.end:
            stack.pop()
        elif rule is not None and isinstance(rule.action, Lose):
            return None if MARK not in text[i:] else refusal(names[seen], rule.action.reason)
        elif rule is not None and isinstance(rule.action, Push):
            stack.append((rule.action.context, rule.action.depth))
            step = len(rule.token)
        elif context.nest is not None and c in context.nest:
            depth += 1 if c == context.nest[0] else -1
            if depth == 0:
                stack.pop()
            else:
                stack[-1] = (name, depth)
        prev = "x" if step == 2 and c == "\\" else text[min(i + step, len(text)) - 1]
        i += step
    return None


def _rule_at(rules: tuple[Rule, ...], text: str, i: int, prev: str) -> Rule | None:
    """The first of `rules` whose token starts at `i` (the table's order decides)."""
    for rule in rules:
        if text.startswith(rule.token, i) and (not rule.word_start or prev in WORD_BREAKS):
            return rule
    return None


def _opens_literal(rules: tuple[Rule, ...], c: str, prev: str) -> bool:
    """`c` opens a context (single quotes, a comment) where a backslash is just a character."""
    return any(
        r.literal_after and r.token == c and (not r.word_start or prev in WORD_BREAKS)
        for r in rules
    )


def _join_lines(text: str, at: int) -> str:
    """Remove every backslash-newline starting at `at`."""
    while text.startswith("\\\n", at):
        text = text[:at] + text[at + 2 :]
    return text
