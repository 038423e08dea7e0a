"""A scheduler's function defined between the optimizer and the scheduler (``opt = SGD(...)``,
``def lr_lambda(step): ...``, ``sched = LambdaLR(opt, lr_lambda)``: the common order). The
schedule moved up above the ``def`` read the name before it was bound (probe s41a M1: the
translated file raised NameError, both targets); the optimizer now moves down to the
scheduler, and the translation matches torch (float64, 60 updates)."""

from __future__ import annotations

import pytest

from tests.differential.harness import EXACT, measure_loop

LOOP = "for batch in batches:\n    opt.zero_grad()\n    loss = batch()\n    loss.backward()\n    opt.step()\n    sched.step()\n"
SOURCES = {
    "LambdaLR": "import torch\nopt = torch.optim.SGD(params, lr=0.1, momentum=0.9)\n"
    "def lr_lambda(step):\n    return 1.0 / (1.0 + 0.05 * step)\n"
    "sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)\n",
    "MultiplicativeLR": "import torch\nopt = torch.optim.SGD(params, lr=0.1, momentum=0.9)\n"
    "def factor(epoch):\n    return 0.95\n"
    "sched = torch.optim.lr_scheduler.MultiplicativeLR(opt, lr_lambda=factor)\n",
}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_the_translation_runs_and_matches_torch(name: str) -> None:
    rel, translation = measure_loop(SOURCES[name] + LOOP, exact=True)
    assert translation.code.index("def ") < translation.code.index("sched = "), translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"
