"""Whole training loops translated by ``optimizer.TorchToNNX`` match PyTorch when run: every
recorded loss and the final parameters, float64, 36 updates."""

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

PLAIN_LOOP = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        out = model(x)
        loss = ((out - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""

TRAINER_CLASS = """\
import torch


class Trainer:
    def __init__(self, model):
        self.model = model
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-2, weight_decay=0.1)

    def train_step(self, x, y):
        self.opt.zero_grad()
        pred = self.model(x)
        loss = ((pred - y) ** 2).mean() + 0.01 * (pred ** 2).sum()
        loss.backward()
        self.opt.step()
        return loss.item()


trainer = Trainer(make_model())
for epoch in range(EPOCHS):
    for x, y in loader:
        losses.append(trainer.train_step(x, y))
"""

TRAIN_FUNCTION = """\
import torch


def train(model, optimizer, loader):
    for x, y in loader:
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())


net = make_model()
adam = torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.8, 0.99))
for epoch in range(EPOCHS):
    train(net, adam, loader)
"""

MODEL_PARAMETER = """\
import torch


def fit(model, loader):
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    for epoch in range(EPOCHS):
        for x, y in loader:
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())


RUNNERS = {"fit": fit}  # called where the analysis does not see the argument
RUNNERS["fit"](make_model(), loader)
"""

CLIPPING = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.2)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        losses.append(loss.item())
"""

OUTPUT_AFTER_THE_STEP = """\
import torch

model = make_model()
opt = torch.optim.RMSprop(model.parameters(), lr=1e-2)
for epoch in range(EPOCHS):
    for x, y in loader:
        out = model(x)
        loss = ((out - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item() + 0.0 * out.sum().item())
"""

GRAD_SCALER_WITH_CLIPPING = """\
import torch

model = make_model()
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
scaler = torch.amp.GradScaler("cpu")
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad(set_to_none=True)
        loss = ((model(x) - y) ** 2).mean()
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.3)
        scaler.step(opt)
        scaler.update()
        losses.append(loss.item())
"""

CLIPPING_NORM_LOGGED = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).sum()
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        losses.append(loss.item())
        losses.append(float(grad_norm))
"""

GRAD_SCALER_WITH_CLIPPING_NORM_LOGGED = """\
import torch

model = make_model()
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
scaler = torch.amp.GradScaler("cpu")
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad(set_to_none=True)
        loss = ((model(x) - y) ** 2).mean()
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.3)
        scaler.step(opt)
        scaler.update()
        losses.append(norm.item())
"""

LOGGED_BEFORE_THE_BACKWARD = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(EPOCHS):
    for x, y in loader:
        out = model(x)
        loss = ((out - y) ** 2).mean()

        # record the loss and the worst error before the update
        losses.append(loss.item())
        worst = float(abs(out - y).max())
        losses.append(worst)
        opt.zero_grad()
        loss.backward()
        opt.step()
"""

PER_UPDATE_SCHEDULER = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5, nesterov=True)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.7)
for epoch in range(EPOCHS):
    for x, y in loader:
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
"""

PER_EPOCH_SCHEDULER = """\
import torch

model = make_model()
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    sched.step()
"""

LOOPS = {
    "plain_loop": (PLAIN_LOOP, {}),
    "trainer_class": (TRAINER_CLASS, {}),
    "train_function_per_epoch": (TRAIN_FUNCTION, {}),
    "model_parameter_of_an_uncalled_function": (MODEL_PARAMETER, {}),
    "clipping_exact": (CLIPPING, {"exact": True}),
    "output_used_after_the_step": (OUTPUT_AFTER_THE_STEP, {}),
    "per_update_scheduler_then_zero_grad_exact": (PER_UPDATE_SCHEDULER, {"exact": True}),
    "per_epoch_step_lr_exact": (
        PER_EPOCH_SCHEDULER,
        {"exact": True, "steps_per_epoch": "len(loader)"},
    ),
    "grad_scaler_with_clipping_exact": (GRAD_SCALER_WITH_CLIPPING, {"exact": True}),
    "clipping_norm_logged_exact": (CLIPPING_NORM_LOGGED, {"exact": True}),
    "logged_between_the_loss_and_the_backward": (LOGGED_BEFORE_THE_BACKWARD, {}),
    "grad_scaler_clipping_norm_logged_exact": (
        GRAD_SCALER_WITH_CLIPPING_NORM_LOGGED,
        {"exact": True},
    ),
}


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_the_translated_loop_matches_torch(name: str) -> None:
    source, options = LOOPS[name]
    translated, rel = translated_rel(source, **options)
    assert BEGIN not in translated, translated
    assert rel < EXACT, f"{name}: rel {rel:.3e}"


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_a_second_run_changes_nothing(name: str) -> None:
    source, options = LOOPS[name]
    once = translate_nnx(source, **options)
    assert translate_nnx(once, **options) == once


def test_the_harness_sees_a_wrong_learning_rate() -> None:
    translated = translate_nnx(PLAIN_LOOP).replace("learning_rate=0.05", "learning_rate=0.0501")
    rel = worst_rel(run_torch_loop(PLAIN_LOOP), run_nnx_loop(PLAIN_LOOP, translated))
    assert rel > 1e-6


def test_the_harness_sees_a_norm_taken_after_clipping() -> None:
    """The logged norm is torch's norm before clipping; the clipped one (max_norm) differs."""
    translated = translate_nnx(CLIPPING_NORM_LOGGED, exact=True).replace(
        "grad_norm = optax.tree.norm(grads)", "grad_norm = min(optax.tree.norm(grads), 0.5)"
    )
    assert "min(optax.tree.norm" in translated
    torch_run = run_torch_loop(CLIPPING_NORM_LOGGED)
    rel = worst_rel(torch_run, run_nnx_loop(CLIPPING_NORM_LOGGED, translated))
    assert rel > 1e-3
