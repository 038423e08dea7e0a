"""A value the loss reads, computed from the model under ``torch.no_grad()`` before the
forward pass (a target of the model's own output, a teacher's pass: probe s41a R6). torch
records no gradient there, so computing it outside the loss function, as written, is the exact
translation; before, the step escaped saying its gradient would be lost. The same value
computed with a gradient (no context, ``torch.enable_grad()``) still escapes: torch
differentiates through it."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel

LOOP = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(EPOCHS):
    for x, y in loader:
{before}        pred = model(x)
        loss = ((pred - target) ** 2).mean() + ((pred - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""


@pytest.mark.parametrize(
    "context",
    ["torch.no_grad()", "torch.set_grad_enabled(False)", "torch.autograd.no_grad()"],
)
def test_a_target_computed_without_gradient_converts_exactly(context: str) -> None:
    before = f"        with {context}:\n            target = model(x * 0.5)\n"
    translated, rel = translated_rel(LOOP.format(before=before))
    assert BEGIN not in translated and "opt.update(model, grads)" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"


@pytest.mark.parametrize(
    "before",
    [
        "        with torch.enable_grad():\n            target = model(x * 0.5)\n",
        # probe s41a F3 remainder: a walrus before the forward pass (it converted)
        "        if (target := model(x * 0.5)) is None:\n            pass\n",
        "        with torch.set_grad_enabled(True):\n            target = model(x * 0.5)\n",
    ],
)
def test_a_target_computed_with_a_gradient_escapes(before: str) -> None:
    translated = translate_nnx(LOOP.format(before=before))
    assert BEGIN in translated and "its gradient would be lost" in translated, translated
