"""``analysis/dominating.dominating_assignment``: the one ``name = value`` a read of ``m``
sees, proven from the tree; unsure (another binding on some path, another scope): None."""

from __future__ import annotations

import libcst as cst
import pytest

from ml_switcheroo.analysis.dominating import dominating_assignment, unrebound_after
from ml_switcheroo.analysis.parents import parent_map
from ml_switcheroo.spec.signature import code_of


def _seen(source: str) -> str | None:
    """The value of the assignment the read of ``m`` in ``m.module(x)`` sees ("" if none)."""
    module = cst.parse_module(source)
    parents = parent_map(module)
    reads: list[cst.Name] = []

    class Finder(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> None:
            if node.attr.value == "module" and isinstance(node.value, cst.Name):
                reads.append(node.value)

    module.visit(Finder())
    assign = dominating_assignment(reads[0], parents.get)
    return code_of(assign.value).strip() if assign is not None else None


SEEN = {  # the source, the value the read sees
    "a_later_statement": ("m = a()\nm = W(m)\nm.module(x)\n", "W(m)"),
    "in_a_loop_after_it": ("m = a()\nm = W(m)\nfor b in c:\n    y = m.module(b)\n", "W(m)"),
    "in_a_function": ("def f(m):\n    m = W(m)\n    if p:\n        m.module(x)\n", "W(m)"),
    "a_rebinding_before_it": ("m = W(a())\nm = W(m)\nm.module(x)\n", "W(m)"),
    "in_a_loop_body_after_it": ("for b in c:\n    m = W(a())\n    m.module(b)\n", "W(a())"),
    "the_last_of_two": ("m = W(a())\nn = 1\nm = V(b())\nm.module(x)\n", "V(b())"),
}

NOT_SEEN = {
    "under_an_if": "m = a()\nif d:\n    m = W(m)\nm.module(x)\n",
    "rebound_under_an_if_between": "m = W(a())\nif d:\n    m = b()\nm.module(x)\n",
    "rebound_in_the_loop_after_the_read": "m = W(a())\nfor b in c:\n    m.module(b)\n    m = d()\n",
    "a_loop_target": "m = W(a())\nfor m in c:\n    m.module(x)\n",
    "a_tuple_rebinding": "m = W(a())\nm, n = c\nm.module(x)\n",
    "a_with_target": "m = W(a())\nwith c as m:\n    m.module(x)\n",
    "a_walrus": "m = W(a())\nif (m := c):\n    m.module(x)\n",
    "a_global_elsewhere": "m = W(a())\ndef g():\n    global m\n    m = c\ng()\nm.module(x)\n",
    "in_a_nested_function": "m = W(a())\ndef g():\n    return m.module(x)\n",
    "in_a_lambda": "m = W(a())\ng = lambda: m.module(x)\n",
    "a_parameter_only": "def f(m):\n    m.module(x)\n",
    "an_augmented_assignment": "m = W(a())\nm += c\nm.module(x)\n",
    "two_targets": "m = n = W(a())\nm.module(x)\n",
    "in_a_try_after_it": "try:\n    m = W(a())\nexcept E:\n    pass\nm.module(x)\n",
}


@pytest.mark.parametrize("name", sorted(SEEN))
def test_the_one_assignment_before_the_read_is_seen(name: str) -> None:
    source, value = SEEN[name]
    assert _seen(source) == value


@pytest.mark.parametrize("name", sorted(NOT_SEEN))
def test_another_binding_on_some_path_is_unproven(name: str) -> None:
    assert _seen(NOT_SEEN[name]) is None


# ``unrebound_after``: from ``o = X(m.parameters())`` (the statement, ``o`` kept) to the read of
# ``m`` in ``m.module(x)``, neither ``m`` nor ``o`` is bound again on any path.
def _unrebound(source: str) -> bool:
    module = cst.parse_module(source)
    parents = parent_map(module)
    found: dict[str, list[cst.CSTNode]] = {"reads": [], "lines": []}

    class Finder(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> None:
            if node.attr.value == "module" and isinstance(node.value, cst.Name):
                found["reads"].append(node.value)

        def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
            if "parameters()" in code_of(node):
                found["lines"].append(node)

    module.visit(Finder())
    statement, read = found["lines"][0], found["reads"][0]
    return unrebound_after(statement, read, ("m", "o"), ("o",), parents.get)  # type: ignore[arg-type]


OPTIMIZER = "if p:\n    m = a()\nelse:\n    m = b()\no = X(m.parameters())\n"
UNREBOUND = {
    "two_branches_then_a_read": OPTIMIZER + "m.module(x)\n",
    "in_a_loop_after_it": OPTIMIZER + "for e in c:\n    y = m.module(e)\n",
    "in_a_function_body": "def f(p):\n    m = a() if p else b()\n    o = X(m.parameters())\n"
    "    for e in c:\n        if e:\n            m.module(e)\n",
    "a_method_call_between": OPTIMIZER + "m.load(s)\no.load(t)\nm.module(x)\n",
}
REBOUND = {
    "under_an_if_between": OPTIMIZER + "if d:\n    m = c()\nm.module(x)\n",
    "in_the_loop_after_the_read": OPTIMIZER + "for e in c:\n    m.module(e)\n    m = d()\n",
    "the_optimizer_rebound": OPTIMIZER + "o = Y(m.parameters())\nm.module(x)\n",
    "deleted": OPTIMIZER + "del m\nm = a()\nm.module(x)\n",
    "a_global_elsewhere": OPTIMIZER + "def g():\n    global m\n    m = c\ng()\nm.module(x)\n",
    "in_a_nested_function": OPTIMIZER + "def g():\n    return m.module(x)\n",
    "before_the_optimizer": "m = a()\nm.module(x)\no = X(m.parameters())\n",
    "the_optimizer_in_a_branch": "m = a()\nif p:\n    o = X(m.parameters())\nm.module(x)\n",
    "the_line_rebinds_the_model": "m = a()\no, m = X(m.parameters()), b()\nm.module(x)\n",
    "a_walrus_between": OPTIMIZER + "if (m := c):\n    pass\nm.module(x)\n",
}


@pytest.mark.parametrize("name", sorted(UNREBOUND))
def test_a_name_not_bound_again_since_the_statement_holds_its_object(name: str) -> None:
    assert _unrebound(UNREBOUND[name])


@pytest.mark.parametrize("name", sorted(REBOUND))
def test_a_name_bound_again_or_read_elsewhere_is_not_proven(name: str) -> None:
    assert not _unrebound(REBOUND[name])
