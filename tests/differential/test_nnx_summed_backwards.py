"""Several ``loss.backward()`` before one step (issue 13): torch sums their gradients in .grad;
``optimizer.TorchToNNX``'s loss function returns the sum of the losses. Its own output matches
PyTorch when run (losses and final parameters, float64, 36 updates)."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import (
    run_nnx_loop,
    run_torch_loop,
    translate_nnx,
    translated_rel,
    worst_rel,
)

TWO_BACKWARDS = """\
import torch

model = make_model()
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        out1 = model(x[:3])
        l1 = ((out1 - y[:3]) ** 2).mean()
        l1.backward()
        out2 = model(x[3:])
        l2 = ((out2 - y[3:]) ** 4).mean()
        l2.backward()
        opt.step()
        losses.append(l1.item())
        losses.append(l2.item())
        losses.append((out2 ** 2).sum().item())
"""

THREE_BACKWARDS_SHARED_OUTPUT = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(EPOCHS):
    for x, y in loader:
        model.zero_grad()
        out = model(x)
        l1 = ((out - y) ** 2).mean()
        l1.backward(retain_graph=True)
        l2 = 0.1 * (out ** 2).mean()
        l2.backward(retain_graph=True)
        l3 = 0.01 * (model(x * 2.0) ** 2).sum()
        l3.backward()
        opt.step()
        losses.append(l1.item() + l2.item() + l3.item())
"""

LOOPS = {
    "two_backwards_of_two_halves": TWO_BACKWARDS,
    "three_backwards_sharing_an_output_retain_graph": THREE_BACKWARDS_SHARED_OUTPUT,
}


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_the_translated_loop_matches_torch(name: str) -> None:
    translated, rel = translated_rel(LOOPS[name])
    assert BEGIN not in translated and ".backward(" not in translated, translated
    assert rel < EXACT, f"{name}: rel {rel:.3e}"


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_a_second_run_changes_nothing(name: str) -> None:
    once = translate_nnx(LOOPS[name])
    assert translate_nnx(once) == once


def test_the_harness_sees_the_first_loss_left_out() -> None:
    """Dropping the first loss from the returned sum (only the last backward's gradients) is
    seen: the sum is what the match depends on."""
    translated = translate_nnx(TWO_BACKWARDS)
    wrong = translated.replace("return l1 + l2,", "return l2,")
    assert wrong != translated
    rel = worst_rel(run_torch_loop(TWO_BACKWARDS), run_nnx_loop(TWO_BACKWARDS, wrong))
    assert rel > 1e-3
