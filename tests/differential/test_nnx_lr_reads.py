"""Reads of the learning rate of an optimizer whose schedule is folded into its tx
(``sched.get_last_lr()[0]``, ``opt.param_groups[0]["lr"]``), translated by
``optimizer.TorchToNNX`` as the schedule at the update count, match PyTorch when run: every
recorded loss and lr and the final parameters, float64, 36 updates (``exact=True``: the folded
schedules are evaluated in float64; without it optax evaluates them in float32, the map's
tolerance 1e-6, while the reads stay float64)."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel

READS = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
sched = {scheduler}
for epoch in range(EPOCHS):
    for x, y in loader:
        before = sched.get_last_lr()[0]
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        losses.append(loss.item() * before)
        losses.append(sched.get_last_lr()[0])
        losses.append(opt.param_groups[0]["lr"] * 2)
losses.append(opt.param_groups[0]["lr"])
"""

SCHEDULERS = {
    "step": "torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)",
    "cosine": "torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20, eta_min=0.01)",
    "exponential": "torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.95)",
}


APPROXIMATE = 1e-6  # the map's tolerance of a schedule optax evaluates in float32


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_lr_reads_match_torch(name: str) -> None:
    source = READS.format(scheduler=SCHEDULERS[name])
    translated, rel = translated_rel(source, exact=True)
    assert BEGIN not in translated and "get_last_lr" not in translated, translated
    assert rel < EXACT, f"{name}: rel {rel:.3e}"


def test_lr_reads_match_torch_within_the_schedule_tolerance_without_exact() -> None:
    source = READS.format(scheduler=SCHEDULERS["exponential"])
    translated, rel = translated_rel(source)
    assert BEGIN not in translated and "get_last_lr" not in translated, translated
    assert rel < APPROXIMATE, f"rel {rel:.3e}"


def test_a_second_run_changes_nothing() -> None:
    once = translate_nnx(READS.format(scheduler=SCHEDULERS["step"]))
    assert translate_nnx(once) == once
