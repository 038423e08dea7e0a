"""The resolver's per-file answers (issue 14, one analysis per file): a receiver's type is
worked out once per binding, a call's wiring once per call, and nothing outlives the facts
it was worked out from."""

from __future__ import annotations

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, ScopeProvider

from ml_switcheroo.analysis.resolver import BindingProvider, NodeMemo, Resolver
from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from ml_switcheroo.rewrite import dispatch
from ml_switcheroo.rewrite.dispatch import Wiring, wired_call
from ml_switcheroo.targets.catalogue import load_semantic_map
from tests.support import SGD_MODEL, run_codemod

SOURCE = """\
import torch
opt = torch.optim.SGD(ps, lr=0.1)
opt.zero_grad()
opt.step()
"""


def _resolver_and_calls(source: str) -> tuple[Resolver, list[cst.Call]]:
    wrapper = MetadataWrapper(cst.parse_module(source))
    resolver = Resolver(
        load_semantic_map(), wrapper.resolve(ScopeProvider), wrapper.resolve(BindingProvider)
    )
    calls: list[cst.Call] = []

    class Calls(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            calls.append(node)

    wrapper.module.visit(Calls())
    return resolver, calls


def _receivers(calls: list[cst.Call]) -> list[cst.BaseExpression]:
    return [c.func.value for c in calls if isinstance(c.func, cst.Attribute)]


def test_a_receiver_bound_once_is_typed_once_for_all_its_uses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolver, calls = _resolver_and_calls(SOURCE)
    worked_out: list[object] = []
    binding_type = resolver._binding_type
    monkeypatch.setattr(
        resolver, "_binding_type", lambda a, d: worked_out.append(a) or binding_type(a, d)
    )
    uses = [r for r in _receivers(calls) if isinstance(r, cst.Name) and r.value == "opt"]
    types = [resolver.receiver_type(use, None) for use in uses]
    assert len(uses) == 2
    assert [t.name if t else None for t in types] == ["torch.optim.Optimizer"] * 2
    assert len(worked_out) == 1


def test_a_call_is_wired_once_however_often_it_is_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolver, calls = _resolver_and_calls(SOURCE)
    semantic_map = load_semantic_map()
    wiring = Wiring(semantic_map, semantic_map.apis, frozenset({"torch"}))
    asked: list[cst.Call] = []
    inner = dispatch._wired_call
    monkeypatch.setattr(
        dispatch, "_wired_call", lambda w, r, c, e: asked.append(c) or inner(w, r, c, e)
    )
    step = calls[-1]
    first = wired_call(wiring, resolver, step, None)
    second = wired_call(wiring, resolver, step, None)
    assert first is not None and first == second
    assert asked == [step]


def test_setting_the_repository_facts_forgets_the_answers_given_without_them() -> None:
    resolver, calls = _resolver_and_calls(SOURCE)
    assert resolver.remember("question", (calls[0],), lambda: "before") == "before"
    resolver.cross_file = None
    assert resolver.remember("question", (calls[0],), lambda: "after") == "after"


def test_a_memo_answers_each_object_for_itself() -> None:
    memo = NodeMemo()
    first, second = cst.Name("a"), cst.Name("a")  # equal, not the same node
    assert memo.answer("question", (first,), lambda: 1) == 1
    assert memo.answer("question", (second,), lambda: 2) == 2
    assert memo.answer("question", (first,), lambda: 3) == 1
    assert memo.answer("another question", (first,), lambda: 4) == 4


@pytest.mark.parametrize("command", [TorchToOptax, TorchToNNX])
def test_the_rewrite_is_answered_the_planners_wiring_of_each_call(
    monkeypatch: pytest.MonkeyPatch, command: type
) -> None:
    asked: list[int] = []
    inner = dispatch._wired_call
    monkeypatch.setattr(
        dispatch, "_wired_call", lambda w, r, c, e: asked.append(id(c)) or inner(w, r, c, e)
    )
    source = (
        SGD_MODEL
        + "for x in data:\n    opt.zero_grad()\n    model(x).sum().backward()\n    opt.step()\n"
    )
    output = run_codemod(source, command)
    assert "optax.sgd(" in output  # the constructor was translated: the rewrite used the wiring
    assert asked and len(asked) == len(set(asked))
