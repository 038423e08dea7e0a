"""Gradient accumulation combined with a per-update scheduler (stepped in the accumulation's
condition, after the step), translated by ``optimizer.TorchToNNX`` (the schedule folded into
the tx inside optax.MultiSteps), matches PyTorch when run: every recorded loss and the final
parameters, float64, 30 updates."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translated_rel

# 60 batches (the 12 of the loader, 5 times), k = 2: 30 updates, the lr halved every 3.
SCHEDULER_IN_THE_CONDITION = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
k = 2
for i, (x, y) in enumerate(loader * 5):
    out = model(x)
    loss = ((out - y) ** 2).mean() / k
    loss.backward()
    if (i + 1) % k == 0:
        opt.step()
        sched.step()
        opt.zero_grad()
    losses.append(loss.item())
"""

# The same with a warm-up schedule stepped after the zero_grad, and Adam.
WARM_UP_AFTER_THE_ZERO_GRAD = """\
import torch

model = make_model()
opt = torch.optim.Adam(model.parameters(), lr=0.02)
sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=8)
for i, (x, y) in enumerate(loader * 5):
    loss = ((model(x) - y) ** 2).mean() / 2
    loss.backward()
    if (i + 1) % 2 == 0:
        opt.step()
        opt.zero_grad()
        sched.step()
    losses.append(loss.item())
"""

LOOPS = {
    "scheduler_in_the_condition": SCHEDULER_IN_THE_CONDITION,
    "warm_up_after_the_zero_grad": WARM_UP_AFTER_THE_ZERO_GRAD,
}


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_accumulation_with_a_per_update_scheduler_matches_torch(name: str) -> None:
    translated, rel = translated_rel(LOOPS[name], exact=True)
    assert BEGIN not in translated and "MultiSteps(" in translated, translated
    assert rel < EXACT, (rel, translated)
