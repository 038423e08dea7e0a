"""Schedulers whose ``step()`` calls ``optimizer.TorchToNNX`` counts where they run (a counter
kept next to the schedule, ``sched(count)`` written to the injected lr at each step) match
PyTorch when run: every recorded loss (and lr read) and the final parameters, float64, 36
updates (``nnx_loops.EPOCHS``), with and without ``--exact``."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel

# pytorch_cifar's shape: the epoch loop under a condition (not the scheduler's block), the
# optimizer stepped by a function of the file reading the module's names
TRAIN_FUNCTION = """\
import torch


def train(epoch):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())


model = make_model()
start_epoch = 2
opt = torch.optim.{optimizer}
sched = torch.optim.lr_scheduler.{scheduler}
if EPOCHS > 0:
    for epoch in range(start_epoch, start_epoch + EPOCHS):
        train(epoch)
        sched.step()
"""

# every k updates, the optimizer stepped by a function of the file; the lr read after the step
EVERY_K = """\
import torch


def train_batch(x, y):
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    opt.step()
    losses.append(loss.item())


model = make_model()
opt = torch.optim.Adam(model.parameters(), lr=0.01)
sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.8)
updates = 0
for epoch in range(EPOCHS):
    for x, y in loader:
        train_batch(x, y)
        updates += 1
        if updates % 5 == 0:
            sched.step()
            losses.append(sched.get_last_lr()[0])
            losses.append(opt.param_groups[0]["lr"])
"""

# one epoch loop in the scheduler's block; `{head}` opens it, `{step}` ends each epoch
EPOCH_LOOP = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.6)
{head}
    for x, y in loader[:{batches}]:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
{step}
"""

# shapes where `epoch + 1` is not the step count (they escaped before the count was kept)
SHAPES = {
    "a_continue_of_the_epoch_loop_before_the_step": EPOCH_LOOP.format(
        head="for epoch in range(EPOCHS):",
        batches=12,
        step="    if epoch == 1:\n        continue\n    sched.step()",
    ),
    "steps_per_batch_and_per_epoch": EPOCH_LOOP.format(
        head="for epoch in range(EPOCHS):",
        batches=12,
        step="        if len(losses) % 4 == 0:\n            sched.step()\n    sched.step()",
    ),
    "the_epoch_loop_run_again_on_the_same_scheduler": EPOCH_LOOP.format(
        head="for run in range(2):\n  for epoch in range(EPOCHS):",
        batches=6,
        step="    sched.step()",
    ).replace("\n    ", "\n      "),
}

LOOPS = {
    "step_lr_after_a_train_function_from_a_start_epoch": TRAIN_FUNCTION.format(
        optimizer="SGD(model.parameters(), lr=0.1, momentum=0.9)",
        scheduler="StepLR(opt, step_size=1, gamma=0.5)",
    ),
    "cosine_annealing_lr_per_epoch_past_t_max": TRAIN_FUNCTION.format(
        optimizer="SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=0.01)",
        scheduler="CosineAnnealingLR(opt, T_max=2, eta_min=1e-3)",
    ),
    "exponential_lr_every_k_updates": EVERY_K,
}


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("name", sorted(LOOPS))
def test_the_counted_lr_writes_match_torch(name: str, exact: bool) -> None:
    translated, rel = translated_rel(LOOPS[name], exact=exact)
    assert BEGIN not in translated, translated
    assert "sched_count += 1" in translated, translated
    assert rel < EXACT, f"{name}: rel {rel:.3e}"


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_a_second_run_leaves_the_counted_writes_as_they_are(name: str) -> None:
    once = translate_nnx(LOOPS[name])
    assert translate_nnx(once) == once


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_steps_counted_where_epoch_plus_one_is_not_the_count_match_torch(name: str) -> None:
    translated, rel = translated_rel(SHAPES[name])
    assert BEGIN not in translated, translated
    assert "sched_count += 1" in translated, translated
    assert rel < EXACT, f"{name}: rel {rel:.3e}"
