"""A per-update scheduler whose optimizer a function of the file also steps (probe F1b): torch's
schedule follows the scheduler's own steps, the folded one every update, so warm-up steps before
the scheduler is built, a second step per iteration or fine-tuning after the loop shift it. The
scheduler stays torch code naming the call; a helper that does not step folds."""

from __future__ import annotations

import pytest

from ml_switcheroo.codemods.optimizer import TorchToOptax
from tests.support import run_codemod

HELPER = """\
import torch


def warmup(opt):
    for batch in warm_batches:
        batch.sum().backward()
        opt.step()


def report(opt):
    print("lr", opt)


opt = torch.optim.SGD(params, lr=0.1)
"""

LOOP = """\
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
for batch in batches:
    batch.sum().backward()
    opt.step()
    sched.step()
"""

SHAPES = {
    "before": "warmup(opt)\n" + LOOP,
    "every_update": LOOP.replace("    sched.step()\n", "    warmup(opt)\n    sched.step()\n"),
    "after": LOOP + "warmup(opt)\n",
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_helper_that_steps_the_optimizer_keeps_the_scheduler(shape: str) -> None:
    output = run_codemod(HELPER + SHAPES[shape], TorchToOptax)
    assert "learning_rate=sched" not in output, output
    assert "the optimizer is also handed to warmup() at example.py:" in output, output


def test_a_helper_that_does_not_step_it_folds() -> None:
    output = run_codemod(HELPER + "report(opt)\n" + LOOP, TorchToOptax)
    assert "learning_rate=sched" in output, output
