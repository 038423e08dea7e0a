"""Arguments torch compares with its integer step count (the map's ``counts``): torch 2.13
accepts a float or a negative value there and then decays at other steps than the optax
schedule (measured: StepLR(step_size=7.5) keeps the lr for 8 steps, ConstantLR(total_iters=2.5)
keeps the factor for ever, MultiStepLR ignores a milestone -1). Evidence of such a value
escapes; integers, names and integer arithmetic translate as before."""

from __future__ import annotations

import pytest

from ml_switcheroo.codemods.optimizer import TorchToOptax
from tests.support import run_codemod

LOOP = """\
import torch

opt = torch.optim.SGD(params, lr=0.1)
sched = torch.optim.lr_scheduler.{scheduler}
for batch in batches:
    batch.sum().backward()
    opt.step()
    sched.step()
"""

ESCAPED = [
    "StepLR(opt, step_size=7.5)",
    "StepLR(opt, 30 / 4)",
    "StepLR(opt, step_size=-3)",
    "StepLR(opt, step_size=float(n))",
    "MultiStepLR(opt, milestones=[-1, 3])",
    "MultiStepLR(opt, milestones=[7.5, 10])",
    "MultiStepLR(opt, milestones=[n / 2, n])",
    "ConstantLR(opt, factor=0.5, total_iters=2.5)",
    "LinearLR(opt, 0.5, total_iters=n * 0.5)",
    "PolynomialLR(opt, total_iters=2.5)",
    "CosineAnnealingLR(opt, T_max=epochs / 2)",
]

TRANSLATED = [
    "StepLR(opt, step_size=7)",
    "StepLR(opt, step_size=n)",
    "StepLR(opt, step_size=n // 4)",
    "StepLR(opt, step_size=int(n / 4))",
    "MultiStepLR(opt, milestones=[3, 6])",
    "ConstantLR(opt, factor=0.5, total_iters=0)",
    "CosineAnnealingLR(opt, T_max=len(loader) * epochs)",
]


@pytest.mark.parametrize("scheduler", ESCAPED)
def test_a_count_that_may_not_be_an_integer_escapes(scheduler: str) -> None:
    output = run_codemod(LOOP.format(scheduler=scheduler), TorchToOptax)
    assert "learning_rate=sched" not in output, output
    assert "may not be an integer >= 0" in output, output


@pytest.mark.parametrize("scheduler", TRANSLATED)
def test_an_integer_count_translates(scheduler: str) -> None:
    output = run_codemod(LOOP.format(scheduler=scheduler), TorchToOptax)
    assert "learning_rate=sched" in output, output
