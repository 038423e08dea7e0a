"""transformers.AdamW (transformers 4.x; transformers 5 removed it) escapes: it is neither
torch's nor optax's AdamW. Its suggestion, run as written, against transformers' algorithm
(``TransformersAdamW`` below, the step of transformers 4.x's ``optimization.AdamW``), float64,
60 updates; and the gap to optax.adamw that makes it an escape."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import jax.numpy as jnp
import optax
import pytest
import torch

from tests.differential.harness import (
    EXACT,
    execute,
    float64,
    linear_problem,
    rel_error,
    run_optax,
    run_torch,
    translate,
)


class TransformersAdamW(torch.optim.Optimizer):
    """transformers 4.x ``AdamW.step``: eps added to sqrt(v) before the bias correction, the
    weight decay applied to the updated parameters."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-3,
        betas: Any = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        correct_bias: bool = True,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "correct_bias": correct_bias,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.mul_(beta1).add_(p.grad, alpha=1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1.0 - beta2)
                denom = exp_avg_sq.sqrt().add_(group["eps"])
                step_size = group["lr"]
                if group["correct_bias"]:
                    bias_correction1 = 1.0 - beta1 ** state["step"]
                    bias_correction2 = 1.0 - beta2 ** state["step"]
                    step_size = step_size * math.sqrt(bias_correction2) / bias_correction1
                p.addcdiv_(exp_avg, denom, value=-step_size)
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=-group["lr"] * group["weight_decay"])


CASES = {  # the constructor's arguments after params
    "defaults": "lr=0.05",
    "weight_decay": "lr=0.05, weight_decay=0.3, eps=0.1",
    "no_bias_correction": "lr=0.05, betas=(0.8, 0.9), eps=0.01, correct_bias=False",
}


def suggested(arguments: str) -> tuple[Any, str]:
    """The escape's suggestion for ``AdamW(params, <arguments>)`` run: its ``opt``, and the
    reason."""
    source = f"from transformers import AdamW\n\nopt = AdamW(params, {arguments})\n"
    translation = translate(source)
    (record,) = translation.escapes
    assert record.api == "transformers.AdamW", record
    code = "\n".join(line for line in record.suggestion.splitlines() if line.strip())
    return execute(code, {"optax": optax, "jnp": jnp})["opt"], record.reason


def torch_reference(arguments: str) -> Any:
    return lambda plist: eval(f"TransformersAdamW(plist, {arguments})")  # noqa: S307


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_suggestion_matches_transformers_adamw(name: str) -> None:
    tx, reason = suggested(CASES[name])
    assert "adds eps before the bias correction" in reason, reason
    with float64():
        problem = linear_problem()
        torch_traj = run_torch(problem, torch_reference(CASES[name]))
        optax_traj, _ = run_optax(problem, tx)
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel < EXACT, f"rel {rel:.3e}"


def test_optax_adamw_is_not_transformers_adamw() -> None:
    """Why it escapes: optax.adamw with the same numbers is far off."""
    arguments = CASES["weight_decay"]
    with float64():
        problem = linear_problem()
        torch_traj = run_torch(problem, torch_reference(arguments))
        tx = optax.adamw(learning_rate=0.05, eps=0.1, weight_decay=0.3)
        optax_traj, _ = run_optax(problem, tx)
        assert rel_error(problem, torch_traj, optax_traj) > 1e-3
