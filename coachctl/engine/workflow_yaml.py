"""Reading a workflow file into a YAML node tree, with `PATH:LINE` on every failure.

Size limit, decoding and YAML syntax errors are the file-level mistakes; each becomes one
WorkflowError line, with a quoting hint for the shapes people most often get wrong. What the
tree means is checked by `workflow_load`. `yaml` is imported only when a file is read.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from coachctl.errors import WorkflowError

if TYPE_CHECKING:  # only for annotations: `import yaml` stays lazy (keeps `--help` fast)
    from yaml.nodes import Node

MAX_WORKFLOW_BYTES = 1 << 20


def read_text(path: str) -> str:
    """Read at most MAX_WORKFLOW_BYTES (+1 to notice a larger file) and decode it."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_WORKFLOW_BYTES + 1)
    except OSError as exc:
        raise WorkflowError(f"{path}:1: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_WORKFLOW_BYTES:
        raise WorkflowError(f"{path}:1: file too large (more than {MAX_WORKFLOW_BYTES} bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise WorkflowError(f"{path}:{line}: not valid UTF-8 text") from None


def compose(path: str, text: str) -> Node | None:
    """Parse to a node tree with the C loader when present; syntax errors keep their line."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        node: Node | None = yaml.compose(text, Loader=loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        hint = _quote_hint(problem, text, mark.line if mark is not None else -1)
        raise WorkflowError(f"{path}:{line}: invalid YAML: {problem}{hint}") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise WorkflowError(f"{path}:{line}: invalid YAML: {exc.reason}") from None
    except yaml.YAMLError as exc:
        raise WorkflowError(f"{path}:1: invalid YAML: {exc}") from None
    except RecursionError:  # the pure-Python composer on very deep nesting
        raise WorkflowError(f"{path}:1: invalid YAML: nested too deeply") from None
    return node


QUOTE_HINT = (
    "quote the value: one that starts with {{ is read as a YAML mapping; "
    'e.g. run: "{{ tool }} --now"'
)
#: `key: {{ ...`: a plain value that YAML reads as a flow mapping (of a mapping).
_FLOW_START_RE = re.compile(r"^\s*(?:-\s+)?(?:[^\s#'\"][^:#]*:\s+)?\{\{")
#: `key: "a b" c`: a quoted string followed by more text on the line.
_PART_QUOTED_RE = re.compile(r"^\s*(?:-\s+)?(?:[^\s#'\"][^:#]*:\s+)?(\"[^\"]*\"|'[^']*')\s*[^\s#]")


def _quote_hint(problem: str, text: str, index: int) -> str:
    """The likely cause of a YAML error in a workflow, and its fix (quoting), when known.

    A person writing `run: echo a: b` or `run: {{ tool }} --now` meant a string; YAML read a
    mapping. Only these shapes get the hint, so it never misleads on other errors.
    """
    if problem.startswith("mapping values are not allowed"):
        return " (quote the value: a ': ' in it starts a YAML mapping; e.g. run: \"echo a: b\")"
    lines = text.splitlines()
    for i in (index, index - 1):  # the mark may sit on the line after the value
        if 0 <= i < len(lines):
            if _FLOW_START_RE.match(lines[i]):
                return f" ({QUOTE_HINT})"
            if _PART_QUOTED_RE.match(lines[i]):
                return (
                    " (quote the value whole: a quoted part must be all of it; "
                    "e.g. run: 'echo \"a b\" c')"
                )
    return ""
