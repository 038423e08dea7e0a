"""A clip over a name holding an iterator (``ps = model.parameters()``) clips nothing once the
iterator is consumed (by the optimizer's constructor, or by the clip's own first run): it stays
torch code (probe s32 H1: folded as a clip of every gradient, 0.14-0.88 relative over 60
updates). A list bound to the name is read again at every step, and folds."""

from __future__ import annotations

import pytest

from tests.support import SwitcherooTest, run_codemod, stock_clip

LOOP = """\
import torch
import itertools

model = Model()
{bind}
opt = torch.optim.SGD({params}, lr=0.1)
for batch in batches:
    opt.zero_grad()
    model(batch).backward()
    torch.nn.utils.clip_grad_norm_(ps, 1.0)
    opt.step()
"""
CHAINED = f"opt = optax.chain({stock_clip('1.0')}, optax.sgd(learning_rate=0.1))"
CONSUMED = "a name holding an iterator"

ITERATORS = {  # (the binding of `ps`, the optimizer's parameters)
    "consumed_by_the_optimizer": ("ps = model.parameters()", "ps"),
    "consumed_by_the_first_clip": ("ps = model.parameters()", "model.parameters()"),
    "named_parameters_values": ("ps = (p for _, p in model.named_parameters())", "ps"),
    "a_filter": ("ps = filter(lambda p: p.requires_grad, model.parameters())", "ps"),
    "iter_of_a_list": ("ps = iter(list(model.parameters()))", "model.parameters()"),
    "a_chain": ("ps = itertools.chain(model.parameters())", "model.parameters()"),
    "through_another_name": ("gen = model.parameters()\nps = gen", "model.parameters()"),
}

LISTS = {
    "a_list": ("ps = list(model.parameters())", "ps"),
    "a_list_comprehension": ("ps = [p for p in model.parameters()]", "model.parameters()"),
}


@pytest.mark.parametrize("name", sorted(ITERATORS))
def test_a_clip_over_an_iterator_stays_torch_code(name: str) -> None:
    bind, params = ITERATORS[name]
    source = LOOP.format(bind=bind, params=params)
    out = run_codemod(source)
    assert CHAINED not in out
    assert "torch.nn.utils.clip_grad_norm_(ps, 1.0)" in out
    (record,) = [r for r in SwitcherooTest().records(source) if r.api.endswith("clip_grad_norm_")]
    assert record.kind == "escaped" and CONSUMED in record.reason, record.reason


@pytest.mark.parametrize("name", sorted(LISTS))
def test_a_clip_over_a_list_folds(name: str) -> None:
    bind, params = LISTS[name]
    out = run_codemod(LOOP.format(bind=bind, params=params))
    assert CHAINED in out, out
