"""A scheduler whose optimizer's lr the code also writes through ``param_groups``: torch's
scheduler works from the written lr (StepLR multiplies it, LambdaLR overwrites it at its next
step), a schedule folded into the optimizer would see none of it. The scheduler stays torch
code with the place of the write; a read of ``param_groups[0]["lr"]`` alone still folds."""

from __future__ import annotations

import pytest

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from tests.support import run_codemod

LOOP = """\
import torch

opt = torch.optim.SGD(params, lr=0.1)
sched = torch.optim.lr_scheduler.StepLR(opt, 5)
for batch in batches:
    loss = batch.sum()
    loss.backward()
    opt.step()
    sched.step()
{extra}
"""

FOLDED = "optax.exponential_decay("


@pytest.mark.parametrize(
    "extra",
    [
        "    for g in opt.param_groups:\n        g['lr'] = 0.01",
        "    opt.param_groups[0]['lr'] *= 0.5",
        "    opt.param_groups[0]['lr'] = warmup(step)",
        "    adjust(opt.param_groups)",
    ],
)
@pytest.mark.parametrize("command", [TorchToOptax, TorchToNNX])
def test_a_write_through_param_groups_keeps_the_scheduler(extra: str, command: type) -> None:
    output = run_codemod(LOOP.format(extra=extra), command)
    assert FOLDED not in output, output
    escape = output.split("ESCAPE-BEGIN torch.optim.lr_scheduler.StepLR")[1]
    assert "this code also uses `opt.param_groups` at example.py:10" in escape, output


def test_a_read_of_the_lr_alone_still_folds() -> None:
    output = run_codemod(LOOP.format(extra="    log(opt.param_groups[0]['lr'])"), TorchToOptax)
    assert "opt = optax.sgd(learning_rate=sched)" in output, output
    assert "this code also uses" not in output, output
