"""Reads of the lr of an optimizer whose folded schedule sits in a chain (weight decay at its
head) or in ``optax.inject_hyperparams`` (OneCycleLR cycles the momentum too), translated by
``optimizer.TorchToNNX`` as the schedule at the nnx.Optimizer's count, match PyTorch when
run: the lrs read after each epoch (< 1e-12 relative), and every loss and the final
parameters (< EXACT), float64, 36 updates."""

from __future__ import annotations

import numpy as np
import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import (
    BATCHES,
    run_nnx_loop,
    run_torch_loop,
    translate_nnx,
    worst_rel,
)

LOOP = """\
import torch

model = make_model()
opt = {optimizer}
sched = {scheduler}
losses.append(sched.get_last_lr()[0])
losses.append(opt.param_groups[0]["lr"])
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        out = model(x)
        loss = ((out - y) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    losses.append(sched.get_last_lr()[0])
    losses.append(opt.param_groups[0]["lr"])
"""

OPTIMIZERS = {
    "nesterov_weight_decay": (
        "torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,"
        " weight_decay=5e-4)"
    ),
    "adamw": "torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.01)",
}
SCHEDULERS = {
    "one_cycle": (
        "torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=EPOCHS,"
        " steps_per_epoch=len(loader))"
    ),
    "step": "torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)",
}
LR_READS_EXACT = 1e-12
READS_PER_EPOCH = 2  # get_last_lr()[0] and param_groups[0]["lr"]


def lr_reads(recorded: list[float]) -> np.ndarray:
    """The lrs the loop records: two before the loop, two after each epoch's batches."""
    group = BATCHES + READS_PER_EPOCH
    before, rest = recorded[:READS_PER_EPOCH], recorded[READS_PER_EPOCH:]
    after = [v for i, v in enumerate(rest) if i % group >= BATCHES]
    return np.asarray(before + after)


CASES = [(o, s) for o in sorted(OPTIMIZERS) for s in sorted(SCHEDULERS)]


@pytest.mark.parametrize(("optimizer", "scheduler"), CASES)
def test_lr_reads_of_a_chained_schedule_match_torch(optimizer: str, scheduler: str) -> None:
    source = LOOP.format(optimizer=OPTIMIZERS[optimizer], scheduler=SCHEDULERS[scheduler])
    translated = translate_nnx(source, exact=True)
    assert BEGIN not in translated and "param_groups" not in translated, translated
    torch_run, nnx_run = run_torch_loop(source), run_nnx_loop(source, translated)
    expected, got = lr_reads(torch_run.losses), lr_reads(nnx_run.losses)
    lr_rel = float(np.max(np.abs(expected - got) / np.abs(expected)))
    assert lr_rel < LR_READS_EXACT, f"{optimizer}/{scheduler}: lr rel {lr_rel:.3e}"
    rel = worst_rel(torch_run, nnx_run)
    assert rel < EXACT, f"{optimizer}/{scheduler}: rel {rel:.3e}"


TRAIN_FUNCTION = """\
import torch


def train(model, loader, epochs):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, epochs=epochs, steps_per_epoch=len(loader))
    for epoch in range(epochs):
        error = 0.0
        for inputs, targets in loader:
            optimizer.zero_grad()
            outputs = model(inputs)
            loss = ((outputs - targets) ** 2).mean()
            loss.backward()
            optimizer.step()
            scheduler.step()
            error += ((outputs - targets) ** 2).sum().item()
        losses.append(error)
        losses.append(scheduler.get_last_lr()[0])
        losses.append(optimizer.param_groups[0]["lr"])


train(make_model(), loader, EPOCHS)
"""


def test_the_one_cycle_lr_read_after_each_epoch_of_a_train_function_matches_torch() -> None:
    translated = translate_nnx(TRAIN_FUNCTION, exact=True)
    assert BEGIN not in translated and "get_last_lr" not in translated, translated
    torch_run = run_torch_loop(TRAIN_FUNCTION)
    nnx_run = run_nnx_loop(TRAIN_FUNCTION, translated)
    expected = np.asarray([v for i, v in enumerate(torch_run.losses) if i % 3])
    got = np.asarray([v for i, v in enumerate(nnx_run.losses) if i % 3])
    lr_rel = float(np.max(np.abs(expected - got) / np.abs(expected)))
    assert lr_rel < LR_READS_EXACT, f"lr rel {lr_rel:.3e}"
    rel = worst_rel(torch_run, nnx_run)
    assert rel < EXACT, f"rel {rel:.3e}"


def test_a_second_run_changes_nothing() -> None:
    source = LOOP.format(
        optimizer=OPTIMIZERS["nesterov_weight_decay"], scheduler=SCHEDULERS["one_cycle"]
    )
    once = translate_nnx(source)
    assert translate_nnx(once) == once
