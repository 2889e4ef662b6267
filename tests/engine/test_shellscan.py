"""The shell-context scanner, table by table: each context, each rule, and the table itself.

The end-to-end proofs (a real shell never runs a second command) are in
tests/security/test_injection.py and tests/engine/test_workflow.py; these pin the grammar.
"""

from __future__ import annotations

import pytest

from coachctl.engine.shellscan import CONTEXTS, WORD_BREAKS, Lose, Push, unsafe_placeholder
from coachctl.engine.templates import TEMPLATE_RE


def scan(template: str) -> str | None:
    return unsafe_placeholder(template, TEMPLATE_RE)


def where(template: str) -> str | None:
    """The place named in the refusal (None when accepted)."""
    problem = scan(template)
    if problem is None:
        return None
    head, sep, _ = problem.partition(", where shell quoting cannot protect its value")
    assert sep, problem
    return head.split(" is ", 1)[1]


# --------------------------------------------------------------------------- the table itself


def test_every_push_goes_to_a_known_context() -> None:
    for name, context in CONTEXTS.items():
        for rule in context.rules:
            if isinstance(rule.action, Push):
                assert rule.action.context in CONTEXTS, (name, rule)
                assert rule.action.depth >= 1


def test_only_plain_words_accept_a_placeholder() -> None:
    words = {name for name, c in CONTEXTS.items() if c.place is None}
    assert words == {"top", "command"}


def test_every_nested_context_can_end() -> None:
    for name, context in CONTEXTS.items():
        if name != "top":
            assert (context.end is None) != (context.nest is None), name


def test_a_longer_token_comes_before_its_prefix() -> None:
    """Otherwise it could never match (`$((` after `$(` would read as a command)."""
    for name, context in CONTEXTS.items():
        tokens = [r.token for r in context.rules]
        for i, token in enumerate(tokens):
            for later in tokens[i + 1 :]:
                assert not (later.startswith(token) and later != token), (name, token, later)


def test_literal_contexts_neither_join_lines_nor_escape() -> None:
    for context in CONTEXTS.values():
        for rule in context.rules:
            if rule.literal_after:
                assert isinstance(rule.action, Push)
                target = CONTEXTS[rule.action.context]
                assert not target.joins_lines and not target.escapes, rule


# --------------------------------------------------------------------------- each context

#: context -> (text that opens it from a plain word, text that closes it again)
OPEN_CLOSE = {
    "single": ("echo '", "'"),
    "double": ('echo "', '"'),
    "backquotes": ("echo `", "`"),
    "comment": ("echo ok #", "\n"),
    "arithmetic": ("echo $((1+", "))"),
    "parameter": ("echo ${x:-", "}"),
    "command": ("echo $(echo ", ")"),
}


def test_the_examples_cover_every_nested_context() -> None:
    assert set(OPEN_CLOSE) == set(CONTEXTS) - {"top"}


@pytest.mark.parametrize("name", sorted(OPEN_CLOSE))
def test_a_placeholder_inside_each_context(name: str) -> None:
    opener, _ = OPEN_CLOSE[name]
    assert where(f"{opener}{{{{ v }}}}") == CONTEXTS[name].place


@pytest.mark.parametrize("name", sorted(OPEN_CLOSE))
def test_a_placeholder_after_each_context_closes(name: str) -> None:
    opener, closer = OPEN_CLOSE[name]
    assert scan(f"{opener}x{closer} {{{{ v }}}}") is None


@pytest.mark.parametrize(
    ("template", "place"),
    [
        ('echo "$(echo {{ v }})"', None),  # a command inside double quotes: a plain word again
        ('echo "`echo {{ v }}`"', "inside backquotes"),
        ('echo "${x:-{{ v }}}"', "inside ${...}"),
        ('echo "$(( {{ v }} ))"', "inside an arithmetic expression"),
        ("echo $(echo '{{ v }}')", "inside single quotes"),
        ("echo $( (cd /; echo) ) {{ v }}", None),  # brackets counted inside $(...)
        ("echo $( (cd /; {{ v }}) )", None),
        ("echo $(( (1) + {{ v }} ))", "inside an arithmetic expression"),
        ("echo $(( (1) )) {{ v }}", None),
        ("(( x = 1 )) && echo {{ v }}", None),
        ("echo ${a:-${b}} {{ v }}", None),
        ("echo ${a:-${b}{{ v }}}", "inside ${...}"),
        ("echo $(echo ) {{ v }}", None),
    ],
)
def test_nesting(template: str, place: str | None) -> None:
    assert where(template) == place


# --------------------------------------------------------------------------- each rule


def lose_rules() -> list[tuple[str, str, str]]:
    return [
        (name, rule.token, rule.action.reason)
        for name, context in CONTEXTS.items()
        for rule in context.rules
        if isinstance(rule.action, Lose)
    ]


#: A prefix that reaches each context with a Lose rule, so the rule can be tried there.
REACH = {"top": "echo ", "command": "echo $(echo ", "parameter": "echo ${x:-"}


@pytest.mark.parametrize(("context", "token", "reason"), lose_rules())
def test_after_a_lose_rule_every_placeholder_is_refused(
    context: str, token: str, reason: str
) -> None:
    prefix = REACH[context]
    assert where(f"{prefix}{token}x)}}' \" ` \n )}} ; echo {{{{ v }}}}") == reason


@pytest.mark.parametrize(("context", "token", "reason"), lose_rules())
def test_a_lose_rule_without_a_placeholder_after_it_is_fine(
    context: str, token: str, reason: str
) -> None:
    assert scan(f"echo {{{{ v }}}}; {REACH[context]}{token}x") is None


def test_comments_start_only_where_a_word_starts() -> None:
    assert scan("echo a#{{ v }}") is None
    for brk in WORD_BREAKS:
        if brk != "\n":
            assert where(f"echo x{brk}#{{{{ v }}}}") == "in a comment", repr(brk)


def test_a_backslash_escapes_one_character() -> None:
    assert scan("echo \\' {{ v }}") is None  # not a quote
    assert scan('echo \\" {{ v }}') is None
    assert scan("echo \\# {{ v }}") is None  # not a comment
    assert where("echo \\{{ v }}") == "after a backslash"
    assert where("echo ${{ v }}") == "right after a $"


# --------------------------------------------------------------------------- line continuations


@pytest.mark.parametrize(
    ("template", "place"),
    [
        ("echo $\\\n{{ v }}", "right after a $"),
        ("echo $\\\n(\\\n( {{ v }} ))", "inside an arithmetic expression"),  # `$((`
        ("echo <\\\n<EOF\n{{ v }}\nEOF", "after a here-document (<<)"),
        ("echo a \\\n# {{ v }}", "in a comment"),  # the continuation makes `#` start a word
        ("echo 'a\\\n' {{ v }}", None),  # inside single quotes a backslash is a character
        ("echo # a\\\n{{ v }}", None),  # a comment ends at the newline, backslash or not
        ("docker run \\\n  --name {{ v }} \\\n  image", None),
    ],
)
def test_line_continuations(template: str, place: str | None) -> None:
    assert where(template) == place


# --------------------------------------------------------------------------- the message


def test_the_refusal_names_the_placeholder_that_is_unsafe() -> None:
    problem = scan("echo {{ a }} '{{ b }}' {{ c }}")
    assert problem is not None and problem.startswith("{{ b }} is inside single quotes, ")
    assert 'e.g. echo "Hello, "{{ b }}' in problem


def test_a_nul_is_refused_and_no_placeholder_means_nothing_to_check() -> None:
    assert scan("echo {{ v }}\0") == "contains a NUL byte"
    assert scan("echo '$(( unbalanced `") is None
