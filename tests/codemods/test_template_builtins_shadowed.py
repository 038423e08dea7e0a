"""Templates that read Python builtins (``next``, ``float``, ``max``) escape where the user's
code binds that name (probe F8: ``float = int`` changed OneCycleLR's schedule silently); the
same schedule with the builtin left alone folds."""

from __future__ import annotations

import pytest

from ml_switcheroo.codemods.optimizer import TorchToOptax
from tests.support import run_codemod

LOOP = """\
import torch
import transformers

{shadow}
opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
sched = {scheduler}
for batch in batches:
    batch.sum().backward()
    opt.step()
    sched.step()
"""

CASES = {
    "next": (
        "next = lambda *a: 1",
        "torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=5, T_mult=2)",
    ),
    "float": (
        "float = int",
        "torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=10, pct_start=0.25)",
    ),
    "max": (
        "def max(*values):\n    return values[-1] * 2\n",
        "transformers.get_linear_schedule_with_warmup(opt, num_warmup_steps=10, "
        "num_training_steps=100)",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_shadowed_builtin_of_the_template_escapes(name: str) -> None:
    shadow, scheduler = CASES[name]
    output = run_codemod(LOOP.format(shadow=shadow, scheduler=scheduler), TorchToOptax)
    assert f"the translation calls Python's builtin `{name}`" in output, output


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_builtin_left_alone_folds(name: str) -> None:
    _, scheduler = CASES[name]
    output = run_codemod(LOOP.format(shadow="", scheduler=scheduler), TorchToOptax)
    assert "calls Python's builtin" not in output and "learning_rate=sched" in output, output
