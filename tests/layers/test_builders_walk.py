"""``find_builders`` walks the module only when one of its functions may return a built value
(issue 14: one analysis per file); a builder is found as before."""

from __future__ import annotations

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, ScopeProvider

from ml_switcheroo.analysis import builders
from ml_switcheroo.analysis.resolver import BindingProvider, Resolver
from ml_switcheroo.targets.catalogue import load_semantic_map

BUILDER = """\
import torch
def build(model):
    return torch.optim.SGD(model.parameters(), lr=0.1)
opt = build(model)
opt.step()
"""

NO_BUILDER = """\
import torch
def helper(x):
    return x + 1
opt = torch.optim.SGD(model.parameters(), lr=0.1)
opt.step()
"""


def _resolver(source: str) -> Resolver:
    wrapper = MetadataWrapper(cst.parse_module(source))
    return Resolver(
        load_semantic_map(), wrapper.resolve(ScopeProvider), wrapper.resolve(BindingProvider)
    )


def _count_walks(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    walks: list[object] = []
    walk = builders._Walk

    def counted() -> builders._Walk:
        walks.append(None)
        return walk()

    monkeypatch.setattr(builders, "_Walk", counted)
    return walks


def test_a_module_whose_functions_return_no_built_value_is_not_walked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    walks = _count_walks(monkeypatch)
    assert _resolver(NO_BUILDER).builders().by_function == {}
    assert walks == []


def test_a_builder_is_still_found_and_its_module_walked(monkeypatch: pytest.MonkeyPatch) -> None:
    walks = _count_walks(monkeypatch)
    found = _resolver(BUILDER).builders()
    assert len(found.by_function) == 1 and len(found.by_call) == 1
    assert len(walks) == 1


def test_a_function_whose_last_statement_returns_a_built_name_may_be_a_builder() -> None:
    source = "import torch\ndef build(m):\n    opt = torch.optim.SGD(m, lr=0.1)\n    return opt\n"
    resolver = _resolver(source)
    function = next(n for n in resolver.scopes if isinstance(n, cst.FunctionDef))
    bound = lambda name: resolver.bound_value(name, None)  # noqa: E731
    assert builders._may_return_built(function, bound, resolver._is_built)
