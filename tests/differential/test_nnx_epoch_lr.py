"""Schedulers stepped once per epoch translated by ``optimizer.TorchToNNX`` (the lr written to
the injected hyper-parameter where torch steps the scheduler, ``sched(epoch + 1)``) match
PyTorch when run: every recorded loss and the final parameters, float64, 36 updates over 3
epochs (``nnx_loops.EPOCHS``; 30 where a jump skips batches), with and without ``--exact``."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel

EPOCH_LOOP = """\
import torch

model = make_model()
opt = torch.optim.{optimizer}
sched = torch.optim.lr_scheduler.{scheduler}
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    sched.step()
"""

TRAIN_FUNCTION_PER_EPOCH = """\
import torch


def train(model, optimizer, loader):
    for x, y in loader:
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())


model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
for epoch in range(EPOCHS):
    train(model, opt, loader)
    scheduler.step()
"""

LOOPS = {
    "step_lr": EPOCH_LOOP.format(
        optimizer="SGD(model.parameters(), lr=0.1, momentum=0.9)",
        scheduler="StepLR(opt, step_size=1, gamma=0.3)",
    ),
    "multi_step_lr": EPOCH_LOOP.format(
        optimizer="Adam(model.parameters(), lr=1e-2)",
        scheduler="MultiStepLR(opt, milestones=[1, 2], gamma=0.1)",
    ),
    "exponential_lr": EPOCH_LOOP.format(
        optimizer="AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)",
        scheduler="ExponentialLR(opt, gamma=0.7)",
    ),
    "cosine_annealing_lr": EPOCH_LOOP.format(
        optimizer="SGD(model.parameters(), lr=0.05)",
        scheduler="CosineAnnealingLR(opt, T_max=3, eta_min=1e-3)",
    ),
    "step_lr_after_a_train_function": TRAIN_FUNCTION_PER_EPOCH,
    "step_lr_with_a_break_of_the_batch_loop": EPOCH_LOOP.format(
        optimizer="SGD(model.parameters(), lr=0.1, momentum=0.9)",
        scheduler="StepLR(opt, step_size=1, gamma=0.5)",
    ).replace(
        "    for x, y in loader:\n",
        "    for i, (x, y) in enumerate(loader):\n        if i >= 10:\n            break\n",
    ),
    "step_lr_from_a_start_epoch_name": EPOCH_LOOP.format(
        optimizer="SGD(model.parameters(), lr=0.1, momentum=0.9)",
        scheduler="StepLR(opt, step_size=1, gamma=0.5)",
    ).replace(
        "for epoch in range(EPOCHS):", "start = 2\nfor epoch in range(start, EPOCHS + start):"
    ),
    "multi_step_lr_from_epoch_one": EPOCH_LOOP.format(
        optimizer="Adam(model.parameters(), lr=1e-2)",
        scheduler="MultiStepLR(opt, milestones=[1, 2], gamma=0.1)",
    ).replace("for epoch in range(EPOCHS):", "for epoch in range(1, EPOCHS + 1):"),
    "exponential_lr_with_a_continue_of_the_batch_loop": EPOCH_LOOP.format(
        optimizer="Adam(model.parameters(), lr=1e-2)",
        scheduler="ExponentialLR(opt, gamma=0.6)",
    ).replace(
        "    for x, y in loader:\n",
        "    for i, (x, y) in enumerate(loader):\n        if i % 6 == 5:\n            continue\n",
    ),
}


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("name", sorted(LOOPS))
def test_the_per_epoch_lr_writes_match_torch(name: str, exact: bool) -> None:
    translated, rel = translated_rel(LOOPS[name], exact=exact)
    assert BEGIN not in translated, translated
    assert '.hyperparams["learning_rate"][...] = ' in translated, translated
    assert rel < EXACT, f"{name}: rel {rel:.3e}"


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_a_second_run_leaves_the_per_epoch_writes_as_they_are(name: str) -> None:
    once = translate_nnx(LOOPS[name])
    assert translate_nnx(once) == once
