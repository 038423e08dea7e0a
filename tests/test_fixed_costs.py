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
