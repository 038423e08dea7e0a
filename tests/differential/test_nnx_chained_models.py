"""CycleGAN's optimizer over two models' chained parameters (NNX target).

``torch.optim.Adam(itertools.chain(netG_A2B.parameters(), netG_B2A.parameters()), ...)``
escapes (the step's loss would have to be a function of both models, which the translation
does not write), with the code to write: one nnx.Optimizer over the tuple of the models. The
suggestion's optimizer, taken from the codemod's own escape and executed, trains both models
as the torch optimizer does (36 updates, float64). Trap twins: chains that are not
``<model>.parameters()`` of distinct models keep the general escape; one model converts.
"""

from __future__ import annotations

import itertools
import re

import jax.numpy as jnp
import numpy as np
import optax
import torch
from flax import nnx

from tests.differential.harness import EXACT, float64
from tests.support import nnx_output

STEPS = 36
CYCLEGAN = """\
import itertools
import torch

netG_A2B = make_generator()
netG_B2A = make_generator()
optimizer_G = torch.optim.Adam(
    itertools.chain(netG_A2B.parameters(), netG_B2A.parameters()), lr=0.0002, betas=(0.5, 0.999)
)
"""
TUPLE_REASON = "one nnx.Optimizer over the tuple `(netG_A2B, netG_B2A)`"
GENERAL_REASON = "nnx.Optimizer trains one model's parameters"


def _suggested_optimizer(output: str) -> str:
    """The ``nnx.Optimizer(models, <tx>, wrt=nnx.Param)`` of the escape's suggestion."""
    found = re.search(r"nnx\.Optimizer\(models, (.*?), wrt=nnx\.Param\)", output)
    assert found is not None, output
    return found.group(0)


def test_chained_models_escape_with_a_tuple_optimizer_and_its_loss() -> None:
    output = nnx_output(CYCLEGAN)
    assert TUPLE_REASON in output and "models = (netG_A2B, netG_B2A)" in output, output
    assert "nnx.value_and_grad(lambda models:" in output
    assert _suggested_optimizer(output).startswith("nnx.Optimizer(models, optax.adam(")
    assert "itertools.chain(netG_A2B.parameters(), netG_B2A.parameters())" in output


def _weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    shapes = {"a_w": (3, 4), "a_b": (4,), "b_w": (4, 3), "b_b": (3,)}
    return {name: rng.normal(size=shape) for name, shape in shapes.items()}


def _torch_run(w: dict[str, np.ndarray], batches: list[np.ndarray]) -> list[np.ndarray]:
    a, b = torch.nn.Linear(3, 4), torch.nn.Linear(4, 3)
    with torch.no_grad():
        for layer, key in ((a, "a"), (b, "b")):
            layer.weight.copy_(torch.tensor(w[f"{key}_w"].T))
            layer.bias.copy_(torch.tensor(w[f"{key}_b"]))
    opt = torch.optim.Adam(
        itertools.chain(a.parameters(), b.parameters()), lr=0.0002 * 50, betas=(0.5, 0.999)
    )
    for x in map(torch.tensor, batches):
        opt.zero_grad()
        loss = ((b(a(x)) - x) ** 2).mean() + 0.1 * (a(x) ** 2).mean()
        loss.backward()
        opt.step()
    return [p.detach().numpy() for p in (a.weight.T, a.bias, b.weight.T, b.bias)]


def _nnx_run(optimizer: str, w: dict[str, np.ndarray], batches: list[np.ndarray]) -> list:
    def linear(key: str, n_in: int, n_out: int) -> nnx.Linear:
        layer = nnx.Linear(n_in, n_out, rngs=nnx.Rngs(0), param_dtype=jnp.float64)
        layer.kernel[...] = jnp.asarray(w[f"{key}_w"])
        layer.bias[...] = jnp.asarray(w[f"{key}_b"])
        return layer

    netG_A2B, netG_B2A = linear("a", 3, 4), linear("b", 4, 3)
    models = (netG_A2B, netG_B2A)
    opt = type("opt", (), {"lr": 0.0002 * 50})  # the suggestion reads `opt.lr` of the script
    optimizer_G = eval(optimizer, {"nnx": nnx, "optax": optax, "models": models, "opt": opt})

    def loss_fn(models, x):
        netG_A2B, netG_B2A = models
        return ((netG_B2A(netG_A2B(x)) - x) ** 2).mean() + 0.1 * (netG_A2B(x) ** 2).mean()

    for x in batches:
        _, grads = nnx.value_and_grad(loss_fn)(models, jnp.asarray(x))
        optimizer_G.update(models, grads)
    return [np.asarray(v) for v in (netG_A2B.kernel, netG_A2B.bias, netG_B2A.kernel, netG_B2A.bias)]


def test_the_suggested_tuple_optimizer_trains_both_models_as_torch() -> None:
    source = CYCLEGAN.replace("lr=0.0002", "lr=opt.lr")
    optimizer = _suggested_optimizer(nnx_output(source))
    rng = np.random.default_rng(0)
    w = _weights(rng)
    batches = [rng.normal(size=(5, 3)) for _ in range(STEPS)]
    with float64():
        expected = _torch_run(w, batches)
        got = _nnx_run(optimizer, w, batches)
    start = [w["a_w"], w["a_b"], w["b_w"], w["b_b"]]
    moved = max(float(np.abs(e - s).max()) for e, s in zip(expected, start, strict=True))
    rel = max(float(np.abs(g - e).max()) for g, e in zip(got, expected, strict=True)) / moved
    assert moved > 1e-3 and rel < EXACT, rel


def _general_escape(chain: str) -> str:
    output = nnx_output(CYCLEGAN.replace(CYCLEGAN.split("(\n    ")[1].split(", lr=")[0], chain))
    assert GENERAL_REASON in output and "one nnx.Optimizer over the tuple" not in output, output
    return output


def test_trap_a_chain_of_a_model_and_a_list_keeps_the_general_escape() -> None:
    _general_escape("itertools.chain(netG_A2B.parameters(), [extra])")


def test_trap_a_chain_of_one_model_twice_keeps_the_general_escape() -> None:
    _general_escape("itertools.chain(netG_A2B.parameters(), netG_A2B.parameters())")


def test_trap_a_starred_chain_and_a_part_keep_the_general_escape() -> None:
    _general_escape("itertools.chain(*[m.parameters() for m in nets])")
    _general_escape("itertools.chain(netG_A2B.parameters(), netG_B2A.head.weight)")


def test_trap_another_function_joining_parameters_keeps_the_general_escape() -> None:
    _general_escape("join(netG_A2B.parameters(), netG_B2A.parameters())")


def test_twin_one_model_of_the_two_in_the_loss_still_converts() -> None:
    output = nnx_output(
        CYCLEGAN.replace(CYCLEGAN.split("(\n    ")[1].split(", lr=")[0], "netG_A2B.parameters()")
    )
    assert "nnx.Optimizer(netG_A2B, optax.adam(" in output, output
