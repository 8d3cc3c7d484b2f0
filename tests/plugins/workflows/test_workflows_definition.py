"""Workflow files: the §11 format validated, errors with line and reason, expressions
checked at load time naming step and column, DAG checks."""

from __future__ import annotations

import pytest
from orrery_workflows import DefinitionError, ExpressionError
from orrery_workflows._expr import parse, parse_template, render
from orrery_workflows._loader import load_yaml

ONBOARDING = """\
name: onboarding
inputs: {customer: {type: object}}
steps:
  - id: create_account
    call: accounts.create
    with: {name: "${{ inputs.customer.name }}"}
    compensate: {call: accounts.delete, with: {id: "${{ steps.create_account.output.id }}"}}
    retry: {attempts: 3, backoff: 1.0}
    timeout: 30
  - id: approve
    needs: [create_account]
    approval: {approvers: [ops], timeout: 3600, on_timeout: deny}
  - id: notify
    needs: [approve]
    when: "${{ steps.approve.output.approved }}"
    call: notify.send
"""


def refused(text: str) -> DefinitionError:
    with pytest.raises(DefinitionError) as caught:
        load_yaml(text, "f.yaml")
    return caught.value


def test_the_design_example_loads() -> None:
    wf = load_yaml(ONBOARDING)
    assert wf.name == "onboarding" and wf.version == 1
    assert [s.id for s in wf.steps] == ["create_account", "approve", "notify"]
    assert wf.step("approve").kind == "approval"
    assert wf.step("create_account").retry.attempts == 3
    assert wf.step("create_account").compensate is not None


def test_hitl_is_an_approval_with_defaults() -> None:
    wf = load_yaml("name: x\nsteps:\n  - id: ok\n    hitl: true\n")
    assert wf.step("ok").kind == "approval"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("name: Bad Name\nsteps:\n  - {id: a, call: x.y}\n", 1, "name"),
        ("name: x\nsteps:\n  - id: a\n    call: x.y\n    retyr: {}\n", 5, "retyr"),
        ("name: x\nsteps:\n  - id: a\n    call: x.y\n    retry: {attempts: 0}\n", 5, "attempts"),
        ("name: x\nsteps:\n  - id: a\n  - id: b\n    call: x.y\n", 3, "exactly one of"),
        ("name: x\nsteps:\n  - {id: a, call: x.y}\n  - {id: a, call: x.z}\n", 4, "used twice"),
        ("name: x\nsteps:\n  - id: a\n    call: x.y\n    needs: [nope]\n", 5, "'nope'"),
        (
            "name: x\nsteps:\n  - {id: a, call: x.y, needs: [b]}\n"
            "  - {id: b, call: x.y, needs: [a]}\n",
            3,
            "cycle: a -> b -> a",
        ),
        ("name: x\nsteps: [\n", 3, "not valid YAML"),
        ("- just a list\n", 1, "mapping"),
    ],
)
def test_refusals_name_the_line_and_reason(text: str, line: int, words: str) -> None:
    error = refused(text)
    assert error.line == line, error
    assert words in str(error)
    assert str(error).startswith(f"f.yaml:{line}: ")


def test_a_bad_expression_names_the_step_and_column() -> None:
    error = refused(
        "name: x\nsteps:\n  - id: a\n    call: x.y\n    with:\n      v: 'id ${{ inputs.x == }}'\n"
    )
    assert error.line == 6
    assert "step 'a' with.v" in str(error) and "column 20" in str(error)


def test_an_expression_may_only_read_steps_on_its_needs_path() -> None:
    text = (
        "name: x\nsteps:\n  - {id: a, call: x.y}\n  - {id: b, call: x.y}\n"
        "  - id: c\n    call: x.y\n    needs: [a]\n    with: {v: '${{ steps.b.output.v }}'}\n"
    )
    error = refused(text)
    assert error.line == 8 and "step 'b' is not among this step's needs" in str(error)
    assert "unknown step 'zz'" in str(refused(text.replace("steps.b", "steps.zz")))
    ok = text.replace("needs: [a]", "needs: [a, b]")
    assert load_yaml(ok).step("c").needs == ["a", "b"]


def test_an_undeclared_input_is_refused_when_inputs_are_declared() -> None:
    error = refused(ONBOARDING.replace("inputs.customer.name", "inputs.client.name"))
    assert error.line == 6 and "unknown input 'client'" in str(error)


def test_when_may_be_a_bare_expression() -> None:
    wf = load_yaml("name: x\nsteps:\n  - {id: a, call: x.y, when: 'not false'}\n")
    assert wf.step("a").when == "not false"
    assert "unknown name" in str(refused("name: x\nsteps:\n  - {id: a, call: x.y, when: 'foo'}\n"))


SCOPE = {
    "inputs": {"n": 3, "name": "ada", "tags": ["a", "b"], "deep": {"k": [1, {"z": True}]}},
    "steps": {"s": {"output": {"ok": True, "count": 0}, "status": "completed"}},
}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("inputs.n == 3", True),
        ("inputs.n > 2 and inputs.n < 4", True),
        ("not steps.s.output.ok or inputs.n >= 10", False),
        ("!(inputs.n != 3) && true", True),
        ("'b' in inputs.tags", True),
        ("inputs.deep.k[1].z", True),
        ("inputs.deep['k'][0]", 1),
        ("inputs.missing.deeper", None),
        ("inputs.missing > 1", False),
        ('steps.s.status == "completed"', True),
        ("-1.5", -1.5),
        ("null == inputs.nothing", True),
    ],
)
def test_the_evaluator(text: str, value: object) -> None:
    assert parse(text).evaluate(SCOPE) == value


def test_templates_keep_types_when_whole_and_interpolate_otherwise() -> None:
    assert render({"n": "${{ inputs.n }}", "l": ["hi ${{ inputs.name }}!"]}, SCOPE) == {
        "n": 3,
        "l": ["hi ada!"],
    }
    assert render("plain", SCOPE) == "plain"


@pytest.mark.parametrize(
    ("text", "column"),
    [("${{ inputs. }}", 13), ("${{ foo }}", 5), ("${{ 1 == }}", 10), ("${{ a $ }}", 7)],
)
def test_expression_errors_carry_the_column(text: str, column: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_template(text)
    assert caught.value.column == column


def test_there_is_no_eval() -> None:
    with pytest.raises(ExpressionError):
        parse("__import__('os').system('true')")
