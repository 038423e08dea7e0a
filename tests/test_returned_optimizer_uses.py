"""Held-out s39 F2 (SupContrast): an optimizer built and returned by ``set_optimizer`` in
util.py and used by main.py as the torch object (its lr written by ``adjust_learning_rate``
of util.py, read through ``param_groups``, saved with ``state_dict()``). The boundary's reason
named the first use only, and main.py's step said ``set_optimizer(model)`` "is not
translated to an nnx.Optimizer" (it is; its callers' uses keep it from being taken for one).
Every use is listed now (``file:line`` and what), the same under ``ml-switcheroo convert`` and
``python -m libcst.tool codemod``."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo import convert
from tests.support import run_libcst_tool, write_package

UTIL = """\
import torch.optim as optim


def adjust_learning_rate(optimizer, epoch):
    lr = 0.05 * (0.5 ** epoch)
    for param_group in optimizer.param_groups:
        param_group["lr"] = lr


def set_optimizer(model):
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    return optimizer
"""
MAIN = """\
import torch

from pkg.util import adjust_learning_rate, set_optimizer


def train(loader, model, optimizer):
    for x, y in loader:
        loss = ((model(x) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def main(model, loader, epochs):
    optimizer = set_optimizer(model)
    for epoch in range(epochs):
        adjust_learning_rate(optimizer, epoch)
        train(loader, model, optimizer)
        print("lr", optimizer.param_groups[0]["lr"])
    torch.save(optimizer.state_dict(), "opt.pt")
"""
USES = (
    "pkg/main.py:17 uses `optimizer` as a torch object: `adjust_learning_rate(optimizer, epoch)`",
    "pkg/util.py:6 (in `adjust_learning_rate`) uses `optimizer` as a torch object: "
    "`optimizer.param_groups`",
    "pkg/main.py:19 uses `optimizer` as a torch object: `optimizer.param_groups`",
    "pkg/main.py:20 uses `optimizer` as a torch object: `optimizer.state_dict`",
)
COMMANDS = {"nnx": "optimizer.TorchToNNX", "optax": "optimizer.TorchToOptax"}


def _reasons(root: Path, name: str) -> str:
    text = (root / "pkg" / name).read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if "reason:" in line)


def _converted(root: Path, target: str, tool: str, monkeypatch: pytest.MonkeyPatch) -> None:
    write_package(root, {"util.py": UTIL, "main.py": MAIN})
    if tool == "libcst":
        run_libcst_tool(root, COMMANDS[target])
        return
    monkeypatch.chdir(root)
    assert convert.main(["--target", target, "-j", "1", "-i", "--no-cache", "."]) == 0


@pytest.mark.parametrize("tool", ["convert", "libcst"])
@pytest.mark.parametrize("target", sorted(COMMANDS))
def test_the_return_boundary_lists_every_torch_use(
    tmp_path: Path, target: str, tool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _converted(tmp_path, target, tool, monkeypatch)
    reasons = _reasons(tmp_path, "util.py")
    for use in USES:
        assert use in reasons, reasons


@pytest.mark.parametrize("tool", ["convert", "libcst"])
def test_the_nnx_step_says_why_the_returned_optimizer_is_not_taken(
    tmp_path: Path, tool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _converted(tmp_path, "nnx", tool, monkeypatch)
    reasons = _reasons(tmp_path, "main.py")
    assert (
        "`set_optimizer(model)` (main.py:15), the one value reaching it, is not taken for an "
        "nnx.Optimizer: pkg/main.py:17 uses `optimizer` as a torch object" in reasons
    ), reasons
