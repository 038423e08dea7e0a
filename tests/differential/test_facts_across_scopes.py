"""Facts across the methods of a class, translated by the codemod and run against torch
(float64, 60 steps).

A trainer keeps its model as ``self.model = model`` and builds its optimizer over
``model.parameters()`` in ``__init__``; its training step clips ``self.model.parameters()``
before ``self.opt.step()``. The two are one model object (the program stores ``.model`` once),
so the clip folds into the optimizer's chain. The torch side runs the original class's
``train_step``; the optax side takes the translated class's ``opt`` and applies one update per
step, as the training step's escape hatch says.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.differential.harness import (
    EXACT,
    STEPS,
    Problem,
    execute,
    float64,
    linear_problem,
    rel_error,
    run_optax,
    translate,
)

TRAINER = """\
import torch


class Trainer:
    def __init__(self, model, lr):
        self.model = model
        self.opt = {constructor}

    def train_step(self, k):
        self.opt.zero_grad()
        loss = self.model(k)
        loss.backward()
        {clip}
        self.opt.step()
"""

CASES = [
    (
        "torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=0.01)",
        "torch.nn.utils.clip_grad_norm_(self.model.parameters(), 0.5)",
    ),
    (
        "torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.8, 0.99), weight_decay=0.1)",
        "torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=0.3)",
    ),
    (
        "torch.optim.Adam(model.parameters(), lr=lr)",
        "torch.nn.utils.clip_grad_value_(self.model.parameters(), 0.05)",
    ),
]


class TorchModel:
    """A model object: its parameters, and the step's loss when called."""

    def __init__(self, problem: Problem, params: dict[str, torch.Tensor]) -> None:
        self.problem, self.params = problem, params

    def parameters(self) -> Any:
        return iter(self.params.values())

    def __call__(self, k: int) -> torch.Tensor:
        return self.problem.torch_loss(self.params, k)


def torch_trajectory(source: str, problem: Problem, lr: float) -> list[dict[str, Any]]:
    """Parameters after each of the original trainer's ``train_step`` calls."""
    params = {k: torch.tensor(v, requires_grad=True) for k, v in problem.init.items()}
    trainer = execute(source, {})["Trainer"](TorchModel(problem, params), lr)
    out = []
    for k in range(STEPS):
        trainer.train_step(k)
        out.append({n: p.detach().numpy().copy() for n, p in params.items()})
    return out


NORM_TOLERANCE = 1e-6  # the map's tolerance of clip_grad_norm_ without --exact


@pytest.mark.parametrize("exact", [False, True], ids=["default", "exact"])
@pytest.mark.parametrize("constructor,clip", CASES, ids=[c for _, c in CASES])
def test_a_clip_of_self_model_folds_into_the_optimizer_over_model(
    constructor: str, clip: str, exact: bool
) -> None:
    source = TRAINER.format(constructor=constructor, clip=clip)
    translation = translate(source, exact=exact)
    assert "self.opt = optax.chain(" in translation.code, translation.code
    assert [r.reason for r in translation.escapes if "clip" in r.api] == []
    with float64():
        problem = linear_problem()
        torch_traj = torch_trajectory(source, problem, 0.05)
        trainer = execute(translation.code, {})["Trainer"](object(), 0.05)
        optax_traj, _ = run_optax(problem, trainer.opt)
        rel = rel_error(problem, torch_traj, optax_traj)
    tolerance = NORM_TOLERANCE if "clip_grad_norm_" in clip and not exact else EXACT
    assert rel < tolerance, f"rel={rel:.3e}\n{translation.code}"


def test_the_clip_binds_so_the_comparison_can_fail() -> None:
    """The trainer translated without its clip is far from torch with it: the clip binds."""
    constructor, clip = CASES[0]
    source = TRAINER.format(constructor=constructor, clip=clip)
    unclipped = translate(TRAINER.format(constructor=constructor, clip="pass"))
    assert "clip" not in unclipped.code
    with float64():
        problem = linear_problem()
        torch_traj = torch_trajectory(source, problem, 0.05)
        trainer = execute(unclipped.code, {})["Trainer"](object(), 0.05)
        optax_traj, _ = run_optax(problem, trainer.opt)
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel > 1e-3, f"rel={rel:.3e}"
