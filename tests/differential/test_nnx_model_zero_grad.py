"""Whole loops zeroing the gradients through the model (``model.zero_grad()``, issue 13):
``optimizer.TorchToNNX``'s own output matches PyTorch when run (losses and final parameters,
float64, 36 updates)."""

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

MODEL_ZERO_GRAD = """\
import torch


def train(netD, loader):
    optD = torch.optim.Adam(netD.parameters(), lr=1e-2)
    for x, y in loader:
        netD.zero_grad()
        out = netD(x)
        loss = ((out - y) ** 2).mean()
        loss.backward()
        optD.step()
        losses.append(loss.item())


net = make_model()
for epoch in range(EPOCHS):
    train(net, loader)
"""

MODEL_ZERO_GRAD_KEEPING_ZEROS = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(EPOCHS):
    for x, y in loader:
        x = x * 1.0
        model.zero_grad(set_to_none=False)
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""

TRAINER_MODEL_ZERO_GRAD = """\
import torch


class Trainer:
    def __init__(self, model):
        self.model = model
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-2, weight_decay=0.1)

    def train_step(self, x, y):
        self.model.zero_grad()
        pred = self.model(x)
        loss = ((pred - y) ** 2).mean()
        loss.backward()
        self.opt.step()
        return loss.item()


trainer = Trainer(make_model())
for epoch in range(EPOCHS):
    for x, y in loader:
        losses.append(trainer.train_step(x, y))
"""

MODEL_ZERO_GRAD_AFTER_THE_STEP = """\
import torch

model = make_model()
opt = torch.optim.RMSprop(model.parameters(), lr=1e-2)
for epoch in range(EPOCHS):
    for x, y in loader:
        out = model(x)
        loss = ((out - y) ** 2).mean()
        loss.backward()
        opt.step()
        model.zero_grad()
        losses.append(loss.item())
"""

MODEL_AND_OPTIMIZER_PARAMETERS = """\
import torch


def train(model, optimizer, loader):
    for x, y in loader:
        model.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())


net = make_model()
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
for epoch in range(EPOCHS):
    train(net, opt, loader)
"""

LOOPS = {
    "model_zero_grad_of_a_model_parameter": MODEL_AND_OPTIMIZER_PARAMETERS,
    "model_zero_grad_after_the_step": MODEL_ZERO_GRAD_AFTER_THE_STEP,
    "model_zero_grad_in_a_train_function": MODEL_ZERO_GRAD,
    "model_zero_grad_set_to_none_false": MODEL_ZERO_GRAD_KEEPING_ZEROS,
    "self_model_zero_grad_in_a_trainer_class": TRAINER_MODEL_ZERO_GRAD,
}


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_the_translated_loop_matches_torch(name: str) -> None:
    translated, rel = translated_rel(LOOPS[name])
    assert BEGIN not in translated and "zero_grad" not in translated, translated
    assert rel < EXACT, f"{name}: rel {rel:.3e}"


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_a_second_run_changes_nothing(name: str) -> None:
    once = translate_nnx(LOOPS[name])
    assert translate_nnx(once) == once


def test_the_harness_sees_gradients_summed_without_the_model_zero() -> None:
    """Torch without ``netD.zero_grad()`` sums gradients over steps: the translation (fresh
    gradients) no longer matches it, so the zero is what the loop's match depends on."""
    unzeroed = MODEL_ZERO_GRAD.replace("        netD.zero_grad()\n", "")
    assert unzeroed != MODEL_ZERO_GRAD
    translated = translate_nnx(MODEL_ZERO_GRAD)
    rel = worst_rel(run_torch_loop(unzeroed), run_nnx_loop(MODEL_ZERO_GRAD, translated))
    assert rel > 1e-3
