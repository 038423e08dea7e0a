"""Whole training loops, run twice: the torch script as written on a torch model, and the
NNX codemod's own translation of it on an NNX model with the same weights (``nnx.Linear``
kernel = torch weight transposed), in float64. What is compared: every recorded loss and the
final parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import libcst as cst
import numpy as np
import torch
from flax import nnx
from libcst.codemod import CodemodContext

from ml_switcheroo.codemods.optimizer import TorchToNNX
from tests.differential.harness import float64

SIZES = (4, 8, 2)  # in, hidden, out
BATCHES = 12
BATCH = 6
EPOCHS = 3  # 36 updates


class TorchNet(torch.nn.Module):
    """Linear, tanh, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(SIZES[0], SIZES[1])
        self.out = torch.nn.Linear(SIZES[1], SIZES[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(x)))


class NnxNet(nnx.Module):
    """The same network in NNX."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.hidden = nnx.Linear(SIZES[0], SIZES[1], rngs=rngs, param_dtype=jnp.float64)
        self.out = nnx.Linear(SIZES[1], SIZES[2], rngs=rngs, param_dtype=jnp.float64)

    def __call__(self, x: Any) -> Any:
        return self.out(jnp.tanh(self.hidden(x)))


LAYERS = ("hidden", "out")


def nnx_copy(model: TorchNet) -> NnxNet:
    """An NNX network with ``model``'s weights."""
    net = NnxNet(nnx.Rngs(0))
    for name in LAYERS:
        layer = getattr(model, name)
        getattr(net, name).kernel[...] = jnp.asarray(layer.weight.detach().numpy().T)
        getattr(net, name).bias[...] = jnp.asarray(layer.bias.detach().numpy())
    return net


def torch_weights(model: TorchNet) -> list[np.ndarray]:
    return [
        array
        for name in LAYERS
        for array in (
            getattr(model, name).weight.detach().numpy().T,
            getattr(model, name).bias.detach().numpy(),
        )
    ]


def nnx_weights(model: NnxNet) -> list[np.ndarray]:
    return [
        np.asarray(array[...])
        for name in LAYERS
        for array in (getattr(model, name).kernel, getattr(model, name).bias)
    ]


def batches(seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        (rng.normal(size=(BATCH, SIZES[0])), rng.normal(size=(BATCH, SIZES[2])))
        for _ in range(BATCHES)
    ]


def translate_nnx(source: str, **options: Any) -> str:
    """The NNX codemod's output for ``source``."""
    command = TorchToNNX(CodemodContext(filename=None), **options)
    return command.transform_module(cst.parse_module(source)).code


@dataclass
class LoopRun:
    losses: list[float]
    weights: list[np.ndarray]


def run_torch_loop(source: str, seed: int = 0) -> LoopRun:
    """``source`` run as written: ``make_model()`` builds the torch network, ``loader`` holds
    torch batches, ``losses`` collects what the script records."""
    with float64():
        torch.manual_seed(seed)
        model = TorchNet()
        data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches(seed)]
        scope = {"make_model": lambda: model, "loader": data, "losses": [], "EPOCHS": EPOCHS}
        exec(compile(source, "<torch loop>", "exec"), scope)
        return LoopRun([float(v) for v in scope["losses"]], torch_weights(model))


def run_nnx_loop(source: str, translated: str, seed: int = 0) -> LoopRun:
    """The translation run on an NNX copy of the torch network ``run_torch_loop`` starts from."""
    with float64():
        torch.manual_seed(seed)
        model = nnx_copy(TorchNet())
        data = [(jnp.asarray(x), jnp.asarray(y)) for x, y in batches(seed)]
        scope = {"make_model": lambda: model, "loader": data, "losses": [], "EPOCHS": EPOCHS}
        exec(compile(translated, "<nnx loop>", "exec"), scope)
        return LoopRun([float(v) for v in scope["losses"]], nnx_weights(model))


def worst_rel(torch_run: LoopRun, nnx_run: LoopRun) -> float:
    """The worst relative difference over the recorded losses and the final parameters."""
    assert len(torch_run.losses) == len(nnx_run.losses) and torch_run.losses
    pairs = [(np.asarray(torch_run.losses), np.asarray(nnx_run.losses))]
    pairs += list(zip(torch_run.weights, nnx_run.weights, strict=True))
    return max(
        float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a))), 1e-300)) for a, b in pairs
    )


def translated_rel(source: str, **options: Any) -> tuple[str, float]:
    """The NNX translation of ``source`` and its worst relative difference from torch when run."""
    translated = translate_nnx(source, **options)
    return translated, worst_rel(run_torch_loop(source), run_nnx_loop(source, translated))
