"""Probe s37, M2: a function of ANOTHER file of the repository sets a module's mode with a
form an NNX module takes quietly (``model.norm.train(mode=False)``: one more attribute for
``nnx.Module.train(**attributes)``; ``model.norm.training = False``: an attribute nothing
reads), called with the step's model before its loop or after each epoch
(``helpers.freeze_bn(model)``). torch's BatchNorm then normalises with its running statistics,
the translated one with the batch's. s35N F2 / s36 G3 / s37 M1 read the step's file only.
Measured, the codemod's own output against torch (float64, 36 updates, statistics frozen at 0
and 1): 0.28 relative off (set before the loop), 0.15 (after the first epoch).
Fixed: ``CrossFile.mode_set_elsewhere`` (``hidden_code.mode_write_line``) finds such a place in
any other file of the repository (which model a function there is handed is not known) and
``step_checks._check_mode_set_elsewhere`` escapes the step naming it. Twins (``eval()``
without arguments elsewhere; another object's ``train(n)``, a log naming training) convert
and match torch."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.nnx_loops import converted
from tests.differential.test_nnx_module_mode_arguments import runs
from tests.support import write_package

MAIN = """\
import torch
from PKG import helpers


def main(model, loader, epochs):
    losses = []
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    SETUP
    for epoch in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        PER_EPOCH
    return losses
"""
HELPERS = {
    "train_mode_keyword": "def freeze_bn(model):\n    model.norm.train(mode=False)\n",
    "training_store": "def freeze_bn(model):\n    model.norm.training = False\n",
}
RUNNER = """\
import sys
sys.path.insert(0, ROOT)
for _name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
    del sys.modules[_name]
from importlib import import_module
losses.extend(import_module(PACKAGE + ".main").main(make_model(), loader, EPOCHS))
sys.path.remove(ROOT)
"""


def _main(package: str, where: str) -> str:
    call = "helpers.freeze_bn(model)"
    return (
        MAIN.replace("PKG", package)
        .replace("SETUP", call if where == "setup" else "pass")
        .replace("PER_EPOCH", call if where == "per_epoch" else "pass")
    )


def _runner(root: Path, package: str) -> str:
    return RUNNER.replace("ROOT", repr(str(root))).replace("PACKAGE", repr(package))


def _translated(tmp_path: Path, package: str, helper: str, where: str) -> str:
    files = {"main.py": _main(package, where), "helpers.py": helper}
    write_package(tmp_path / "torch", files, package)
    outputs = converted(tmp_path / "torch", package)
    write_package(tmp_path / "nnx", {n: outputs[n] for n in files}, package)
    return outputs["main.py"]


def rel_of(tmp_path: Path, package: str) -> float:
    from tests.differential.nnx_loops import worst_rel

    try:
        return worst_rel(
            *runs(_runner(tmp_path / "torch", package), _runner(tmp_path / "nnx", package))
        )
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == package]:
            del sys.modules[name]


@pytest.mark.parametrize("where", ["setup", "per_epoch"])
@pytest.mark.parametrize("name", sorted(HELPERS))
def test_a_mode_set_by_another_files_function_escapes(
    tmp_path: Path, name: str, where: str
) -> None:
    package = f"mode_elsewhere_{name}_{where}"
    translated = _translated(tmp_path, package, HELPERS[name], where)
    assert BEGIN in translated, translated


TWINS = {
    # nnx.Module.eval() sets the same mode torch's eval() does
    "eval_without_arguments": "def freeze_bn(model):\n    model.norm.eval()\n",
    # another object's train(n), a log naming training, a `mode=` of another call
    "other_trains_and_modes": (
        "class Runner:\n    def train(self, n):\n        return n\n"
        "def freeze_bn(model):\n    print('training', Runner().train(3), dict(mode=1))\n"
    ),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_the_twins_convert_and_match_torch(tmp_path: Path, name: str) -> None:
    from tests.differential.harness import EXACT

    package = f"mode_elsewhere_twin_{name}"
    translated = _translated(tmp_path, package, TWINS[name], "setup")
    assert BEGIN not in translated and "nnx.value_and_grad" in translated, translated
    rel = rel_of(tmp_path, package)
    assert rel < EXACT, f"rel={rel:.3e}\n{translated}"
