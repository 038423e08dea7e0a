"""Per-file fixed costs removed outside the engine: libcst's scan of the batchable metadata
providers for their visitor methods is done once per class (``command_support``)."""

from __future__ import annotations

import libcst as cst
import pytest
from libcst import BatchableCSTVisitor
from libcst.metadata import ExpressionContextProvider, ParentNodeProvider

from ml_switcheroo.analysis.resolver import BindingProvider
from ml_switcheroo.rewrite import command_support


@pytest.mark.parametrize("provider", [BindingProvider, ExpressionContextProvider])
def test_visitor_methods_scanned_once_per_class_are_the_instances_own(provider: type) -> None:
    command_support.fast_batched_visitors()
    first, second = provider(), provider()
    assert first.get_visitors() == command_support._scan_visitor_methods(first)
    methods = second.get_visitors()
    assert methods == command_support._scan_visitor_methods(second)
    assert all(method.__self__ is second for method in methods.values())


def test_metadata_resolved_with_the_per_class_scan_is_the_same() -> None:
    code = "import torch\nclass T:\n    def f(self):\n        self.opt = torch.optim.Adam(p)\n"
    BatchableCSTVisitor.get_visitors = command_support._scan_visitor_methods  # type: ignore[method-assign]
    try:
        before = cst.MetadataWrapper(cst.parse_module(code))
        plain = {type(k).__name__ for k in before.resolve(BindingProvider)}
    finally:
        command_support.fast_batched_visitors()
    after = cst.MetadataWrapper(cst.parse_module(code))
    assert {type(k).__name__ for k in after.resolve(BindingProvider)} == plain
    assert len(after.resolve(ParentNodeProvider)) > 0


def test_a_provider_that_is_not_batchable_costs_no_empty_walk(monkeypatch) -> None:
    from libcst.metadata import PositionProvider

    command_support.fast_batched_visitors()
    walks: list[int] = []
    real = cst.MetadataWrapper.visit_batched

    def counted(self, visitors, *args, **kwargs):  # type: ignore[no-untyped-def]
        walks.append(len(list(visitors)))
        return real(self, visitors, *args, **kwargs)

    monkeypatch.setattr(cst.MetadataWrapper, "visit_batched", counted)
    wrapper = cst.MetadataWrapper(cst.parse_module("x = f(1)\n"))
    positions = wrapper.resolve(PositionProvider)
    assert walks == []
    assert positions[wrapper.module.body[0]].start.line == 1


def test_batchable_metadata_is_still_resolved_in_a_walk_after_the_patch() -> None:
    command_support.fast_batched_visitors()
    wrapper = cst.MetadataWrapper(cst.parse_module("import torch\nopt = torch.optim.SGD(p)\n"))
    parents = wrapper.resolve(ParentNodeProvider)
    assert parents[wrapper.module.body[0]] is wrapper.module
