"""``analysis/dominating.dominating_assignment``: the one ``name = value`` a read of ``m``
sees, proven from the tree; unsure (another binding on some path, another scope): None."""

from __future__ import annotations

import libcst as cst
import pytest

from ml_switcheroo.analysis.dominating import dominating_assignment
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
