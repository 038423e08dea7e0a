"""A training step in a namespace package (``nshelper/loops.py``, a folder without
``__init__.py``, imported as ``from nshelper.loops import train_vanilla as train`` by the
script next to it: HobbitLong/RepDistiller's shape) converts across files:
``optimizer.TorchToNNX``'s own output of both files, imported the way ``python nsmain.py`` imports
them (the script's folder on ``sys.path``), matches PyTorch (losses and final parameters,
float64, 36 updates). Its trap twin (an import naming two files) escapes:
``tests/test_namespace_packages.py``."""

from __future__ import annotations

import importlib
from pathlib import Path

import libcst as cst
from libcst.codemod import CodemodContext

from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT, float64
from tests.differential.nnx_loops import (
    EPOCHS,
    LoopRun,
    nnx_batches,
    nnx_net,
    nnx_weights,
    torch_batches,
    torch_net,
    torch_weights,
    worst_rel,
)
from tests.support import importable, renders_a_step
from tests.test_convert_cli import tree

MAIN = """\
import torch

from nshelper.loops import train_vanilla as train


def main(model, loader, epochs):
    losses = []
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    for epoch in range(1, epochs + 1):
        train(epoch, loader, model, optimizer, losses)
    return losses
"""

LOOPS = """\
def train_vanilla(epoch, train_loader, model, optimizer, losses):
    for x, y in train_loader:
        loss = ((model(x) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
"""

FILES = {"nsmain.py": MAIN, "nshelper/loops.py": LOOPS}


def translated(root: Path) -> dict[str, str]:
    """Every file of ``FILES`` written under ``root`` and run through ``TorchToNNX`` as
    libcst's runner calls it."""
    tree(root, FILES)
    outputs = {}
    for name in FILES:
        context = CodemodContext(filename=str(root / name))
        module = cst.parse_module((root / name).read_text(encoding="utf-8"))
        outputs[name] = TorchToNNX(context).transform_module(module).code
    return outputs


def run_main(root: Path, model: object, data: list[object]) -> list[float]:
    """``nsmain.main`` imported with ``root`` (the script's folder) first on ``sys.path``."""
    importlib.invalidate_caches()
    with importable(root, "nsmain", "nshelper"):
        main = importlib.import_module("nsmain").main
        return [float(v) for v in main(model, data, EPOCHS)]


def test_the_step_of_a_namespace_package_translated_matches_torch(tmp_path: Path) -> None:
    outputs = translated(tmp_path / "torch")
    assert renders_a_step(outputs["nshelper/loops.py"]), outputs["nshelper/loops.py"]
    assert all(BEGIN not in text for text in outputs.values()), outputs
    tree(tmp_path / "nnx", outputs)
    with float64():
        model = torch_net()
        torch_run = LoopRun(run_main(tmp_path / "torch", model, torch_batches()), [])
        torch_run.weights = torch_weights(model)
        net = nnx_net()
        nnx_run = LoopRun(run_main(tmp_path / "nnx", net, nnx_batches()), nnx_weights(net))
    rel = worst_rel(torch_run, nnx_run)
    assert rel < EXACT, f"rel {rel:.3e}"
