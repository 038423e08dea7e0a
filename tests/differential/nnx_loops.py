"""Whole training loops, run twice: the torch script as written on a torch model, and the
NNX codemod's own translation of it on an NNX model with the same weights (``nnx.Linear``
kernel = torch weight transposed), in float64. What is compared: every recorded loss and the
final parameters."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import libcst as cst
import numpy as np
import torch
from flax import nnx
from libcst.codemod import CodemodContext

from ml_switcheroo.codemods.optimizer import TorchToNNX
from tests.differential.harness import float64
from tests.support import convert_package, importable, write_package

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


def torch_named_parameters(self: nnx.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """Torch copies of an NNX model's parameters, as ``named_parameters()`` (patched onto
    ``NnxNet`` where a translation keeps torch lines that build param groups from it)."""
    for path, value in nnx.to_flat_state(nnx.state(self, nnx.Param)):
        yield ".".join(map(str, path)), torch.tensor(np.array(value[...]))


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


def torch_batches(seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``batches(seed)`` as torch tensors."""
    return [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches(seed)]


def nnx_batches(seed: int = 0) -> list[tuple[Any, Any]]:
    """``batches(seed)`` as jax arrays."""
    return [(jnp.asarray(x), jnp.asarray(y)) for x, y in batches(seed)]


def torch_net(seed: int = 0) -> TorchNet:
    """The torch network torch's generator seeded with ``seed`` builds."""
    torch.manual_seed(seed)
    return TorchNet()


def nnx_net(seed: int = 0) -> NnxNet:
    """An NNX copy of ``torch_net(seed)`` (the same weights)."""
    return nnx_copy(torch_net(seed))


def translate_nnx(source: str, **options: Any) -> str:
    """The NNX codemod's output for ``source``."""
    command = TorchToNNX(CodemodContext(filename=None), **options)
    return command.transform_module(cst.parse_module(source)).code


@dataclass
class LoopRun:
    losses: list[float]
    weights: list[np.ndarray]


def run_script(
    source: str, model: Any, data: list[Any], where: str, names: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The globals of ``source`` run as a script: ``make_model()`` returns ``model``,
    ``loader`` holds ``data``, ``losses`` collects what the script records, ``EPOCHS``, and
    ``names`` (more globals the script reads)."""
    scope = {"make_model": lambda: model, "loader": data, "losses": [], "EPOCHS": EPOCHS}
    scope.update(names or {})
    exec(compile(source, where, "exec"), scope)
    return scope


def run_torch_script(
    source: str, seed: int = 0, names: dict[str, Any] | None = None
) -> tuple[TorchNet, dict[str, Any]]:
    """``source`` run as written (float64 on) on ``torch_net(seed)`` and torch batches: the
    network and the script's globals."""
    model = torch_net(seed)
    return model, run_script(source, model, torch_batches(seed), "<torch loop>", names)


def run_torch_loop(source: str, seed: int = 0, names: dict[str, Any] | None = None) -> LoopRun:
    """``source`` run as written (``run_script``) on the torch network, float64."""
    with float64():
        model, scope = run_torch_script(source, seed, names)
        return LoopRun([float(v) for v in scope["losses"]], torch_weights(model))


def run_nnx_loop(
    source: str, translated: str, seed: int = 0, names: dict[str, Any] | None = None
) -> LoopRun:
    """The translation run on an NNX copy of the torch network ``run_torch_loop`` starts from."""
    with float64():
        model = nnx_net(seed)
        scope = run_script(translated, model, nnx_batches(seed), "<nnx loop>", names)
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


def converted(root: Path, package: str) -> dict[str, str]:
    """Every file of the package through ``TorchToNNX`` as libcst's runner calls it."""
    return convert_package(root, package, TorchToNNX)


def run_main(root: Path, package: str, model: Any, data: list[Any]) -> list[float]:
    with importable(root, package):
        main = importlib.import_module(f"{package}.main").main
        return [float(v) for v in main(model, data, EPOCHS)]


def run_packages(torch_root: Path, nnx_root: Path, package: str) -> tuple[LoopRun, LoopRun]:
    """``package.main.main(model, loader, EPOCHS)`` imported from ``torch_root`` on the torch
    network and from ``nnx_root`` on its NNX copy, float64: what each returns and the final
    parameters."""
    with float64():
        model = torch_net()
        torch_run = LoopRun(run_main(torch_root, package, model, torch_batches()), [])
        torch_run.weights = torch_weights(model)
        net = nnx_net()
        nnx_run = LoopRun(run_main(nnx_root, package, net, nnx_batches()), nnx_weights(net))
    return torch_run, nnx_run


def translated_package_runs(
    root: Path,
    package: str,
    files: dict[str, str],
    port: Callable[[dict[str, str]], dict[str, str]],
) -> tuple[dict[str, str], LoopRun, LoopRun]:
    """``files`` written as ``package`` under ``root / "torch"`` and every file translated
    (``converted``); ``port`` of the translations (those of ``files``) written under
    ``root / "nnx"``; both run (``run_packages``): the translations and the two runs."""
    write_package(root / "torch", files, package)
    outputs = converted(root / "torch", package)
    ported = {name: text for name, text in port(outputs).items() if name in files}
    write_package(root / "nnx", ported, package)
    return (outputs, *run_packages(root / "torch", root / "nnx", package))


HELPER_MAIN = """\
import torch

from PACKAGE.helpers import change


def main(model, loader, epochs):
    losses = []
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    change(model)
    for epoch in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses
"""


def helper_package(package: str, helper: str) -> dict[str, str]:
    """The files of ``package``: ``main.py`` training after a call of ``change(model)``
    imported from ``helpers.py``, which is ``helper``."""
    return {"main.py": HELPER_MAIN.replace("PACKAGE", package), "helpers.py": helper}


def converted_helper_main(root: Path, package: str, helper: str) -> str:
    """``main.py`` of ``helper_package(package, helper)``, written under ``root``, translated
    (``converted``)."""
    write_package(root, helper_package(package, helper), package)
    return converted(root, package)["main.py"]
