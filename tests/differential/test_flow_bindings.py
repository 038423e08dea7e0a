"""Names bound more than once, translated by the codemod and run against torch (float64).

Where every binding is a translated optimizer, each path of the translated module reproduces
torch's trajectory. Where one binding stays a torch optimizer (LBFGS), the calls on the name
are kept: that path of the translated module runs exactly like the original.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from tests.differential.harness import (
    EXACT,
    execute,
    float64,
    linear_problem,
    measure,
    translate,
)

BRANCHES = """\
import torch
if fast:
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True)
else:
    opt = torch.optim.SGD(params, lr=0.1, weight_decay=0.01)
"""

REBOUND = """\
import torch
opt = None
opt = torch.optim.SGD(params, lr=0.1)
opt = torch.optim.SGD(params, lr=0.05, momentum=0.5)
"""

SGD_OR_LBFGS = """\
import torch
if fast:
    opt = torch.optim.SGD(params, lr=0.1)
else:
    opt = torch.optim.LBFGS(params, lr=0.5, max_iter=3)
def train(loss_fn, steps):
    for k in range(steps):
        opt.zero_grad()
        loss = loss_fn(k)
        loss.backward()
        opt.step(lambda: loss_fn(k))
"""


@pytest.mark.parametrize("fast", [True, False])
def test_each_branch_of_two_translated_sgd_bindings_reproduces_torch(fast: bool) -> None:
    rel, translation = measure(BRANCHES, env={"fast": fast})
    assert len(translation.conversions) == 2
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"


def test_last_of_several_translated_sgd_bindings_reproduces_torch() -> None:
    rel, translation = measure(REBOUND)
    assert len(translation.conversions) == 2
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"


def _lbfgs_trajectory(code: str, steps: int = 8) -> list[np.ndarray]:
    """Parameters after each step of ``train`` in ``code`` on its LBFGS path."""
    problem = linear_problem()
    params = [torch.tensor(v, requires_grad=True) for v in problem.init.values()]
    named = dict(zip(problem.init, params, strict=True))
    namespace: dict[str, Any] = execute(code, {"fast": False, "params": params})
    trajectory = []
    for k in range(steps):
        namespace["train"](lambda _, k=k: problem.torch_loss(named, k), 1)
        trajectory.append(np.concatenate([p.detach().numpy().ravel() for p in params]))
    return trajectory


def test_lbfgs_path_of_a_mixed_name_runs_like_the_original() -> None:
    translation = translate(SGD_OR_LBFGS)
    assert "opt = optax.sgd(learning_rate=0.1)" in translation.code
    assert "        opt.zero_grad()\n" in translation.code
    with float64():
        original = _lbfgs_trajectory(SGD_OR_LBFGS)
        translated = _lbfgs_trajectory(translation.code)
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(original, translated, strict=True))
    assert worst == 0.0, translation.code
