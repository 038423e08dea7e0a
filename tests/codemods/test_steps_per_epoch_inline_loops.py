"""``--steps-per-epoch`` on a scheduler stepped in the loop around the optimizer's loop (probe
F7): the option states how many updates an epoch has; the loop must show it: one optimizer
step directly in a ``for`` loop of the epoch loop's body, nothing leaving or skipping the rest
of it, and with ``len(X)`` a loop over ``X`` or ``enumerate(X)``. Otherwise the scheduler
escapes with the reason; the plain loop over ``loader`` folds."""

from __future__ import annotations

import textwrap

import pytest

from ml_switcheroo.codemods.optimizer import TorchToOptax
from tests.support import run_codemod

HEADER = """\
import itertools
import torch

opt = torch.optim.SGD(params, lr=0.1)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
"""

TRAPS = {
    "break": (
        """\
        for epoch in range(3):
            for i, batch in enumerate(loader):
                if i >= 5:
                    break
                batch.sum().backward()
                opt.step()
            sched.step()
        """,
        "the batch loop can be left or skipped early",
    ),
    "accumulation": (
        """\
        for epoch in range(3):
            for i, batch in enumerate(loader):
                batch.sum().backward()
                if (i + 1) % 2 == 0:
                    opt.step()
            sched.step()
        """,
        "not stepped directly in a `for` loop of the epoch loop's body",
    ),
    "islice": (
        """\
        for epoch in range(3):
            for batch in itertools.islice(loader, 5):
                batch.sum().backward()
                opt.step()
            sched.step()
        """,
        "the batch loop iterates `itertools.islice(loader, 5)`, not `loader`",
    ),
    "zip": (
        """\
        for epoch in range(3):
            for batch, other in zip(loader, other_loader):
                batch.sum().backward()
                opt.step()
            sched.step()
        """,
        "the batch loop iterates `zip(loader, other_loader)`, not `loader`",
    ),
    "two_loops": (
        """\
        for epoch in range(3):
            for batch in loader:
                batch.sum().backward()
                opt.step()
            for batch in extra_loader:
                batch.sum().backward()
                opt.step()
            sched.step()
        """,
        "the optimizer is stepped in 2 places",
    ),
}


@pytest.mark.parametrize("trap", sorted(TRAPS))
def test_a_batch_loop_that_does_not_show_the_count_escapes(trap: str) -> None:
    loop, reason = TRAPS[trap]
    output = run_codemod(
        HEADER + textwrap.dedent(loop), TorchToOptax, steps_per_epoch="len(loader)"
    )
    assert "learning_rate=sched" not in output, output
    assert reason in output, output


@pytest.mark.parametrize("iterated", ["loader", "enumerate(loader)"])
def test_a_plain_loop_over_the_measured_loader_folds(iterated: str) -> None:
    loop = (
        f"for epoch in range(3):\n    for item in {iterated}:\n"
        "        loss = item.sum()\n        loss.backward()\n        opt.step()\n"
        "    sched.step()\n"
    )
    output = run_codemod(HEADER + loop, TorchToOptax, steps_per_epoch="len(loader)")
    assert "learning_rate=sched" in output, output
