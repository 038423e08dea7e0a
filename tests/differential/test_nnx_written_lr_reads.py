"""Reads of the learning rate for logging (``sched.get_last_lr()[0]``,
``opt.param_groups[0]["lr"]``) where the NNX translation writes the lr per epoch
(ReduceLROnPlateau, a per-epoch StepLR): they read the optimizer's stored lr, and match torch
when run: every recorded loss and lr, and the final parameters, float64, 36 updates."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translated_rel

STORED = 'float(opt.opt_state.hyperparams["learning_rate"][...])'

# 12 epochs of 3 updates; the lr read before the first step, inside the epoch and after the
# plateau's step, through the scheduler and through the optimizer.
PLATEAU_READS = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.05)
losses.append(sched.get_last_lr()[0])
for epoch in range(EPOCHS * 4):
    for i, (x, y) in enumerate(loader):
        if i >= 3:
            break
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        losses.append(opt.param_groups[0]["lr"])
    sched.step(loss.item())
    losses.append(sched.get_last_lr()[0])
    losses.append(opt.param_groups[0]["lr"])
"""

STEP_LR_READS = """\
import torch

model = make_model()
opt = torch.optim.Adam(model.parameters(), lr=0.02)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        losses.append(sched.get_last_lr()[0])
    sched.step()
    losses.append(opt.param_groups[0]["lr"])
"""

LOOPS = {"plateau_reads": PLATEAU_READS, "step_lr_reads": STEP_LR_READS}


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("name", sorted(LOOPS))
def test_lr_reads_of_a_written_lr_match_torch(name: str, exact: bool) -> None:
    translated, rel = translated_rel(LOOPS[name], exact=exact)
    assert BEGIN not in translated and STORED in translated, translated
    assert "get_last_lr" not in translated and "param_groups" not in translated, translated
    assert rel < EXACT, (rel, translated)
