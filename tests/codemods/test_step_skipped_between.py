"""A scheduler's ``step()`` that something between it and the optimizer's ``step()`` may skip
does not run once per update: an exception a ``try``/``with`` inside the loop catches or
suppresses, a ``yield`` whose caller stops iterating. Such a scheduler stays torch code; the
same loop with nothing between the two steps, or the ``try`` around the whole loop, folds."""

from __future__ import annotations

import textwrap

import pytest

from ml_switcheroo.codemods.optimizer import TorchToOptax
from tests.support import run_codemod

HEADER = """\
import contextlib
import torch

opt = torch.optim.SGD(params, lr=0.1)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
"""

FOLDED = "opt = optax.sgd(learning_rate=sched)"

TRAPS = {
    "try_except": (
        """\
        for batch in batches:
            try:
                batch.sum().backward()
                opt.step()
                validate()
                sched.step()
            except ValueError:
                pass
        """,
        "caught by the `try` at example.py:7",
    ),
    "try_finally": (
        """\
        for batch in batches:
            try:
                batch.sum().backward()
                opt.step()
                validate()
                sched.step()
            finally:
                continue
        """,
        "caught by the `try` at example.py:7",
    ),
    "suppress": (
        """\
        for batch in batches:
            with contextlib.suppress(RuntimeError):
                batch.sum().backward()
                opt.step()
                check()
                sched.step()
        """,
        "caught by the `with` at example.py:7",
    ),
    "yield": (
        """\
        def train():
            for batch in batches:
                batch.sum().backward()
                opt.step()
                yield batch
                sched.step()
        """,
        "a `yield` or `await` (a caller may stop iterating) between",
    ),
}


@pytest.mark.parametrize("trap", sorted(TRAPS))
def test_a_step_that_may_be_skipped_stays_torch(trap: str) -> None:
    loop, reason = TRAPS[trap]
    output = run_codemod(HEADER + textwrap.dedent(loop), TorchToOptax)
    assert FOLDED not in output, output
    escape = output.split("ESCAPE-BEGIN torch.optim.lr_scheduler.StepLR")[1]
    assert reason in escape, output


@pytest.mark.parametrize(
    "loop",
    [
        # nothing between the two steps: nothing can skip the scheduler's
        """\
        for batch in batches:
            with contextlib.suppress(RuntimeError):
                batch.sum().backward()
                opt.step()
                sched.step()
        """,
        # the try around the whole loop: an exception ends the training, both steps with it
        """\
        try:
            for batch in batches:
                batch.sum().backward()
                opt.step()
                validate()
                sched.step()
        except ValueError:
            pass
        """,
    ],
)
def test_a_step_nothing_can_skip_folds(loop: str) -> None:
    output = run_codemod(HEADER + textwrap.dedent(loop), TorchToOptax)
    assert FOLDED in output, output
