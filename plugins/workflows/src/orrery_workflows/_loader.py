"""Load a workflow from YAML (or a parsed mapping) and check it completely: shape,
DAG (unknown needs, duplicate ids, cycles) and every ``${{ }}`` expression. Every
refusal is a `DefinitionError` with the line and the reason."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ._expr import parse_template
from ._model import Step, Workflow
from .errors import DefinitionError, ExpressionError

__all__ = ["load_definition", "load_yaml", "order_steps"]


def load_yaml(text: str, source: str = "<workflow>") -> Workflow:
    """Parse and validate a workflow file's text."""
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(io.StringIO(text))
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or str(e)
        raise DefinitionError(source, line, f"not valid YAML: {problem}") from e
    if not isinstance(tree, Mapping):
        raise DefinitionError(source, 1, "a workflow file is a mapping with name and steps")
    return load_definition(tree, source)


def load_definition(tree: Mapping[str, Any], source: str = "<workflow>") -> Workflow:
    """Validate a parsed definition (a ruamel tree keeps its line numbers)."""
    try:
        workflow = Workflow.model_validate(_plain(tree))
    except ValidationError as e:
        first = e.errors()[0]
        loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and "[" in p))
        field = ".".join(str(p) for p in loc) or "workflow"
        message = first["msg"].removeprefix("Value error, ")
        raise DefinitionError(source, _line(tree, loc), f"{field}: {message}") from e
    _check_dag(workflow, tree, source)
    _check_expressions(workflow, tree, source)
    return workflow


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _line(tree: Any, loc: Sequence[Any]) -> int | None:
    """The 1-based line of ``loc`` in a ruamel tree (the deepest part that exists)."""
    line: int | None = None
    node = tree
    for part in loc:
        lc = getattr(node, "lc", None)
        try:
            if isinstance(node, Mapping) and part in node:
                if lc is not None:
                    line = lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                if lc is not None:
                    line = lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        except (KeyError, IndexError, TypeError):
            break
    if line is None:
        lc = getattr(tree, "lc", None)
        line = lc.line + 1 if lc is not None else None
    return line


def _step_line(tree: Mapping[str, Any], index: int, *keys: str) -> int | None:
    return _line(tree, ("steps", index, *keys))


def _check_dag(workflow: Workflow, tree: Mapping[str, Any], source: str) -> None:
    seen: dict[str, int] = {}
    for i, step in enumerate(workflow.steps):
        if step.id in seen:
            raise DefinitionError(
                source, _step_line(tree, i, "id"), f"step id {step.id!r} is used twice"
            )
        seen[step.id] = i
    for i, step in enumerate(workflow.steps):
        for need in step.needs:
            if need not in seen:
                raise DefinitionError(
                    source,
                    _step_line(tree, i, "needs"),
                    f"step {step.id!r} needs unknown step {need!r}; known: {sorted(seen)}",
                )
            if need == step.id:
                raise DefinitionError(
                    source, _step_line(tree, i, "needs"), f"step {step.id!r} needs itself"
                )
    cycle = _find_cycle(workflow.steps)
    if cycle is not None:
        raise DefinitionError(
            source,
            _step_line(tree, seen[cycle[0]], "needs"),
            "the needs form a cycle: " + " -> ".join(cycle),
        )


def _find_cycle(steps: Sequence[Step]) -> list[str] | None:
    needs = {s.id: s.needs for s in steps}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for need in needs[node]:
            if state.get(need) == 1:
                return [*path[path.index(need) :], need]
            if need not in state:
                found = visit(need)
                if found is not None:
                    return found
        path.pop()
        state[node] = 2
        return None

    for step in steps:
        if step.id not in state:
            found = visit(step.id)
            if found is not None:
                return found
    return None


def order_steps(workflow: Workflow) -> dict[str, set[str]]:
    """Each step's ancestors (everything on a needs path before it)."""
    needs = {s.id: s.needs for s in workflow.steps}
    ancestors: dict[str, set[str]] = {}

    def of(node: str) -> set[str]:
        if node not in ancestors:
            found: set[str] = set()
            for need in needs[node]:
                found.add(need)
                found |= of(need)
            ancestors[node] = found
        return ancestors[node]

    for step in workflow.steps:
        of(step.id)
    return ancestors


def _strings(value: Any, keys: tuple[Any, ...]) -> Iterator[tuple[str, tuple[Any, ...]]]:
    if isinstance(value, str):
        yield value, keys
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _strings(v, (*keys, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*keys, i))


def _check_expressions(workflow: Workflow, tree: Mapping[str, Any], source: str) -> None:
    ancestors = order_steps(workflow)
    for i, step in enumerate(workflow.steps):
        places: list[tuple[str, tuple[Any, ...], set[str]]] = []
        visible = ancestors[step.id]
        if step.when is not None:
            text = step.when.strip()
            if "${{" not in text:
                text = "${{ " + text + " }}"
            places.append((text, ("when",), visible))
        for text, keys in _strings(step.with_, ("with",)):
            places.append((text, keys, visible))
        if step.compensate is not None:
            for text, keys in _strings(step.compensate.with_, ("compensate", "with")):
                places.append((text, keys, visible | {step.id}))
        for text, keys, can_see in places:
            where = f"step {step.id!r} {'.'.join(str(k) for k in keys)}"
            line = _step_line(tree, i, *keys)
            try:
                template = parse_template(text)
            except ExpressionError as e:
                raise DefinitionError(source, line, f"{where}: {e}") from e
            if template is None:
                continue
            for expr, offset in template.exprs():
                for path, column in expr.paths():
                    problem = _bad_path(path, can_see, workflow)
                    if problem:
                        col = offset + column
                        raise DefinitionError(
                            source, line, f"{where}, column {col}: {problem} in {text!r}"
                        )


def _bad_path(path: tuple[Any, ...], visible: set[str], workflow: Workflow) -> str | None:
    if path[0] == "inputs":
        if len(path) < 2:
            return "name an input: inputs.NAME"
        if workflow.inputs and path[1] not in workflow.inputs:
            return f"unknown input {path[1]!r}; declared: {sorted(workflow.inputs)}"
        return None
    if len(path) < 3 or path[2] not in ("output", "status", "approved"):
        return "refer to a step as steps.ID.output[.FIELD] or steps.ID.status"
    step_id = path[1]
    if not any(s.id == step_id for s in workflow.steps):
        return f"unknown step {step_id!r}"
    if step_id not in visible:
        return f"step {step_id!r} is not among this step's needs (add it to needs)"
    return None
