"""A torch tensor of an expression as a hyper-parameter (torchrl:
``lr=torch.tensor(cfg.optim.lr, device=device)``), run against torch.

``torch.tensor`` copies its data; the codemod writes ``float(<data>)``. Under float64 default
dtype that is torch's value for a Python float, a numpy float64 and a 0-d float64 tensor, and
torch's arithmetic with the tensor is float64 (float64, 60 steps, rel < 1e-9). Under float32
default dtype torch rounds a Python float to float32 and computes the step size (Adam) and the
decay factor (AdamW) in float32: the conversion's warning states the measured differences,
which ``test_float32_default_dtype_differs_as_the_warning_says`` checks.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace
from typing import Any

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from tests.differential.harness import (
    EXACT,
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
from tests.differential.nnx_loops import translated_rel

OPTIMIZERS = {
    "sgd": "torch.optim.SGD(params, lr=torch.tensor(cfg.lr, device=device), momentum=0.9)",
    "adam": "torch.optim.Adam(params, lr=torch.tensor(cfg.lr, device=device), eps=1e-5)",
    "adamw": "torch.optim.AdamW(params, lr=torch.tensor(cfg.lr), weight_decay=0.1)",
    "adam_float64": "torch.optim.Adam(params, lr=torch.tensor(cfg.lr, dtype=torch.float64))",
}
VALUES = {
    "python_float": lambda: 0.02,
    "numpy_float64": lambda: np.float64(0.02),
    "tensor_0d_float64": lambda: torch.tensor(0.02, dtype=torch.float64),
}


def environment(value: Any) -> dict[str, Any]:
    return {"cfg": SimpleNamespace(lr=value, gamma=0.5), "device": "cpu"}


@pytest.mark.parametrize("value", sorted(VALUES))
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_tensor_of_an_expression_reproduces_torch(optimizer: str, value: str) -> None:
    source = f"import torch\nopt = {OPTIMIZERS[optimizer]}\n"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch.tensor(<a tensor>) copies, warning
        rel, translation = measure(source, env=environment(VALUES[value]()))
    assert "float(cfg.lr)" in translation.code and "torch" not in translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"


def test_tensor_of_an_expression_under_a_scheduler_reproduces_torch() -> None:
    """--exact: the stock schedule is within the map's tolerance of torch's, not exact."""
    source = training_module(
        "torch.optim.SGD(params, lr=torch.tensor(cfg.lr), momentum=0.9)",
        "torch.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.5)",
    )
    rel, translation = measure_training(source, env=environment(0.1), exact=True)
    assert "optax.exponential_decay(float(cfg.lr)" in translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"


NNX_LOOP = """\
import torch
from types import SimpleNamespace

cfg = SimpleNamespace(optim=SimpleNamespace(lr=0.01))
device = "cpu"
model = make_model()
opt = torch.optim.Adam(model.parameters(), lr=torch.tensor(cfg.optim.lr, device=device))
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""


def test_nnx_loop_with_a_tensor_of_an_expression_matches_torch() -> None:
    translated, rel = translated_rel(NNX_LOOP)
    assert "optax.adam(learning_rate=float(cfg.optim.lr))" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}\n{translated}"


# Measured (float64 parameters, torch's default dtype float32 when the tensor is made): SGD
# 1.2e-8, Adam 1.5e-8 (1.1e-9 at lr 1e-3), AdamW 9.8e-7: the warning's "SGD and Adam about
# 1e-8, AdamW about 1e-6 relative".
FLOAT32_BOUNDS = {"sgd": 5e-8, "adam": 5e-8, "adamw": 5e-6}


@pytest.mark.parametrize("optimizer", sorted(FLOAT32_BOUNDS))
def test_float32_default_dtype_differs_as_the_warning_says(optimizer: str) -> None:
    source = f"import torch\nopt = {OPTIMIZERS[optimizer]}\n"
    translation = translate(source)
    (record,) = translation.conversions
    assert any("SGD and Adam about 1e-8, AdamW about 1e-6 relative" in w for w in record.warnings)
    env = environment(0.02)
    with float64():
        problem = linear_problem()

        def under_float32(plist: list[torch.Tensor]) -> Any:
            torch.set_default_dtype(torch.float32)
            try:
                return execute(source, {**env, "params": plist})["opt"]
            finally:
                torch.set_default_dtype(torch.float64)

        torch_traj = run_torch(problem, under_float32)
        jax_params = [jnp.asarray(v) for v in problem.init.values()]
        tx = execute(translation.code, {**env, "params": jax_params})["opt"]
        optax_traj, _ = run_optax(problem, tx)
        rel = rel_error(problem, torch_traj, optax_traj)
    assert EXACT / 1000 < rel < FLOAT32_BOUNDS[optimizer], f"rel={rel:.3e}"
