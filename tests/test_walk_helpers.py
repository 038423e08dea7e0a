"""The walks the engine and the planner make per statement (``names_in``, ``calls_in``,
``plan._mentions``, ``Exits``) against the libcst visitors they replace, on the walk tests' sources."""

from __future__ import annotations

from collections import Counter

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.exits import Exits
from ml_switcheroo.analysis.plan import _mentions
from ml_switcheroo.rewrite.statements import calls_in, names_in
from ml_switcheroo.spec.signature import code_of, dotted_name
from tests.test_cst_walk import MODULES


def _names_by_visitor(node: cst.CSTNode) -> Counter[str]:
    found: Counter[str] = Counter()

    class _Count(cst.CSTVisitor):
        def visit_Import(self, node: cst.Import) -> bool:
            return False

        def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
            return False

        def visit_Name(self, name: cst.Name) -> None:
            found[name.value] += 1

        def visit_Attribute(self, attribute: cst.Attribute) -> None:
            dotted = dotted_name(attribute)
            if dotted is not None:
                found[dotted] += 1

    node.visit(_Count())
    return found


def _statements(module: cst.Module) -> list[cst.CSTNode]:
    return [n for n in cst_walk.walk(module) if isinstance(n, cst.BaseStatement)]


def test_names_in_counts_what_the_visitor_counts_in_its_order() -> None:
    for module in MODULES:
        for node in [module, *_statements(module)]:
            ours, theirs = names_in(node), _names_by_visitor(node)
            assert ours == theirs
            assert list(ours) == list(theirs)


def test_names_in_leaves_imports_out() -> None:
    module = cst.parse_module("import a.b as c\nfrom m import x\nc.d(x)\n")
    assert names_in(module) == Counter({"c.d": 1, "c": 1, "d": 1, "x": 1})


class _Calls(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[cst.Call] = []

    def visit_Call(self, node: cst.Call) -> None:
        self.calls.append(node)


def test_calls_in_is_every_call_in_preorder() -> None:
    for module in MODULES:
        visitor = _Calls()
        module.visit(visitor)
        got = calls_in(module)
        assert len(got) == len(visitor.calls)
        assert all(a is b for a, b in zip(got, visitor.calls, strict=True))


def test_mentions_is_a_name_or_attribute_written_as_the_text() -> None:
    module = MODULES[0]
    texts = {
        code_of(n).strip()
        for n in cst_walk.walk(module)
        if isinstance(n, (cst.Name, cst.Attribute))
    }
    for statement in _statements(module):
        for text in [*texts, "nowhere", "a.b.c"]:
            expected = any(
                isinstance(n, (cst.Name, cst.Attribute)) and code_of(n).strip() == text
                for n in cst_walk.walk(statement)
            )
            assert _mentions(statement, text) is expected, text


def test_mentions_sees_a_parenthesized_name_as_its_code() -> None:
    statement = cst.parse_statement("f((sched), opt.x)\n")
    assert _mentions(statement, "(sched)") and not _mentions(statement, "sched")
    assert _mentions(statement, "opt.x") and not _mentions(statement, "x.opt")


def _exits_by_visitor(module: cst.Module, text: str) -> list[cst.CSTNode]:
    """The planner's former walk per scheduler: each return and call mentioning ``text``."""
    found: list[cst.CSTNode] = []

    class _Find(cst.CSTVisitor):
        def visit_Return(self, node: cst.Return) -> None:
            if node.value is not None and _mentions(node.value, text):
                found.append(node)

        def visit_Call(self, node: cst.Call) -> None:
            if any(_mentions(a.value, text) for a in node.args):
                found.append(node)

    module.visit(_Find())
    return found


def test_exits_are_the_returns_and_calls_mentioning_the_text_in_preorder() -> None:
    for module in MODULES:
        exits = Exits(module)
        texts = {
            code_of(n).strip()
            for n in cst_walk.walk(module)
            if isinstance(n, (cst.Name, cst.Attribute))
        }
        spread = sorted(texts)[:: max(1, len(texts) // 8)]  # the old walk is slow: a sample
        for text in [*spread, "nowhere", "self.sched"]:
            expected = _exits_by_visitor(module, text)
            got = exits.of(text)
            assert len(got) == len(expected), text
            assert all(a is b for a, b in zip(got, expected, strict=True)), text


def test_exits_skip_a_keyword_and_the_called_function() -> None:
    module = cst.parse_module("def f():\n    g(sched=1)\n    sched(x)\n    return h(k(sched))\n")
    kinds = [type(place).__name__ for place in Exits(module).of("sched")]
    assert kinds == ["Return", "Call", "Call"]  # the return, h(...), k(...)
