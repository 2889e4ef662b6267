"""Hypothesis fuzzing: no input ever produces a traceback, only the contract's exit codes.

The root command turns unexpected exceptions into "coachctl: unexpected error: …" (exit 1),
so besides running with catch_exceptions=False these tests also refuse that line: it means
an exception escaped the engine's error hierarchy.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

WF = "id: fz\nvariables:\n  v: x\nsteps:\n  - id: one\n    run: echo {{ v }}\n"


def invoke(home: Path, args: list[str]) -> Result:
    from coachctl.cli import cli

    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


def check(res: Result, allowed: tuple[int, ...] = (0, 1, 2, 3)) -> None:
    assert res.exit_code in allowed, (res.exit_code, res.stderr)
    err = res.stderr
    assert "Traceback" not in err and "unexpected error" not in err, err
    if res.exit_code == 0 or not err:
        return
    lines = err.rstrip("\n").split("\n")  # only \n ends a line (not \x1e, \u2028, …)
    if "workflow files invalid" in lines[-1]:
        # validate: one line per file (PATH:LINE: message), then a one-line summary
        assert lines[-1].startswith("coachctl: "), err
    elif lines[0].startswith(("coachctl: ", "/")):
        assert len(lines) == 1, err  # one line: "coachctl: …" or "PATH:LINE: message"
    else:
        # Click's own usage errors: "Usage: …" and/or an "Error: …" line.
        assert any(line.startswith("Error: ") for line in lines), err


def fresh_home() -> Path:
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="fuzz-"))
    (home / "workflows").mkdir()
    (home / "workflows" / "fz.yaml").write_text(WF)
    return home


# -- the workflow loader -------------------------------------------------------------------

HOME = fresh_home()

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["{{ v }}", "{{ nope }}", "echo '{{ v }}'", "AUTO", "COACHING", "x y"]),
)
keys = st.one_of(
    st.sampled_from(
        [
            "id",
            "name",
            "run",
            "instructions",
            "timeout",
            "max_level",
            "steps",
            "variables",
            "coaching",
            "threshold",
            "min_decisions",
            "window",
            "strict",
            "description",
            "v",
        ]
    ),
    st.text(max_size=10),
    st.integers(),
)
structures = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=6)
    ),
    max_leaves=30,
)
shaped = st.fixed_dictionaries(
    {
        "steps": st.one_of(
            structures, st.lists(st.dictionaries(keys, structures, max_size=5), max_size=4)
        )
    },
    optional={
        "id": structures,
        "variables": structures,
        "coaching": structures,
        "name": structures,
    },
)


def validate_text(data: bytes) -> Result:
    path = HOME / "workflows" / "case.yaml"
    path.write_bytes(data)
    return invoke(HOME, ["validate", "case"])


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes(data: bytes) -> None:
    check(validate_text(data), (0, 2))


@FUZZ
@given(st.text(max_size=400))
def test_arbitrary_text(text: str) -> None:
    check(validate_text(text.encode("utf-8", "surrogatepass")), (0, 2))


@FUZZ
@given(st.one_of(structures, shaped))
def test_arbitrary_yaml_structures(doc: object) -> None:
    try:
        text = yaml.safe_dump(doc, allow_unicode=True)
    except yaml.YAMLError:
        return
    check(validate_text(text.encode("utf-8", "surrogatepass")), (0, 2))


@FUZZ
@given(st.one_of(structures, shaped))
def test_arbitrary_structures_through_run_dry_run(doc: object) -> None:
    try:
        text = yaml.safe_dump(doc, allow_unicode=True)
    except yaml.YAMLError:
        return
    (HOME / "workflows" / "case.yaml").write_text(text, errors="surrogatepass")
    check(invoke(HOME, ["run", "case", "--dry-run", "--format", "json"]), (0, 1, 2))


# -- CLI arguments ---------------------------------------------------------------------------

words = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "accept",
            "reject",
            "correct",
            "manual",
            "skip",
            "--step",
            "one",
            "--no-exec",
            "--correction",
            "--command",
            "--feedback",
            "--format",
            "json",
            "text",
            "--var",
            "v=1",
            "=",
            "v",
            "--",
            "-",
            "..",
            "/",
            "fz",
            "--mode",
            "auto",
            "--force",
            "--dry-run",
            "--start-at",
            "--no-input",
            "--lock-timeout",
            "0",
            "-1",
            "nan",
        ]
    ),
)


@FUZZ
@given(
    st.sampled_from(["validate", "decide", "show", "run", "pause", "sessions"]),
    st.lists(words, max_size=6),
)
def test_random_arguments(command: str, argv: list[str]) -> None:
    if "\0" in "".join(argv):
        argv = [a.replace("\0", "") for a in argv]
    if command == "run":
        argv = ["fz", "--dry-run", *argv]  # never start a real run with random flags
    check(invoke(HOME, [command, *argv]))


@FUZZ
@given(st.lists(st.text(max_size=30), min_size=1, max_size=4))
def test_random_var_assignments(values: list[str]) -> None:
    args = ["run", "fz", "--dry-run", "--format", "json"]
    for v in values:
        args += ["--var", v]
    check(invoke(HOME, args), (0, 2))


@FUZZ
@given(st.text(max_size=30), st.sampled_from(["accept", "skip", "reject", "manual", "correct"]))
def test_random_session_refs(ref: str, decision: str) -> None:
    check(invoke(HOME, ["decide", "--", ref, decision]), (2,))
