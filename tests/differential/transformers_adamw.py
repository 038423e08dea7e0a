"""transformers 4.x's ``AdamW`` (transformers 5 removed it), re-implemented for the tests that run
PyTorch scripts using it: ``patched`` makes ``transformers.AdamW`` this class.

Checked against transformers 4.46.3's own AdamW (torch 2.13.0, float64, 60 steps, with and
without the linear-warmup schedule and clip_grad_norm_, correct_bias True/False, weight decay
0/0.2/0.3): bitwise equal trajectories (notes/s40/s40adamw.md)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pytest
import torch
import transformers


class TransformersAdamW(torch.optim.Optimizer):
    """transformers 4.x ``AdamW.step``: eps added to sqrt(v) before the bias correction, the
    weight decay (when > 0) applied to the updated parameters with the group's (scheduled) lr."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-3,
        betas: Any = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        correct_bias: bool = True,
        no_deprecation_warning: bool = False,
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


def patched(monkeypatch: pytest.MonkeyPatch) -> None:
    """``transformers.AdamW`` (``from transformers import AdamW``) is ``TransformersAdamW``."""
    monkeypatch.setattr(transformers, "AdamW", TransformersAdamW, raising=False)
