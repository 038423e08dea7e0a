"""Gradient accumulation combined with a per-update scheduler (stepped in the accumulation's
condition, after the step; the schedule folded into the tx inside optax.MultiSteps) or with a
GradScaler (its calls dropped; with a clip after ``unscale_``: the clip heads the chain inside
MultiSteps), or with logging between the backward pass and the condition, translated by
``optimizer.TorchToNNX``, matches PyTorch when run: every recorded loss and the final
parameters, float64, 20 or 30 updates."""

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

# k = 3: 20 updates; torch scales the loss by 2 ** 16 and unscales the summed gradients.
GRAD_SCALER = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
scaler = torch.amp.GradScaler("cpu")
k = 3
for i, (x, y) in enumerate(loader * 5):
    out = model(x)
    loss = ((out - y) ** 2).mean() / k
    scaler.scale(loss).backward()
    if (i + 1) % k == 0:
        scaler.step(opt)
        scaler.update()
        opt.zero_grad()
    losses.append(loss.item())
"""

# The summed gradients unscaled, then clipped (a norm of 0.3 is reached: the clip acts).
GRAD_SCALER_CLIPPED = """\
import torch

model = make_model()
opt = torch.optim.Adam(model.parameters(), lr=0.01)
scaler = torch.amp.GradScaler("cpu")
for i, (x, y) in enumerate(loader * 5):
    loss = ((model(x) - y) ** 2).mean() / 3
    scaler.scale(loss).backward()
    if (i + 1) % 3 == 0:
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.3)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
    losses.append(loss.item())
"""

# All three: a GradScaler, a clip after unscale_ and a per-update scheduler (30 updates).
GRAD_SCALER_CLIPPED_SCHEDULED = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
scaler = torch.amp.GradScaler("cpu")
for i, (x, y) in enumerate(loader * 5):
    loss = ((model(x) - y) ** 2).mean() / 2
    scaler.scale(loss).backward()
    if (i + 1) % 2 == 0:
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.3)
        scaler.step(opt)
        scaler.update()
        sched.step()
        opt.zero_grad()
    losses.append(loss.item())
"""

# The loss and the worst error logged after each backward pass, before the condition (k = 3).
LOGGED_BEFORE_THE_CONDITION = """\
import torch

model = make_model()
opt = torch.optim.Adam(model.parameters(), lr=0.01)
k = 3
losses = []
for i, (x, y) in enumerate(loader * 5):
    err = model(x) - y
    loss = (err**2).mean() / k
    loss.backward()
    losses.append(loss.item())
    worst = float(err.max())
    losses.append(worst)
    if (i + 1) % k == 0:
        opt.step()
        opt.zero_grad()
"""

# A SequentialLR (its components built over the optimizer too) stepped in the condition.
SEQUENTIAL_IN_THE_CONDITION = SCHEDULER_IN_THE_CONDITION.replace(
    "torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)",
    "torch.optim.lr_scheduler.SequentialLR(opt, [torch.optim.lr_scheduler.LinearLR(opt, "
    "start_factor=0.5, total_iters=3), torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)], "
    "milestones=[3])",
)

LOOPS = {
    "logged_before_the_condition": LOGGED_BEFORE_THE_CONDITION,
    "sequential_in_the_condition": SEQUENTIAL_IN_THE_CONDITION,
    "grad_scaler": GRAD_SCALER,
    "grad_scaler_clipped_scheduled": GRAD_SCALER_CLIPPED_SCHEDULED,
    "grad_scaler_clipped": GRAD_SCALER_CLIPPED,
    "scheduler_in_the_condition": SCHEDULER_IN_THE_CONDITION,
    "warm_up_after_the_zero_grad": WARM_UP_AFTER_THE_ZERO_GRAD,
}


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_accumulation_with_a_scheduler_or_a_grad_scaler_matches_torch(name: str) -> None:
    translated, rel = translated_rel(LOOPS[name], exact=True)
    assert BEGIN not in translated and "MultiSteps(" in translated, translated
    assert rel < EXACT, (rel, translated)
