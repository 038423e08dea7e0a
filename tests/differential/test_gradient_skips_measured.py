"""Why a parameter that may get no gradient escapes its optimizer (s42, probe s41 F25, F26):
torch's optimizers skip a parameter whose ``.grad`` is None, the codemod's optax
transformation is given a zero gradient there and moves it. Measured here on the codemod's
own output for the optimizer (float64, 36 updates): multi-task heads with Adam (a head unused
in a step still moves by its moments) and a head-only gradient with AdamW's weight decay (the
unused part still decays) are far off torch, while the same loop with every parameter used
in every step is exact."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from tests.differential.harness import execute, float64, translate

STEPS = 36
_HEADS = {0: (0,), 1: (1,), 2: (0, 1)}  # a step's task -> the heads its loss runs


def _transformation(constructor: str) -> optax.GradientTransformation:
    """The optax transformation the codemod writes for ``constructor`` (no skip in the file)."""
    source = f"import torch\n\noptimizer = {constructor}\n"
    translation = translate(source)
    assert not translation.escapes, translation.code
    return execute(translation.code, {"model": None})["optimizer"]


def _run(constructor: str, tasks: list[int]) -> float:
    """Relative difference of the final weights: torch running ``constructor`` over a shared
    layer and two heads, step ``i`` training the heads ``_HEADS[tasks[i]]``, against the codemod's
    transformation with JAX's gradients of the same loss."""
    rng = np.random.default_rng(0)
    weights = {
        "hidden": rng.normal(size=(8, 4)),
        "head0": rng.normal(size=(2, 8)),
        "head1": rng.normal(size=(2, 8)),
    }
    batches = [(rng.normal(size=(16, 4)), rng.normal(size=(16, 2))) for _ in tasks]
    params = {k: torch.tensor(v, requires_grad=True) for k, v in weights.items()}
    model = type("Model", (), {"parameters": lambda self: iter(params.values())})()
    optimizer = eval(constructor, {"torch": torch, "model": model})
    for task, (x, y) in zip(tasks, batches, strict=True):
        optimizer.zero_grad()
        h = torch.tanh(torch.as_tensor(x) @ params["hidden"].T)
        heads = [params[f"head{t}"] for t in _HEADS[task]]
        loss = sum(((h @ w.T - torch.as_tensor(y)) ** 2).mean() for w in heads)
        loss.backward()
        optimizer.step()
    expected = {k: p.detach().numpy() for k, p in params.items()}

    def loss_fn(p: dict, x: jax.Array, y: jax.Array, task: int) -> jax.Array:
        h = jnp.tanh(x @ p["hidden"].T)
        return sum(jnp.mean((h @ p[f"head{t}"].T - y) ** 2) for t in _HEADS[task])

    tx = _transformation(constructor)
    p = {k: jnp.asarray(v) for k, v in weights.items()}
    state = tx.init(p)
    for task, (x, y) in zip(tasks, batches, strict=True):
        grads = jax.grad(loss_fn)(p, jnp.asarray(x), jnp.asarray(y), task)
        updates, state = tx.update(grads, state, p)
        p = optax.apply_updates(p, updates)
    return max(
        float(np.linalg.norm(np.asarray(p[k]) - expected[k]) / np.linalg.norm(expected[k]))
        for k in expected
    )


ADAM = "torch.optim.Adam(model.parameters(), lr=0.01)"
ADAMW = "torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)"


@pytest.mark.parametrize(
    ("constructor", "tasks"),
    [(ADAM, [i % 2 for i in range(STEPS)]), (ADAMW, [0] * STEPS)],
    ids=["heads_alternating_adam", "one_head_adamw"],
)
def test_a_parameter_without_a_gradient_moves_in_the_translation(
    constructor: str, tasks: list[int]
) -> None:
    with float64():
        assert _run(constructor, tasks) > 1e-3


@pytest.mark.parametrize(
    ("constructor", "tasks"),
    [(ADAM, [2] * STEPS), (ADAMW, [2] * STEPS), (ADAM, [0] * STEPS)],
    ids=["both_heads_adam", "both_heads_adamw", "one_head_never_the_other_adam"],
)
def test_the_twins_are_exact(constructor: str, tasks: list[int]) -> None:
    """Every parameter with a gradient in every step; or one never given any, without
    weight decay (Adam's moments stay zero: no move either way)."""
    with float64():
        assert _run(constructor, tasks) < 1e-9
