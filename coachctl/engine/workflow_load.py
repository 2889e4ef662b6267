"""Loading a workflow file: every key validated, every error as `PATH:LINE: message`.

Everything a person can get wrong in a workflow file is caught here, before anything runs, so
the mistake can be found without reading a traceback. Pure engine code: no printing, no click;
it returns a `Workflow` or raises `coachctl.errors` errors.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from coachctl.engine.coaching import DEFAULTS, MAX_COUNT, STEP_KEYS
from coachctl.engine.shellscan import unsafe_placeholder
from coachctl.engine.templates import TEMPLATE_RE, VAR_NAME_RE, template_variables
from coachctl.engine.workflow import ID_RE, LEVELS, Coaching, Step, Workflow
from coachctl.engine.workflow_yaml import QUOTE_HINT, compose, read_text
from coachctl.errors import WorkflowError

if TYPE_CHECKING:  # only for annotations: `import yaml` stays lazy (keeps `--help` fast)
    from yaml.nodes import MappingNode, Node, ScalarNode

#: Nodes visited while validating, aliases counted each time they are used: bounds the work a
#: hostile document ("billion laughs") can cause.
MAX_NODES = 100_000

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_TIMESTAMP = _TAG + "timestamp"

_TOP_KEYS = ("id", "name", "description", "variables", "coaching", "steps")
_STEP_KEYS = ("id", "name", "run", "instructions", "timeout", "max_level", "coaching")


class _Checker:
    """Validates a composed YAML node tree, so every error can name the line it is about.

    Working on nodes rather than on `yaml.safe_load` output is what gives line numbers, lets
    duplicate keys be refused (PyYAML silently keeps the last one), and keeps variable values as
    written (`1.10` stays "1.10", not "1.1"). Merge keys (`<<`) are refused as unknown keys:
    supporting them would hide which line a value came from.
    """

    def __init__(self, path: str) -> None:
        import yaml.constructor

        self.path = path
        self.visited = 0
        self.constructor = yaml.constructor.SafeConstructor()

    def fail(self, node: Node | None, message: str) -> NoReturn:
        line = node.start_mark.line + 1 if node is not None else 1
        raise WorkflowError(f"{self.path}:{line}: {message}")

    def visit(self, node: Node) -> None:
        """Count one visit; refuses documents whose aliases multiply the work."""
        self.visited += 1
        if self.visited > MAX_NODES:
            self.fail(node, "document too complex (aliases)")

    # -- shapes

    def mapping(self, node: Node, what: str) -> MappingNode:
        from yaml.nodes import MappingNode

        self.visit(node)
        if not isinstance(node, MappingNode):
            self.fail(node, f"{what} must be a mapping, not {self.describe(node)}")
        return node

    def items(
        self, node: MappingNode, what: str, allowed: Sequence[str] | None
    ) -> Iterator[tuple[str, ScalarNode, Node]]:
        """Yield (key, key node, value node); refuses non-string, duplicate and unknown keys."""
        from yaml.nodes import ScalarNode

        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            self.visit(key_node)
            if key_node.tag == _TAG + "merge":
                self.fail(key_node, f"merge keys (<<) are not supported in {what}")
            if not isinstance(key_node, ScalarNode) or key_node.tag not in (_STR, _INT):
                self.fail(key_node, f"keys in {what} must be strings")
            key = str(key_node.value)
            if key in seen:
                self.fail(key_node, f"duplicate key '{key}' in {what} (first on line {seen[key]})")
            seen[key] = key_node.start_mark.line + 1
            if allowed is not None and key not in allowed:
                self.fail(
                    key_node, f"unknown key '{key}' in {what} (allowed: {', '.join(allowed)})"
                )
            yield key, key_node, value_node

    def describe(self, node: Node) -> str:
        from yaml.nodes import MappingNode, SequenceNode

        if isinstance(node, MappingNode):
            return "a mapping"
        if isinstance(node, SequenceNode):
            return "a list"
        names = {_STR: "a string", _INT: "an integer", _FLOAT: "a number", _BOOL: "a boolean"}
        if node.tag == _NULL:
            return "empty (null)"
        return names.get(node.tag, f"a value tagged {node.tag}")

    def flow_hint(self, node: Node) -> str:
        """`run: {{ cmd }}` is a YAML mapping, not a template: say how to write it."""
        from yaml.nodes import MappingNode

        flow = isinstance(node, MappingNode) and node.flow_style and node.value
        if flow and isinstance(node.value[0][0], MappingNode):  # `{{ name }}`: a mapping key
            return f" ({QUOTE_HINT})"
        return ""

    def is_null(self, node: Node) -> bool:
        from yaml.nodes import ScalarNode

        return isinstance(node, ScalarNode) and node.tag == _NULL

    # -- scalars

    def scalar(self, node: Node, what: str, tags: Sequence[str], expected: str) -> Any:
        """Construct a scalar of one of `tags` with PyYAML's own safe constructor."""
        from yaml.nodes import ScalarNode

        self.visit(node)
        if not isinstance(node, ScalarNode) or node.tag not in tags:
            self.fail(
                node, f"{what} must be {expected}, not {self.describe(node)}{self.flow_hint(node)}"
            )
        try:
            return self.constructor.construct_object(node, deep=True)
        except (ValueError, OverflowError) as exc:  # e.g. an int with 5000 digits
            self.fail(node, f"{what}: invalid value ({exc})")

    def text(self, node: Node, what: str, *, numbers: bool = False, empty: bool = False) -> str:
        """A string; with `numbers`, an int/float is accepted as written (`id: 2024`)."""
        tags = (_STR, _INT, _FLOAT) if numbers else (_STR,)
        value = self.scalar(node, what, tags, "a string")
        text = str(node.value) if numbers else str(value)
        if not empty and not text.strip():
            self.fail(node, f"{what} must not be empty")
        return text

    def identifier(self, node: Node, what: str) -> str:
        value = self.text(node, what, numbers=True)
        if not ID_RE.match(value):
            self.fail(
                node,
                f"invalid {what} '{value}' (letters, digits, '.', '_' and '-', "
                "starting with a letter or digit)",
            )
        return value

    def positive_int(self, node: Node, what: str) -> int:
        value = self.scalar(node, what, (_INT,), "an integer")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            self.fail(node, f"{what} must be an integer >= 1, not {node.value}")
        return value

    def count(self, node: Node, what: str) -> int:
        """A `coaching:` count: 1..MAX_COUNT, so no later query or simulation can overflow."""
        value = self.positive_int(node, what)
        if value > MAX_COUNT:
            self.fail(node, f"{what} must be an integer from 1 to {MAX_COUNT}, not {node.value}")
        return value

    def number(self, node: Node, what: str) -> float:
        value = self.scalar(node, what, (_INT, _FLOAT), "a number")
        number = float(value)
        if not math.isfinite(number):
            self.fail(node, f"{what} must be a finite number, not {node.value}")
        return number

    # -- sections

    def variables(self, node: Node) -> dict[str, str | None]:
        from yaml.nodes import ScalarNode

        result: dict[str, str | None] = {}
        for name, key_node, value_node in self.items(
            self.mapping(node, "variables"), "variables", None
        ):
            if not VAR_NAME_RE.match(name):
                self.fail(
                    key_node,
                    f"invalid variable name '{name}' (letters, digits and '_', "
                    "not starting with a digit)",
                )
            self.visit(value_node)
            if not isinstance(value_node, ScalarNode):
                self.fail(
                    value_node,
                    f"variable '{name}' must be a string, number, boolean or null, "
                    f"not {self.describe(value_node)}{self.flow_hint(value_node)}",
                )
            if "\0" in value_node.value:  # what every `run` would refuse, refused up front
                self.fail(
                    value_node,
                    f"variable '{name}' contains a NUL byte, which a shell argument cannot hold",
                )
            if value_node.tag == _NULL:
                result[name] = None
            elif value_node.tag in (_STR, _INT, _FLOAT, _BOOL, _TIMESTAMP):
                # As written: a shell variable wants "1.10" and "yes", not 1.1 and True.
                result[name] = str(value_node.value)
            else:
                self.fail(value_node, f"variable '{name}': unsupported tag {value_node.tag}")
        return result

    def coaching(
        self, node: Node, where: str = "", allowed: Sequence[str] = tuple(DEFAULTS)
    ) -> tuple[dict[str, Any], dict[str, Node]]:
        """A `coaching:` block's values (nulls left out) and the node of each key.

        The workflow's block and a step's own (`where` = " of step 2", `allowed` = STEP_KEYS)
        are checked by the same rules. `trust_scope` is only shaped here: whether it names
        declared variables is checked once the whole file is read.
        """
        values: dict[str, Any] = {}
        nodes: dict[str, Node] = {}
        for key, _, value_node in self.items(
            self.mapping(node, f"coaching{where}"), f"coaching{where}", allowed
        ):
            what = f"coaching.{key}{where}"
            nodes[key] = value_node
            if self.is_null(value_node):
                continue
            if key == "threshold":
                threshold = self.number(value_node, what)
                if not 0 < threshold <= 1:
                    self.fail(value_node, f"{what} must be > 0 and <= 1, not {value_node.value}")
                values[key] = threshold
            elif key == "strict":
                values[key] = self.scalar(value_node, what, (_BOOL,), "true or false")
            elif key == "trust_scope":
                values[key] = self.names(value_node, what)
            else:
                values[key] = self.count(value_node, what)
        return values, nodes

    def names(self, node: Node, what: str) -> tuple[str, ...]:
        """A list of variable names (`trust_scope: [env, region]`), each once."""
        from yaml.nodes import SequenceNode

        self.visit(node)
        if not isinstance(node, SequenceNode):
            self.fail(node, f"{what} must be a list of variable names, not {self.describe(node)}")
        names: list[str] = []
        for item in node.value:
            name = self.text(item, f"{what} entry")
            if name in names:
                self.fail(item, f"{what} names '{name}' twice")
            names.append(name)
        return tuple(names)

    def check_scope(
        self, names: Sequence[str], node: Node, variables: Mapping[str, str | None]
    ) -> None:
        """`trust_scope` may only name declared variables: a scope on a value no session can
        have would silently split nothing (or everything)."""
        for index, name in enumerate(names):
            if name not in variables:
                from yaml.nodes import SequenceNode

                at = node.value[index] if isinstance(node, SequenceNode) else node
                known = ", ".join(variables) or "none"
                self.fail(
                    at,
                    f"coaching.trust_scope names '{name}', which is not a declared variable "
                    f"(declared: {known})",
                )

    def step(self, node: Node, index: int, declared: Mapping[str, str | None]) -> Step:
        mapping = self.mapping(node, f"step {index}")
        where = f"step {index}"
        values: dict[str, Any] = {}
        nodes: dict[str, Node] = {}
        for key, _, value_node in self.items(mapping, where, _STEP_KEYS):
            nodes[key] = value_node
            if self.is_null(value_node):
                continue
            what = f"{key} of {where}"
            if key == "id":
                values[key] = self.identifier(value_node, f"step id in {where}")
            elif key == "name":
                values[key] = self.text(value_node, what, numbers=True)
            elif key in ("run", "instructions"):
                values[key] = self.text(value_node, what)
            elif key == "timeout":
                timeout = self.number(value_node, what)
                if timeout <= 0:
                    self.fail(value_node, f"{what} must be > 0 seconds, not {value_node.value}")
                values[key] = timeout
            elif key == "max_level":
                level = self.text(value_node, what).upper()  # `max_level: coaching` too
                if level not in LEVELS:
                    self.fail(
                        value_node, f"{what} must be one of {', '.join(LEVELS)}, not '{level}'"
                    )
                values[key] = level
            elif key == "coaching":
                values[key], _ = self.coaching(value_node, f" of {where}", STEP_KEYS)
        if "id" not in values and "name" not in values:
            self.fail(node, f"{where} needs an id or a name")
        if "run" not in values and "instructions" not in values:
            self.fail(node, f"{where} needs run or instructions (or both)")
        step_id = values.get("id") or slugify(values["name"])
        step = Step(
            id=step_id,
            name=values.get("name") or step_id,
            run=values.get("run"),
            instructions=values.get("instructions"),
            timeout=values.get("timeout"),
            max_level=values.get("max_level"),
            line=node.start_mark.line + 1,
            coaching=values.get("coaching") or {},
        )
        self.check_templates(step, nodes, declared)
        return step

    def check_templates(
        self, step: Step, nodes: Mapping[str, Node], declared: Mapping[str, str | None]
    ) -> None:
        """Undefined `{{ var }}` and unsafely placed placeholders in `run` are refused at load."""
        for key in ("run", "instructions"):
            template = getattr(step, key)
            if template is None:
                continue
            node = nodes[key]
            for name in template_variables(template):
                if name not in declared:
                    known = ", ".join(declared) or "none"
                    self.fail(
                        node,
                        f"undefined variable '{name}' in {key} of step '{step.id}' "
                        f"(declared: {known})",
                    )
            if key == "run":
                problem = unsafe_placeholder(template, TEMPLATE_RE)
                if problem is not None:
                    self.fail(node, f"run of step '{step.id}': {problem}")


def load_workflow(path: str | os.PathLike[str]) -> Workflow:
    """Load and fully validate a workflow file (CONTRACT §2).

    Raises WorkflowError(`PATH:LINE: message`) for anything invalid: a file that loads can be
    run without any later surprise from its shape.
    """
    spath = os.fspath(path)
    node = compose(spath, read_text(spath))
    if node is None:
        raise WorkflowError(f"{spath}:1: empty document (expected a mapping with steps)")
    checker = _Checker(spath)
    root = checker.mapping(node, "the workflow")

    workflow_id = Path(spath).stem
    name: str | None = None
    description = ""
    variables: dict[str, str | None] = {}
    coaching = Coaching()
    scope_node: Node | None = None
    steps_node: Node | None = None
    has_id = False
    for key, _, value_node in checker.items(root, "the workflow", _TOP_KEYS):
        if checker.is_null(value_node) and key != "steps":
            continue
        if key == "id":
            workflow_id = checker.identifier(value_node, "workflow id")
            has_id = True
        elif key == "name":
            name = checker.text(value_node, "name", numbers=True)
        elif key == "description":
            description = checker.text(value_node, "description", numbers=True, empty=True)
        elif key == "variables":
            variables = checker.variables(value_node)
        elif key == "coaching":
            values, nodes = checker.coaching(value_node)
            coaching = Coaching(**values)
            scope_node = nodes.get("trust_scope")
        else:
            steps_node = value_node
    if scope_node is not None:
        checker.check_scope(coaching.trust_scope, scope_node, variables)
    if not has_id and not ID_RE.match(workflow_id):
        checker.fail(
            root, f"invalid workflow id '{workflow_id}' from the file name (set `id:` in the file)"
        )

    from yaml.nodes import SequenceNode

    if steps_node is None:
        checker.fail(root, "no steps (add a `steps:` list)")
    if checker.is_null(steps_node):
        checker.fail(steps_node, "no steps (`steps:` is empty)")
    checker.visit(steps_node)
    if not isinstance(steps_node, SequenceNode):
        checker.fail(steps_node, f"steps must be a list, not {checker.describe(steps_node)}")
    if not steps_node.value:
        checker.fail(steps_node, "no steps (`steps:` is empty)")

    steps: list[Step] = []
    first_line: dict[str, int] = {}
    for index, step_node in enumerate(steps_node.value, start=1):
        step = checker.step(step_node, index, variables)
        if step.id in first_line:
            checker.fail(
                step_node,
                f"duplicate step id '{step.id}' (first on line {first_line[step.id]})",
            )
        first_line[step.id] = step.line
        steps.append(step)

    return Workflow(
        id=workflow_id,
        name=name if name is not None else workflow_id,
        description=description,
        variables=variables,
        coaching=coaching,
        steps=tuple(steps),
        path=spath,
    )


def slugify(text: str) -> str:
    """A step id from its name: `Fetch the new certificate` -> `fetch-the-new-certificate`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug or "step"
