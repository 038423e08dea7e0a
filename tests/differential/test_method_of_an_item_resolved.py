"""Probe s39, D3: libcst qualifies ``f(x)[i].m`` as ``f.m`` (``torch.max(out, 1)[0].std`` as
``torch.max.std``), and ``Resolver._imported_names`` passed that on, so a method of an item of
a call's value looked like a function of an import. The NNX target had worked around it in its
loss function's own check only (``step_shared._qualify``); a helper of the file copied into the
loss function (``my_loss(out, y)`` returning ``... + torch.max(out, 1)[0].std()``) still
converted, and JAX's ``std`` (n) trained on other numbers than torch's (n - 1). Fixed in the
resolver for every target: an attribute reached through an item (``[i]``) of any value names
no import, nor does one of a call's value unless the callee is a class of the map
(``torch.abs(out).std``: libcst's ``torch.abs.std``)."""

from __future__ import annotations

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, ScopeProvider

from ml_switcheroo.analysis.resolver import BindingProvider, Resolver
from ml_switcheroo.spec.escape_hatch import BEGIN
from ml_switcheroo.targets.catalogue import NNX, load_semantic_map
from tests.differential.harness import float64
from tests.differential.nnx_loops import run_nnx_loop, run_torch_loop, translate_nnx, worst_rel
from tests.differential.test_nnx_loops import PLAIN_LOOP

HELPER = "\n\ndef my_loss(out, y):\n    return ((out - y) ** 2).mean() + {term}\n\n\n"


def _with_helper(term: str) -> str:
    """``PLAIN_LOOP`` computing its loss through ``my_loss``, which adds ``term``."""
    source = PLAIN_LOOP.replace("loss = ((out - y) ** 2).mean()", "loss = my_loss(out, y)")
    head, _, rest = source.partition("\n\nmodel = make_model()")
    return head + HELPER.format(term=term) + "model = make_model()" + rest


@pytest.mark.parametrize("term", ["torch.max(out, 1)[0].std()", "torch.abs(out).std()"])
def test_a_namesake_on_a_value_in_a_loss_helper_escapes(term: str) -> None:
    """``torch.abs(out).std()``: libcst's ``torch.abs.std`` (a call's value, no item) hid the
    namesake the same way."""
    source = _with_helper(term)
    translated = translate_nnx(source)
    assert BEGIN in translated and f"`{term}` runs on JAX" in translated, translated
    would_be = translate_nnx(_with_helper(term.replace(".std()", ".mean()")))
    would_be = would_be.replace(").mean()", ").std()").replace("].mean()", "].std()")
    assert ".std()" in would_be and BEGIN not in would_be
    with float64():
        assert worst_rel(run_torch_loop(source), run_nnx_loop(source, would_be)) > 1e-3


@pytest.mark.parametrize(
    "expression",
    ["build(x)[0].step", "torch.max(a, 1)[1].step", "torch.zeros(3)[0].add_", "torch.abs(a).std"],
)
def test_an_attribute_of_an_item_names_no_import(expression: str) -> None:
    source = f"import torch\nfrom m import build\nvalue = {expression}\n"
    wrapper = MetadataWrapper(cst.parse_module(source))
    resolver = Resolver(
        load_semantic_map(target=NNX),
        wrapper.resolve(ScopeProvider),
        wrapper.resolve(BindingProvider),
    )
    node = wrapper.module.body[-1].body[0].value  # type: ignore[attr-defined]
    assert resolver.imported_names(node) == []
