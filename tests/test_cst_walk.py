"""``analysis/cst_walk.py`` against libcst itself: the same children, the same preorder, the
same visit/leave events as ``tree.visit(visitor)``."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest

from ml_switcheroo.analysis import cst_walk

# Syntax whose fields libcst visits in another order than it declares them, or only sometimes.
_SYNTAX = '''
import a.b as c
from . import (x, y)
from m import *
@decorator(arg)
@other
async def f[T: int = str](p, /, q: int = 1, *args, r, **kw) -> "T":
    """doc"""
    global g
    y = a if b else c  # comment
    z = [i for i in range(3) if i] + {k: v for k, v in d.items()}
    w = f"{value!r:>{width}} {x=}"
    lam = lambda s, *, t=2: s @ t
    async with open(p) as h, q:
        async for item in h:
            await item
    match y:
        case [1, *rest] if rest:
            pass
        case {"k": v, **others}:
            pass
        case Point(x=0) | None:
            pass
    try:
        del z[1:2, ::3]
    except* (ValueError, TypeError) as e:
        raise e from None
    finally:
        yield from w
    while (n := len(w)) > 0:
        n -= 1
    else:
        return not n
class C(B, metaclass=M):
    x: int = 1
type Alias[U] = list[U]
'''


def _modules() -> list[cst.Module]:
    sources = [_SYNTAX]
    package = Path(cst_walk.__file__).parent.parent
    sources.append(Path(cst_walk.__file__).read_text())
    sources += [p.read_text() for p in sorted((package.parent / "examples").glob("*.py"))]
    return [cst.parse_module(s) for s in sources]


MODULES = _modules()


def _libcst_preorder(node: cst.CSTNode) -> list[cst.CSTNode]:
    found = [node]
    for child in node.children:
        found.extend(_libcst_preorder(child))
    return found


def test_children_are_libcsts_in_its_order() -> None:
    for module in MODULES:
        for node in cst_walk.walk(module):
            expected = node.children
            got = cst_walk.children(node)
            assert len(got) == len(expected), type(node).__name__
            assert all(a is b for a, b in zip(got, expected, strict=True)), type(node).__name__


def test_children_is_a_new_list_each_time() -> None:
    call = cst.parse_expression("f(x, y)")
    first = cst_walk.children(call)
    first.reverse()  # ``visit`` reverses what it is given in place
    assert cst_walk.children(call) == list(call.children)


def test_walk_is_the_preorder_of_children() -> None:
    for module in MODULES:
        got = list(cst_walk.walk(module))
        expected = _libcst_preorder(module)
        assert len(got) == len(expected)
        assert all(a is b for a, b in zip(got, expected, strict=True))


def test_walk_yields_a_stop_node_but_not_what_it_holds() -> None:
    module = cst.parse_module("def f():\n    x = 1\ny = lambda: z\n")
    names = [
        n.value
        for n in cst_walk.walk(module, (cst.FunctionDef, cst.Lambda))
        if isinstance(n, cst.Name)
    ]
    assert names == ["y"]
    assert (
        sum(
            isinstance(n, (cst.FunctionDef, cst.Lambda))
            for n in cst_walk.walk(module, (cst.FunctionDef, cst.Lambda))
        )
        == 2
    )


class _Recorder(cst.CSTVisitor):
    """Records every visit and leave; skips the bodies of functions, nothing of classes."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, int]] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.events.append(("visit", id(node)))
        return False

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.events.append(("leave", id(original_node)))

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.events.append(("visit", id(node)))

    def visit_Name(self, node: cst.Name) -> bool:
        self.events.append(("visit", id(node)))
        return True

    def leave_Call(self, original_node: cst.Call) -> None:
        self.events.append(("leave", id(original_node)))


class _Overriding(_Recorder):
    """``on_visit`` overridden: a None return skips the children, as in libcst."""

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.events.append(("on_visit", id(node)))
        return None if isinstance(node, cst.If) else super().on_visit(node)  # type: ignore[return-value]

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.events.append(("on_leave", id(original_node)))
        super().on_leave(original_node)


class _AttributeMethods(_Recorder):
    def visit_Call_func(self, node: cst.Call) -> None:
        self.events.append(("func", id(node)))


@pytest.mark.parametrize("visitor_class", [_Recorder, _Overriding, _AttributeMethods])
def test_visit_gives_libcsts_events(visitor_class: type[_Recorder]) -> None:
    for module in MODULES:
        ours, theirs = visitor_class(), visitor_class()
        cst_walk.visit(module, ours)
        module.visit(theirs)
        assert ours.events == theirs.events


def test_a_visitor_with_attribute_methods_is_left_to_libcst() -> None:
    module = cst.parse_module("f(x)\n")
    visitor = _AttributeMethods()
    cst_walk.visit(module, visitor)
    assert ("func", id(module.body[0].body[0].value)) in visitor.events  # type: ignore[attr-defined]


def test_libcsts_no_op_methods_are_not_looked_up_as_methods() -> None:
    call = cst.parse_expression("f(x)")
    assert cst_walk.visit_method(_Recorder(), call) is None
    assert cst_walk.leave_method(_Recorder(), call) is _Recorder.leave_Call


def test_a_visitor_class_made_per_call_is_not_kept_by_its_table() -> None:
    import gc
    import weakref

    class _Local(_Recorder):
        pass

    cst_walk.visit(MODULES[0], _Local())
    gone = weakref.ref(_Local)
    del _Local
    gc.collect()
    assert gone() is None


class _Nested(_Recorder):
    """Walks a function's body itself with ``child.visit(self)``, as libcst's scope visitor
    does; ``on_leave`` overridden."""

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.events.append(("visit", id(node)))
        node.body.visit(self)
        return False

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.events.append(("on_leave", id(original_node)))
        super().on_leave(original_node)


def _in_place(monkeypatch, visitor_class: type) -> None:  # type: ignore[no-untyped-def]
    libcst_visit = cst.CSTNode.visit

    def visit(node: cst.CSTNode, visitor: cst.CSTVisitor) -> cst.CSTNode:
        if type(visitor) is visitor_class:
            return cst_walk.visit_in_place(node, visitor, libcst_visit)
        return libcst_visit(node, visitor)

    monkeypatch.setattr(cst.CSTNode, "visit", visit)


@pytest.mark.parametrize("visitor_class", [_Nested, _Overriding, _AttributeMethods])
def test_visit_in_place_gives_libcsts_events(monkeypatch, visitor_class: type) -> None:
    expected = []
    for module in MODULES:
        theirs = visitor_class()
        assert module.visit(theirs) is module
        expected.append(theirs.events)
    _in_place(monkeypatch, visitor_class)
    for module, events in zip(MODULES, expected, strict=True):
        ours = visitor_class()
        assert module.visit(ours) is module
        assert ours.events == events


def test_visit_in_place_copies_no_node(monkeypatch) -> None:
    built: list[str] = []
    _in_place(monkeypatch, _Nested)
    monkeypatch.setattr(cst.Name, "_validate", lambda self: built.append(self.value))
    MODULES[0].visit(_Nested())
    assert built == []
