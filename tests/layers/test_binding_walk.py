"""``BindingProvider`` finds its facts in ``visit_Module`` by a walk of the tree's fields; the
facts are those libcst's own walk of the tree gives its visitor methods."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest

from ml_switcheroo.analysis import resolver
from ml_switcheroo.analysis.resolver import BindingProvider

_TRICKY = """
import torch

@decorate(lambda: helper(1))
class Trainer(Base, metaclass=make(2)):
    opt: "torch.optim.Optimizer" = None

    def __init__(self, model, *, lr=default(3)):
        self.opt, self.other = torch.optim.SGD(model.parameters(), lr=lr), 1
        self.opt = first = second = torch.optim.Adam(model.parameters())
        self.count += 1
        self.sched: object = build(self.opt)
        try:
            self.opt = torch.optim.AdamW(p)
        except ValueError as exc:
            self.opt = fallback(exc)
        finally:
            self.done = True
        match model:
            case Net(x) if check(x):
                self.opt = pick(x)
            case _:
                pass

        def inner(a):
            self.opt = a
            class Local:
                def f(me):
                    me.opt = other()
                    self.opt = third()
            return Local

    @staticmethod
    def make(x):
        x.opt = torch.optim.SGD(p)
        return [y := g(i) for i in range(x)]

for i, (a, b) in enumerate(pairs()):
    total = a.step(b)
with open(f) as handle, lock():
    data = handle.read()
"""


class _LibcstWalked(BindingProvider):
    """The provider's methods as libcst's walk calls visitor methods."""

    def visit_Module(self, node: cst.Module) -> None:
        return None

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._enter_ClassDef(node)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._leave_ClassDef(original_node)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._enter_FunctionDef(node)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._leave_FunctionDef(original_node)

    def visit_Call(self, node: cst.Call) -> None:
        self._enter_Call(node)

    def visit_Assign(self, node: cst.Assign) -> None:
        self._enter_Assign(node)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._enter_AugAssign(node)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._enter_AnnAssign(node)


def _facts(provider: type, module: cst.Module) -> tuple[object, list[int]]:
    """The facts by node identity, and the order of the classes and the module (what the
    resolver reads in order: ``Resolver.class_family``)."""
    found = cst.MetadataWrapper(module, unsafe_skip_copy=True).resolve(provider)
    facts = {id(node): (type(node).__name__, _identities(value)) for node, value in found.items()}
    ordered = [id(node) for node in found if isinstance(node, (cst.ClassDef, cst.Module))]
    return facts, ordered


def _identities(value: object) -> object:
    """``value`` with every node replaced by its identity (nodes compare by identity)."""
    if isinstance(value, resolver.ClassAttributes):
        return {k: [id(v) for v in values] for k, values in value.values.items()}
    if isinstance(value, resolver.CallSite):
        return ("call", id(value.call))
    if isinstance(value, cst.CSTNode):
        return id(value)
    return value


_SOURCES = {
    "tricky": _TRICKY,
    "plan.py": Path(resolver.__file__).with_name("plan.py").read_text(encoding="utf-8"),
}


@pytest.mark.parametrize("name", sorted(_SOURCES))
def test_bindings_found_without_libcsts_walk_are_those_of_its_walk(name: str) -> None:
    module = cst.parse_module(_SOURCES[name])
    assert _facts(BindingProvider, module) == _facts(_LibcstWalked, module)


def test_binding_provider_visits_only_the_module() -> None:
    names = set(BindingProvider().get_visitors())
    assert names == {"visit_Module", "leave_Module"}
