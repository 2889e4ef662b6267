"""Workflow files: every invalid file is refused with `PATH:LINE:`, values never inject commands."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coachctl.engine.templates import (
    parse_var_assignments,
    render_run,
    render_text,
    resolve_variables,
    template_variables,
)
from coachctl.engine.workflow import ID_RE, Coaching, Step, Workflow
from coachctl.engine.workflow_files import find_workflows, resolve_workflow_path
from coachctl.engine.workflow_load import load_workflow, slugify
from coachctl.engine.workflow_yaml import MAX_WORKFLOW_BYTES
from coachctl.errors import UsageError, WorkflowError

CONTRACT_EXAMPLE = """\
id: rotate-certs              # optional; default: the file's stem
name: Rotate TLS certificates
description: Monthly rotation for the edge proxies.
variables:                    # defaults; --var KEY=VALUE overrides; null = required
  domain: example.com
  env: null
coaching:                     # every key optional; defaults shown
  threshold: 0.85             # acceptance rate needed for AUTO
  min_decisions: 20           # decisions on a step's current suggestion before it can be AUTO
  window: 50                  # only a step's most recent N decisions count
  strict: true                # the 95% Wilson lower bound must reach the threshold too;
                              # false: the rate alone (the plain 85% rule)
  min_observations: 3         # observations needed to learn a command for a step without `run`
  adopt_after: 2              # the same correction this many times becomes the suggestion
steps:
  - id: fetch                 # unique; default: a slug of name
    name: Fetch the new certificate
    run: certbot certonly -d {{ domain }}     # the suggestion: a shell command
    timeout: 600              # seconds
  - id: reload
    name: Reload the proxies
    run: systemctl reload haproxy
    max_level: COACHING       # a ceiling: this step never runs without a person
  - id: verify
    name: Check the certificate in a browser
    instructions: Open https://{{ domain }} and check the expiry date.   # a manual step
"""


def write(tmp_path: Path, text: str, name: str = "wf.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def make_workflow(variables: dict[str, str | None]) -> Workflow:
    step = Step("s", "s", "echo", None, None, None)
    return Workflow("w", "w", "", variables, Coaching(), (step,), "w.yaml")


# --------------------------------------------------------------------------- valid files


def test_contract_example_loads(tmp_path: Path) -> None:
    path = write(tmp_path, CONTRACT_EXAMPLE, "anything.yaml")
    wf = load_workflow(path)
    assert wf == Workflow(
        id="rotate-certs",
        name="Rotate TLS certificates",
        description="Monthly rotation for the edge proxies.",
        variables={"domain": "example.com", "env": None},
        coaching=Coaching(),
        steps=(
            Step(
                "fetch",
                "Fetch the new certificate",
                "certbot certonly -d {{ domain }}",
                None,
                600.0,
                None,
                16,
            ),
            Step(
                "reload",
                "Reload the proxies",
                "systemctl reload haproxy",
                None,
                None,
                "COACHING",
                20,
            ),
            Step(
                "verify",
                "Check the certificate in a browser",
                None,
                "Open https://{{ domain }} and check the expiry date.",
                None,
                None,
                24,
            ),
        ),
        path=str(path),
    )


def test_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        steps:
          - name: Fetch the new certificate
            run: echo hi
          - id: verify
            instructions: Look at it.
        """,
        "my-flow.yml",
    )
    wf = load_workflow(str(path))
    assert (wf.id, wf.name, wf.description, wf.variables) == ("my-flow", "my-flow", "", {})
    assert wf.coaching == Coaching(0.85, 20, 50, True, 3, 2)
    assert wf.steps[0].id == "fetch-the-new-certificate"
    assert wf.steps[0].name == "Fetch the new certificate"
    assert wf.steps[1].name == "verify"
    assert wf.steps[0].timeout is None and wf.steps[0].max_level is None
    assert wf.path == str(path)


def test_scalar_variables_kept_as_written(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        variables: {a: 1.10, b: 8080, c: yes, d: "quoted", e: ~, f: '', g: 2024-01-02}
        steps: [{id: s, run: "echo {{ a }}{{b}}{{  c  }}"}]
        """,
    )
    wf = load_workflow(path)
    assert wf.variables == {
        "a": "1.10",
        "b": "8080",
        "c": "yes",
        "d": "quoted",
        "e": None,
        "f": "",
        "g": "2024-01-02",
    }


def test_coaching_values_and_roundtrip(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        coaching: {threshold: 1, min_decisions: 5, window: 7, strict: false,
                   min_observations: 1, adopt_after: 4}
        steps: [{id: s, run: x, timeout: 1.5}]
        """,
    )
    wf = load_workflow(path)
    assert wf.coaching == Coaching(1.0, 5, 7, False, 1, 4)
    assert Coaching.from_dict({**wf.coaching.to_dict(), "future": 1}) == wf.coaching
    assert Coaching.from_dict({}) == Coaching()
    step = wf.steps[0]
    assert step.timeout == 1.5
    assert Step.from_dict(step.to_dict()) == step
    assert Step.from_dict({"id": "x"}) == Step("x", "x", None, None, None, None, 0)


def test_trust_scope_and_step_coaching(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        coaching: {threshold: 0.9, trust_scope: [env, region]}
        variables: {region: eu, env: null}
        steps:
          - {id: build, run: make}
          - id: deploy
            run: echo {{ env }}
            coaching: {threshold: 0.95, min_decisions: 30, window: 60, strict: false}
          - id: notes
            run: echo notes
            coaching: {threshold: ~}
        """,
    )
    wf = load_workflow(path)
    assert wf.coaching.trust_scope == ("env", "region")  # declared after coaching: still fine
    assert wf.coaching.threshold == 0.9
    assert wf.coaching.to_dict()["trust_scope"] == ["env", "region"]
    assert Coaching.from_dict(wf.coaching.to_dict()) == wf.coaching
    build, deploy, notes = wf.steps
    assert build.coaching == {} and "coaching" not in build.to_dict()
    own = {"threshold": 0.95, "min_decisions": 30, "window": 60, "strict": False}
    assert deploy.coaching == own
    assert Step.from_dict(deploy.to_dict()) == deploy
    assert notes.coaching == {}  # a null key is the workflow's value


def test_coaching_counts_at_the_bound(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "coaching: {window: 10000, min_decisions: 10000}\n"
        "steps: [{id: a, run: x, coaching: {window: 10000}}]\n",
    )
    wf = load_workflow(path)
    assert wf.coaching.window == 10000 and wf.steps[0].coaching == {"window": 10000}


def test_numeric_ids_accepted(tmp_path: Path) -> None:
    wf = load_workflow(write(tmp_path, "id: 2024\nsteps: [{id: 1, name: 2, run: x}]\n"))
    assert (wf.id, wf.steps[0].id, wf.steps[0].name) == ("2024", "1", "2")


# --------------------------------------------------------------------------- invalid files

INVALID = [
    pytest.param("steps: [a\n", 2, "invalid YAML", id="yaml-syntax"),
    pytest.param("a: 1\n  b: 2\n", 2, "invalid YAML", id="yaml-bad-indent"),
    pytest.param("- a\n- b\n", 1, "the workflow must be a mapping, not a list", id="not-mapping"),
    pytest.param("just text\n", 1, "the workflow must be a mapping, not a string", id="scalar"),
    pytest.param("", 1, "empty document", id="empty"),
    pytest.param("# only a comment\n", 1, "empty document", id="only-comment"),
    pytest.param(
        "name: x\nsteps: [{id: a, run: x}]\nstepz: []\n",
        3,
        "unknown key 'stepz' in the workflow (allowed: id, name, description, variables, "
        "coaching, steps)",
        id="unknown-top",
    ),
    pytest.param(
        "coaching:\n  threshold: 0.9\n  treshold: 1\nsteps: [{id: a, run: x}]\n",
        3,
        "unknown key 'treshold' in coaching (allowed: threshold, min_decisions, window, strict, "
        "trust_scope, min_observations, adopt_after)",
        id="unknown-coaching",
    ),
    pytest.param(
        "steps:\n  - id: a\n    run: x\n    command: y\n",
        4,
        "unknown key 'command' in step 1 (allowed: id, name, run, instructions, timeout, "
        "max_level, coaching)",
        id="unknown-step",
    ),
    pytest.param(
        "steps:\n  - id: a\n    run: x\n    run: y\n",
        4,
        "duplicate key 'run' in step 1 (first on line 3)",
        id="duplicate-key",
    ),
    pytest.param(
        "base: &b {run: x}\nsteps:\n  - <<: *b\n    id: a\n",
        1,
        "unknown key 'base'",
        id="anchor-key",
    ),
    pytest.param(
        "steps:\n  - <<: {run: x}\n    id: a\n",
        2,
        "merge keys (<<) are not supported in step 1",
        id="merge-key",
    ),
    pytest.param("steps: {a: 1}\n", 1, "steps must be a list, not a mapping", id="steps-map"),
    pytest.param("steps: run\n", 1, "steps must be a list, not a string", id="steps-str"),
    pytest.param("name: x\nsteps: []\n", 2, "no steps (`steps:` is empty)", id="steps-empty"),
    pytest.param("name: x\nsteps:\n", 2, "no steps (`steps:` is empty)", id="steps-null"),
    pytest.param("name: x\n", 1, "no steps (add a `steps:` list)", id="no-steps"),
    pytest.param(
        "steps:\n  - echo hi\n", 2, "step 1 must be a mapping, not a string", id="step-str"
    ),
    pytest.param(
        "steps:\n  - id: a\n    run: x\n    timeout: soon\n",
        4,
        "timeout of step 1 must be a number, not a string",
        id="timeout-str",
    ),
    pytest.param(
        "steps:\n  - id: a\n    run: x\n    timeout: 0\n",
        4,
        "timeout of step 1 must be > 0 seconds, not 0",
        id="timeout-zero",
    ),
    pytest.param(
        "steps:\n  - id: a\n    run: x\n    timeout: .inf\n",
        4,
        "timeout of step 1 must be a finite number, not .inf",
        id="timeout-inf",
    ),
    pytest.param(
        "coaching:\n  threshold: 2\nsteps: [{id: a, run: x}]\n",
        2,
        "coaching.threshold must be > 0 and <= 1, not 2",
        id="threshold-2",
    ),
    pytest.param(
        "coaching:\n  threshold: 0\nsteps: [{id: a, run: x}]\n",
        2,
        "coaching.threshold must be > 0 and <= 1, not 0",
        id="threshold-0",
    ),
    pytest.param(
        "coaching:\n  strict: 'yes'\nsteps: [{id: a, run: x}]\n",
        2,
        "coaching.strict must be true or false, not a string",
        id="strict-string",
    ),
    pytest.param(
        "coaching:\n  min_decisions: 0\nsteps: [{id: a, run: x}]\n",
        2,
        "coaching.min_decisions must be an integer >= 1, not 0",
        id="min-decisions-0",
    ),
    pytest.param(
        "coaching:\n  window: true\nsteps: [{id: a, run: x}]\n",
        2,
        "coaching.window must be an integer, not a boolean",
        id="window-bool",
    ),
    pytest.param(
        "coaching:\n  adopt_after: 2.5\nsteps: [{id: a, run: x}]\n",
        2,
        "coaching.adopt_after must be an integer, not a number",
        id="adopt-float",
    ),
    pytest.param(
        "coaching:\n  window: " + "9" * 5000 + "\nsteps: [{id: a, run: x}]\n",
        2,
        "coaching.window: invalid value",
        id="int-too-long",
    ),
    pytest.param(  # issue 10: a 2^63 window passed validate, then broke stats for the home
        "coaching:\n  window: 9223372036854775808\nsteps: [{id: a, run: x}]\n",
        2,
        "coaching.window must be an integer from 1 to 10000, not 9223372036854775808",
        id="window-2-63",
    ),
    pytest.param(
        "coaching:\n  min_decisions: 10001\nsteps: [{id: a, run: x}]\n",
        2,
        "coaching.min_decisions must be an integer from 1 to 10000, not 10001",
        id="min-decisions-too-big",
    ),
    pytest.param(
        "coaching: {adopt_after: 99999999999}\nsteps: [{id: a, run: x}]\n",
        1,
        "coaching.adopt_after must be an integer from 1 to 10000",
        id="adopt-after-too-big",
    ),
    pytest.param(
        "coaching:\n  min_observations: 123456\nsteps: [{id: a, run: x}]\n",
        2,
        "coaching.min_observations must be an integer from 1 to 10000",
        id="min-observations-too-big",
    ),
    pytest.param(
        "variables: {env: null}\ncoaching:\n  trust_scope: [env, region]\n"
        "steps: [{id: a, run: x}]\n",
        3,
        "coaching.trust_scope names 'region', which is not a declared variable (declared: env)",
        id="scope-undeclared",
    ),
    pytest.param(
        "coaching:\n  trust_scope:\n    - env\nsteps: [{id: a, run: x}]\n",
        3,
        "coaching.trust_scope names 'env', which is not a declared variable (declared: none)",
        id="scope-no-variables",
    ),
    pytest.param(
        "variables: {env: a}\ncoaching:\n  trust_scope: env\nsteps: [{id: a, run: x}]\n",
        3,
        "coaching.trust_scope must be a list of variable names, not a string",
        id="scope-not-list",
    ),
    pytest.param(
        "variables: {env: a}\ncoaching:\n  trust_scope: [env, env]\nsteps: [{id: a, run: x}]\n",
        3,
        "coaching.trust_scope names 'env' twice",
        id="scope-twice",
    ),
    pytest.param(
        "variables: {env: a}\ncoaching:\n  trust_scope: [[env]]\nsteps: [{id: a, run: x}]\n",
        3,
        "coaching.trust_scope entry must be a string, not a list",
        id="scope-nested",
    ),
    pytest.param(
        "steps:\n  - id: a\n    run: x\n  - id: b\n    run: y\n    coaching:\n"
        "      threshold: 1.5\n",
        7,
        "coaching.threshold of step 2 must be > 0 and <= 1, not 1.5",
        id="step-threshold",
    ),
    pytest.param(
        "steps:\n  - id: a\n    run: x\n    coaching: {window: 100000}\n",
        4,
        "coaching.window of step 1 must be an integer from 1 to 10000, not 100000",
        id="step-window",
    ),
    pytest.param(
        "steps:\n  - id: a\n    run: x\n    coaching:\n      strict: maybe\n",
        5,
        "coaching.strict of step 1 must be true or false, not a string",
        id="step-strict",
    ),
    pytest.param(
        "variables: {env: a}\nsteps:\n  - id: a\n    run: x\n    coaching:\n"
        "      trust_scope: [env]\n",
        6,
        "unknown key 'trust_scope' in coaching of step 1 (allowed: threshold, min_decisions, "
        "window, strict)",
        id="step-scope",
    ),
    pytest.param(
        "steps:\n  - id: a\n    run: x\n    coaching: [0.9]\n",
        4,
        "coaching of step 1 must be a mapping, not a list",
        id="step-coaching-list",
    ),
    pytest.param(
        "coaching: 3\nsteps: [{id: a, run: x}]\n",
        1,
        "coaching must be a mapping",
        id="coaching-int",
    ),
    pytest.param(
        "steps:\n  - id: a\n    run: x\n    max_level: TURBO\n",
        4,
        "max_level of step 1 must be one of OBSERVATION, COACHING, AUTO, not 'TURBO'",
        id="max-level",
    ),
    pytest.param(
        "steps:\n  - id: a\n    run: [echo, hi]\n",
        3,
        "run of step 1 must be a string, not a list",
        id="run-list",
    ),
    pytest.param(
        "steps:\n  - id: a\n    run: 5\n",
        3,
        "run of step 1 must be a string, not an integer",
        id="run-int",
    ),
    pytest.param(
        "steps:\n  - id: a\n    run: ''\n", 3, "run of step 1 must not be empty", id="run-empty"
    ),
    pytest.param(
        "steps:\n  - id: a\n    run: x\n  - id: b\n    name: B\n",
        4,
        "step 2 needs run or instructions (or both)",
        id="no-run-no-instructions",
    ),
    pytest.param("steps:\n  - run: x\n", 2, "step 1 needs an id or a name", id="no-id-no-name"),
    pytest.param(
        "steps:\n  - id: a\n    run: x\n  - id: b\n    run: y\n  - id: a\n    run: z\n",
        6,
        "duplicate step id 'a' (first on line 2)",
        id="duplicate-id",
    ),
    pytest.param(
        "steps:\n  - name: Do It\n    run: x\n  - id: do-it\n    run: y\n",
        4,
        "duplicate step id 'do-it' (first on line 2)",
        id="duplicate-slug",
    ),
    pytest.param(
        "steps:\n  - id: a/b\n    run: x\n",
        2,
        "invalid step id in step 1 'a/b'",
        id="bad-step-id",
    ),
    pytest.param(
        "steps:\n  - id: ..\n    run: x\n", 2, "invalid step id in step 1 '..'", id="dotdot-step-id"
    ),
    pytest.param(
        "id: ../evil\nsteps:\n  - id: a\n    run: x\n",
        1,
        "invalid workflow id '../evil'",
        id="bad-workflow-id",
    ),
    pytest.param(
        "variables:\n  domain: x\nsteps:\n  - id: a\n    run: echo {{ domian }}\n",
        5,
        "undefined variable 'domian' in run of step 'a' (declared: domain)",
        id="undefined-var-run",
    ),
    pytest.param(
        "steps:\n  - id: a\n    instructions: |\n      Open {{ url }}\n",
        3,
        "undefined variable 'url' in instructions of step 'a' (declared: none)",
        id="undefined-var-instructions",
    ),
    pytest.param(
        'variables:\n  v: x\nsteps:\n  - id: a\n    run: echo "{{ v }}"\n',
        5,
        "run of step 'a': {{ v }} is inside double quotes",
        id="var-in-double-quotes",
    ),
    pytest.param(
        "variables:\n  v: [a, b]\nsteps: [{id: a, run: x}]\n",
        2,
        "variable 'v' must be a string, number, boolean or null, not a list",
        id="var-list",
    ),
    pytest.param(
        "variables:\n  v: {a: b}\nsteps: [{id: a, run: x}]\n",
        2,
        "variable 'v' must be a string, number, boolean or null, not a mapping",
        id="var-map",
    ),
    pytest.param(
        "variables:\n  my-var: x\nsteps: [{id: a, run: x}]\n",
        2,
        "invalid variable name 'my-var'",
        id="var-bad-name",
    ),
    pytest.param(
        "variables: [a]\nsteps: [{id: a, run: x}]\n",
        1,
        "variables must be a mapping",
        id="vars-list",
    ),
    pytest.param(
        "name: [x]\nsteps: [{id: a, run: x}]\n",
        1,
        "name must be a string, not a list",
        id="name-list",
    ),
    pytest.param(
        "steps: [{id: a, run: x}]\n? [k]\n: v\n",
        2,
        "keys in the workflow must be strings",
        id="list-key",
    ),
    pytest.param(
        "steps: [{id: a, run: !!binary aGk=}]\n",
        1,
        "run of step 1 must be a string",
        id="binary-tag",
    ),
    pytest.param(
        "steps: [{id: a, run: !foo x}]\n", 1, "run of step 1 must be a string", id="custom-tag"
    ),
    pytest.param("a: 1\n---\nb: 2\n", 2, "invalid YAML", id="two-documents"),
    pytest.param("steps: *nope\n", 1, "invalid YAML", id="unknown-alias"),
    pytest.param("x: \x07\n", 1, "invalid YAML", id="control-char"),
]


@pytest.mark.parametrize(("text", "line", "message"), INVALID)
def test_invalid_files(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(WorkflowError) as info:
        load_workflow(path)
    assert str(info.value).startswith(f"{path}:{line}: {message}"), str(info.value)
    assert info.value.exit_code == 2


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(WorkflowError, match=r"nope\.yaml:1: cannot read: No such file"):
        load_workflow(path)


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(WorkflowError, match=r":1: cannot read: "):
        load_workflow(tmp_path)


def test_too_large(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * MAX_WORKFLOW_BYTES + "\n")
    with pytest.raises(WorkflowError) as info:
        load_workflow(path)
    assert str(info.value) == f"{path}:1: file too large (more than {MAX_WORKFLOW_BYTES} bytes)"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"name: ok\nsteps: caf\xe9\n")
    with pytest.raises(WorkflowError) as info:
        load_workflow(path)
    assert str(info.value) == f"{path}:2: not valid UTF-8 text"


def test_invalid_stem_needs_explicit_id(tmp_path: Path) -> None:
    path = write(tmp_path, "steps: [{id: a, run: x}]\n", ".hidden.yaml")
    with pytest.raises(WorkflowError, match=r"invalid workflow id '.hidden' from the file name"):
        load_workflow(path)
    path.write_text("id: fine\nsteps: [{id: a, run: x}]\n")
    assert load_workflow(path).id == "fine"


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


@pytest.mark.parametrize(
    "text",
    [
        BILLION_LAUGHS,
        BILLION_LAUGHS.replace("a: &a", "variables: &a").replace("[*a", "[*a") + "steps: *i\n",
        # every step an alias of one mapping: refused at the second (duplicate id)
        "s: &s {id: a, run: x}\n".replace("s: &s", "steps:\n  - &s")
        + "".join("  - *s\n" for _ in range(20000)),
    ],
    ids=["keys", "steps-alias", "many-aliases"],
)
def test_billion_laughs_refused_fast(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    started = time.monotonic()
    with pytest.raises(WorkflowError, match=rf"^{path}:\d+: "):
        load_workflow(path)
    assert time.monotonic() - started < 2


def test_alias_budget(tmp_path: Path) -> None:
    """Aliases are counted each time they are used: the work stays bounded."""
    from coachctl.engine import workflow_load

    text = "steps:\n" + "".join(f"  - {{id: s{i}, run: x}}\n" for i in range(200))
    path = write(tmp_path, text)
    old = workflow_load.MAX_NODES
    workflow_load.MAX_NODES = 100
    try:
        with pytest.raises(WorkflowError, match=r":\d+: document too complex \(aliases\)"):
            load_workflow(path)
    finally:
        workflow_load.MAX_NODES = old
    assert len(load_workflow(path).steps) == 200


def test_deep_nesting_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "steps: " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(WorkflowError, match=r":1: invalid YAML"):
        load_workflow(path)


# --------------------------------------------------------------------------- rendering

HOSTILE = [
    "x; touch PWNED",
    "$(touch PWNED)",
    "`touch PWNED`",
    "a'b\"c",
    "a\nb",
    "&& rm -rf /tmp/nonexistent",
    "",
    "{{ v }}",
    "x\n touch PWNED #",
    "'; touch PWNED; echo '",
    "\\'; touch PWNED; #",
]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("echo {{ v }}", "{}\n"),
        ("echo {{v}}", "{}\n"),
        ("echo pre{{ v }}post", "pre{}post\n"),
        ("echo $(echo {{ v }})x", None),
        ("printf '%s|' {{ v }} {{ v }}", "{}|{}|"),
        ('echo "a" {{ v }} # done', "a {}\n"),
    ],
)
def test_values_never_inject(
    tmp_path: Path, value: str, template: str, expected: str | None
) -> None:
    cmd = render_run(template, {"v": value})
    result = subprocess.run(
        cmd, shell=True, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=10
    )
    assert not (tmp_path / "PWNED").exists()
    if expected is None:  # word splitting of $(...) output: only check that nothing ran
        return
    assert result.stdout == expected.format(value, value), cmd


def test_render_run_exact(tmp_path: Path) -> None:
    assert render_run("echo {{ v }}", {"v": "a b"}) == "echo 'a b'"
    assert render_run("echo {{ v }}", {"v": "plain"}) == "echo plain"
    assert render_run("echo {{ v }}", {"v": ""}) == "echo ''"


def test_nul_refused() -> None:
    with pytest.raises(UsageError, match=r"variable v contains a NUL byte"):
        render_run("echo {{ v }}", {"v": "a\0b"})
    assert render_text("{{ v }}", {"v": "a\0b"}) == "a\0b"


def test_single_pass() -> None:
    variables = {"a": "{{ b }}", "b": "B"}
    assert render_text("{{ a }}-{{ b }}", variables) == "{{ b }}-B"
    assert render_run("echo {{ a }} {{ b }}", variables) == "echo '{{ b }}' B"


def test_render_text_plain() -> None:
    assert render_text("Open https://{{ domain }}/{{x}}!", {"domain": "a b'c", "x": "$(id)"}) == (
        "Open https://a b'c/$(id)!"
    )
    assert render_text("no {{ placeholders", {}) == "no {{ placeholders"


def test_render_undefined() -> None:
    with pytest.raises(UsageError, match=r"undefined variable: nope"):
        render_run("echo {{ nope }}", {})
    with pytest.raises(UsageError, match=r"undefined variable: nope"):
        render_text("{{ nope }}", {})


@pytest.mark.parametrize(
    ("template", "where"),
    [
        ("echo '{{ v }}'", "inside single quotes"),
        ('echo "{{ v }}"', "inside double quotes"),
        ('echo "$(echo "{{ v }}")"', "inside double quotes"),
        ("echo `echo {{ v }}`", "inside backquotes"),
        ("echo $'{{ v }}'", "after a $'...' string"),
        ("echo \\{{ v }}", "after a backslash"),
        ("echo ${{ v }}", "right after a $"),
        ("echo ok # {{ v }}", "in a comment"),
        ("echo $(( {{ v }} + 1 ))", "inside an arithmetic expression"),
        ("echo ${x:-{{ v }}}", "inside ${...}"),
        ("cat <<EOF\n{{ v }}\nEOF", "after a here-document (<<)"),
        ("echo ${x:-'a'} {{ v }}", "after a ${...} holding quotes or commands"),
        ("cat <<< {{ v }}", "after a here-document (<<)"),
        ("echo <\\\n<EOF\n{{ v }}\nEOF", "after a here-document (<<)"),
        ("echo $'it\\'s' {{ v }}", "after a $'...' string"),
        ("echo $\\\n{{ v }}", "right after a $"),
        ("echo a \\\n# {{ v }}", "in a comment"),
    ],
)
def test_unsafe_placement_refused(template: str, where: str) -> None:
    with pytest.raises(UsageError) as info:
        render_run(template, {"v": "x"})
    assert str(info.value).startswith(f"{{{{ v }}}} is {where}, "), str(info.value)


@pytest.mark.parametrize(
    "template",
    [
        "echo {{ v }}",
        'echo "Hello, "{{ v }}',
        "echo '{{ not a var }}' {{ v }}",
        "docker inspect -f '{{.State.Running}}' {{ v }}",
        'echo "$(date)" ${HOME}/{{ v }}',
        "echo $(echo {{ v }})",
        "echo a#{{ v }}",
        "echo ok # a comment\necho {{ v }}",
        "docker run \\\n  --name {{ v }} \\\n  image",
        "echo {{ v }} \\",
        "echo 'a\\\n' {{ v }}",
    ],
)
def test_safe_placement_accepted(template: str) -> None:
    assert "'x y'" in render_run(template, {"v": "x y"})


def test_template_variables() -> None:
    assert template_variables("{{ b }} {{a}} {{ b }} {{  c_1  }} {{ 1x }} {{ .x }}") == [
        "b",
        "a",
        "c_1",
    ]
    assert template_variables("none") == []


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Fetch the new certificate", "fetch-the-new-certificate"),
        ("  Reload -- the Proxies!  ", "reload-the-proxies"),
        ("Café crème", "cafe-creme"),
        ("!!!", "step"),
        ("", "step"),
        ("v1.2_beta", "v1-2-beta"),
    ],
)
def test_slugify(text: str, slug: str) -> None:
    assert slugify(text) == slug
    assert ID_RE.match(slugify(text))


# --------------------------------------------------------------------------- variables


def test_parse_var_assignments() -> None:
    assert parse_var_assignments(["a=1", "b=x=y", "c=", "_d9=  ", "a=2"]) == {
        "a": "2",
        "b": "x=y",
        "c": "",
        "_d9": "  ",
    }
    assert parse_var_assignments([]) == {}


@pytest.mark.parametrize("item", ["x", "=v", "1a=v", "a-b=v", " a=v", "a b=v", ""])
def test_parse_var_assignments_invalid(item: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_var_assignments(["ok=1", item])
    assert str(info.value) == f"invalid --var '{item}': expected KEY=VALUE"
    assert info.value.exit_code == 2


def test_resolve_variables() -> None:
    wf = make_workflow({"a": "1", "b": None, "c": ""})
    assert resolve_variables(wf, {"b": "2"}) == {"a": "1", "b": "2", "c": ""}
    assert resolve_variables(wf, {"a": "x", "b": ""}) == {"a": "x", "b": "", "c": ""}


def test_resolve_variables_unknown() -> None:
    wf = make_workflow({"a": "1", "b": None})
    with pytest.raises(UsageError) as info:
        resolve_variables(wf, {"b": "1", "zz": "2"})
    assert str(info.value) == "unknown variable: zz (declared: a, b)"
    with pytest.raises(UsageError) as info:
        resolve_variables(make_workflow({}), {"x": "1", "y": "2"})
    assert str(info.value) == "unknown variables: x, y (declared: none)"


def test_resolve_variables_missing() -> None:
    with pytest.raises(UsageError) as info:
        resolve_variables(make_workflow({"a": "1", "b": None}), {})
    assert str(info.value) == "missing required variable: b (pass --var b=VALUE)"
    with pytest.raises(UsageError) as info:
        resolve_variables(make_workflow({"x": None, "y": None}), {})
    assert str(info.value) == (
        "missing required variables: x, y (pass --var x=VALUE --var y=VALUE)"
    )


# --------------------------------------------------------------------------- finding files


def test_resolve_workflow_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / "workflows").mkdir(parents=True)
    (home / "workflows" / "deploy.yaml").write_text("steps: [{id: a, run: x}]\n")
    (home / "workflows" / "other.yml").write_text("steps: [{id: a, run: x}]\n")
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text("steps: [{id: a, run: x}]\n")
    monkeypatch.chdir(tmp_path)

    assert resolve_workflow_path("deploy", home) == home / "workflows" / "deploy.yaml"
    assert resolve_workflow_path("other", home) == home / "workflows" / "other.yml"
    assert resolve_workflow_path(str(elsewhere), home) == elsewhere
    assert resolve_workflow_path("elsewhere.yaml", home) == Path("elsewhere.yaml")
    # an existing file is accepted as a path, even outside the home
    assert resolve_workflow_path("/etc/hostname", home) == Path("/etc/hostname")


@pytest.mark.parametrize(
    "ref",
    ["nope", "../x", "../workflows/deploy", "workflows/deploy", "/etc/nonexistent", "..", "", ".x"],
)
def test_resolve_workflow_path_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ref: str
) -> None:
    home = tmp_path / "home"
    (home / "workflows").mkdir(parents=True)
    (home / "workflows" / "deploy.yaml").write_text("steps: [{id: a, run: x}]\n")
    (tmp_path / "x.yaml").write_text("steps: [{id: a, run: x}]\n")  # ../x from the folder
    monkeypatch.chdir(home / "workflows")
    with pytest.raises(UsageError) as info:
        resolve_workflow_path(ref, home)
    assert str(info.value) == (
        f"unknown workflow: {ref} (no file, and no workflows/{ref}.yaml in {home})"
    )


def test_find_workflows(tmp_path: Path) -> None:
    assert find_workflows(tmp_path) == []
    folder = tmp_path / "workflows"
    folder.mkdir()
    for name in ("b.yml", "a.yaml", "c.txt", "d.yaml.bak"):
        (folder / name).write_text("x")
    (folder / "dir.yaml").mkdir()
    assert find_workflows(tmp_path) == [folder / "a.yaml", folder / "b.yml"]


# --------------------------------------------------------------------------- robustness

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["{{ v }}", "{{ x }}", "COACHING", "TURBO", "a", "-1", "0.5"]),
)
KEYS = st.one_of(
    st.sampled_from(
        [
            "id",
            "name",
            "description",
            "variables",
            "coaching",
            "steps",
            "run",
            "instructions",
            "timeout",
            "max_level",
            "threshold",
            "min_decisions",
            "window",
            "strict",
            "v",
            "x",
        ]
    ),
    st.text(max_size=8),
)
YAMLISH = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(KEYS, children, max_size=6)
    ),
    max_leaves=40,
)


def check_loads_or_refuses(path: Path) -> None:
    try:
        wf = load_workflow(path)
    except WorkflowError as exc:
        assert str(exc).startswith(f"{path}:")
    else:
        assert wf.steps and isinstance(wf, Workflow)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=YAMLISH)
def test_fuzz_yaml_data(tmp_path: Path, data: object) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    check_loads_or_refuses(path)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.fixed_dictionaries(
        {"steps": st.lists(st.dictionaries(KEYS, SCALARS, max_size=5), max_size=4)},
        optional={
            "variables": st.dictionaries(KEYS, SCALARS),
            "coaching": st.dictionaries(KEYS, SCALARS),
        },
    )
)
def test_fuzz_workflow_shaped(tmp_path: Path, data: object) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    check_loads_or_refuses(path)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_fuzz_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check_loads_or_refuses(path)


EVIL = "x; touch PWNED\n touch PWNED #`touch PWNED`$(touch PWNED)'\"\\"


@settings(max_examples=200, deadline=None)
@given(template=st.text(alphabet="{} v$'\"`\\#()<\n;xa=", max_size=30))
def test_fuzz_render_run_never_injects(template: str) -> None:
    """Whatever shell syntax surrounds a placeholder: refused, or the value stays one word."""
    try:
        cmd = render_run(template, {"v": EVIL})
    except UsageError:
        return
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            cmd,
            shell=True,
            cwd=folder,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )
        assert not (Path(folder) / "PWNED").exists(), cmd


def test_import_is_lazy() -> None:
    code = "import sys, coachctl.engine.workflow_load; print('yaml' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "False"
