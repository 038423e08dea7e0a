"""``analysis/reaching.runs_after``: a binding of a function's scope provably runs after a
read of the name only when it is later in source order and no loop holds both (or it is the
target of the assignment whose right side holds the read)."""

from __future__ import annotations

import libcst as cst
import pytest

from ml_switcheroo.analysis.reaching import runs_after


def _read_and_binding(source: str) -> tuple[cst.FunctionDef, cst.Name, cst.Name]:
    """The function, the read of `m` marked `m` in `f(m)`, and the last binding of `m`."""
    function = cst.ensure_type(cst.parse_module(source).body[0], cst.FunctionDef)
    reads: list[cst.Name] = []
    targets: list[cst.Name] = []

    class Finder(cst.CSTVisitor):
        def visit_Arg(self, node: cst.Arg) -> None:
            if isinstance(node.value, cst.Name) and node.value.value == "m":
                reads.append(node.value)

        def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
            if isinstance(node.target, cst.Name) and node.target.value == "m":
                targets.append(node.target)

        def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
            targets.append(cst.ensure_type(node.target, cst.Name))

    function.visit(Finder())
    return function, reads[0], targets[-1]


AFTER = {
    "the_target_of_the_call_reading_it": "def g(m):\n    m = f(m)\n",
    "a_later_statement": "def g(m):\n    f(m)\n    x = 1\n    m = 2\n",
    "after_the_loop_holding_the_read": "def g(m):\n    for i in r:\n        f(m)\n    m = 2\n",
}

NOT_AFTER = {
    "in_a_loop_holding_both": "def g(m):\n    for i in r:\n        m = f(m)\n",
    "in_a_while_loop_holding_both": "def g(m):\n    while c:\n        f(m)\n        m = 2\n",
    "an_earlier_statement": "def g(m):\n    m = 2\n    f(m)\n",
    "a_walrus": "def g(m):\n    f(m) if (m := 2) else 0\n",
    "in_a_nested_function": "def g(m):\n    def h():\n        m = f(m)\n",
}


@pytest.mark.parametrize("name", sorted(AFTER))
def test_a_binding_after_the_read_runs_after_it(name: str) -> None:
    assert runs_after(*_read_and_binding(AFTER[name]))


@pytest.mark.parametrize("name", sorted(NOT_AFTER))
def test_a_binding_that_may_run_first_is_not_after_it(name: str) -> None:
    assert not runs_after(*_read_and_binding(NOT_AFTER[name]))
