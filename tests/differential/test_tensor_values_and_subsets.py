"""Torch tensors as hyper-parameters, and parameter subsets, run against torch.

* ``torch.tensor(<number>)`` hyper-parameters: the codemod's output (the number) reproduces
  torch, which runs with the tensors (float64, 60 steps, rel < 1e-9). Under float32 (torch's
  usual default dtype) the translation is as close to torch with tensors as to torch with the
  Python numbers: the tensors add nothing beyond float32 rounding.
* Parameter subsets escape; what their suggestions write is exact: ``optax.masked`` of a clip
  is torch's clip over part of the parameters, and ``optax.multi_transform`` with
  ``optax.set_to_zero()`` is a torch optimizer over part of them.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from tests.differential.harness import (
    EXACT,
    Problem,
    execute,
    float64,
    linear_problem,
    measure,
    measure_training,
    rel_error,
    run_optax,
    run_torch,
    training_module,
    translate,
)
from tests.support import stock_clip

TENSOR_CASES = [
    ("torch.optim.SGD(params, lr=torch.tensor(0.05))", False),
    (
        "torch.optim.SGD(params, lr=torch.tensor(0.05), momentum=torch.tensor(0.9), "
        "weight_decay=torch.tensor(0.1, dtype=torch.float64))",
        False,
    ),
    (
        "torch.optim.Adam(params, lr=torch.tensor(0.02), betas=(torch.tensor(0.8), torch.tensor(0.99)))",
        False,
    ),
    (
        "torch.optim.Adam(params, lr=torch.tensor(0.02), betas=(torch.tensor(0.8), torch.tensor(0.99)))",
        True,
    ),
    (
        "torch.optim.AdamW(params, lr=torch.as_tensor(0.02), "
        "weight_decay=torch.tensor(0.1, dtype=torch.float64))",
        False,
    ),
]


@pytest.mark.parametrize(
    "call,exact", TENSOR_CASES, ids=[("exact: " if e else "") + c for c, e in TENSOR_CASES]
)
def test_tensor_hyperparameters_translate_to_numbers_that_reproduce_torch(
    call: str, exact: bool
) -> None:
    rel, translation = measure(f"import torch\nopt = {call}\n", exact=exact)
    assert "torch" not in translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"


def test_tensor_lr_and_scheduler_gamma_reproduce_torch() -> None:
    source = training_module(
        "torch.optim.SGD(params, lr=torch.tensor(0.1), momentum=0.9)",
        "torch.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=torch.tensor(0.5))",
    )
    rel, translation = measure_training(source, exact=True)
    assert "learning_rate=sched" in translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"


# ----------------------------------------------------------------------------- float32


def run_torch_float32(problem: Problem, source: str) -> list[dict[str, np.ndarray]]:
    """Torch's trajectory under its usual float32 default dtype, with float32 parameters."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        params = {
            k: torch.tensor(v, dtype=torch.float32, requires_grad=True)
            for k, v in problem.init.items()
        }
        opt = execute(source, {"params": list(params.values())})["opt"]
        out = []
        for k in range(60):
            opt.zero_grad()
            wide = {n: p.double() for n, p in params.items()}
            problem.torch_loss(wide, k).float().backward()
            opt.step()
            out.append({n: p.detach().double().numpy().copy() for n, p in params.items()})
        return out
    finally:
        torch.set_default_dtype(previous)


@pytest.mark.parametrize(
    "call",
    [
        "torch.optim.SGD(params, lr=torch.tensor(1e-3), momentum=torch.tensor(0.9))",
        "torch.optim.Adam(params, lr=torch.tensor(1e-3), betas=(torch.tensor(0.9), torch.tensor(0.999)))",
    ],
)
def test_float32_tensors_add_no_error_beyond_float32_rounding(call: str) -> None:
    """Measured: SGD 3.6e-8 both ways; Adam 2.1e-7 both ways (torch with tensors vs numbers:
    1.3e-8, different float32 rounding order)."""
    source = f"import torch\nopt = {call}\n"
    numbers = source.replace("torch.tensor(", "(")
    problem = linear_problem()
    translation = translate(source)
    tx = execute(translation.code, {"params": []})["opt"]
    optax_traj, _ = run_optax(problem, tx, dtype=jnp.float32)
    with_tensors = rel_error(problem, run_torch_float32(problem, source), optax_traj)
    with_numbers = rel_error(problem, run_torch_float32(problem, numbers), optax_traj)
    assert with_tensors < 1e-6
    assert abs(with_tensors - with_numbers) < 1e-7, (with_tensors, with_numbers)


# ----------------------------------------------------------------------------- subsets


def test_masked_clip_suggestion_is_torch_clip_over_part_of_the_parameters() -> None:
    """torch clips only ``w``'s gradient and SGD steps ``w`` and ``b``; the suggestion puts
    ``optax.masked(<clip>, mask)`` at the head of the chain."""
    source = (
        "import torch\nopt = torch.optim.SGD(params, lr=0.1)\nfor batch in batches:\n"
        "    torch.nn.utils.clip_grad_norm_(params[:1], 0.05)\n    opt.step()\n"
    )
    translation = translate(source)
    (escape,) = [r for r in translation.escapes if "clip_grad_norm_" in r.api]
    assert f"optax.masked({stock_clip('0.05')}, mask)" in escape.suggestion
    with float64():
        problem = linear_problem()
        torch_traj = run_torch(
            problem,
            lambda plist: torch.optim.SGD(plist, lr=0.1),
            before_step=lambda plist: torch.nn.utils.clip_grad_norm_(plist[:1], 0.05),
        )
        mask = {"w": True, "b": False}
        tx = optax.chain(optax.masked(optax.clip_by_global_norm(0.05), mask), optax.sgd(0.1))
        optax_traj, _ = run_optax(problem, tx)
        assert rel_error(problem, torch_traj, optax_traj) < 1e-6  # clip_grad_norm_'s 1e-6


def test_multi_transform_suggestion_is_torch_optimizer_over_part_of_the_parameters() -> None:
    source = (
        "import torch\n"
        "opt = torch.optim.Adam([p for n, p in model.named_parameters() if n == 'w'], lr=0.02)\n"
    )
    (escape,) = translate(source).escapes
    assert (
        "optax.multi_transform({'trained': optax.adam(learning_rate=0.02), "
        "'frozen': optax.set_to_zero()}, param_labels)" in escape.suggestion
    )
    with float64():
        problem = linear_problem()
        torch_traj = run_torch(problem, lambda plist: torch.optim.Adam(plist[:1], lr=0.02))
        labels = {"w": "trained", "b": "frozen"}
        tx = optax.multi_transform(
            {"trained": optax.adam(learning_rate=0.02), "frozen": optax.set_to_zero()}, labels
        )
        optax_traj, _ = run_optax(problem, tx)
        assert rel_error(problem, torch_traj, optax_traj) < EXACT
