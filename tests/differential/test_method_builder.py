"""nanoGPT's shape: the optimizer built by ``model.configure_optimizers(...)``, a method of the
model's class in another file, with GPT-style decay groups (``p.dim() >= 2``), translated by
the codemod and run against torch (float64, 60 steps).

The model has a 2-D weight ``w`` and a 1-D bias ``b``: torch decays only the group holding
``w``; the translated ``optax.adamw(..., mask=...)`` the method returns must do the same. The
torch side builds the optimizer through the original ``train.py``; the optax side takes the
translated ``optimizer`` the translated ``train.py`` gets from the translated method (the
group lists there still run on torch tensors and are not used by the optax transformation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.differential.harness import (
    EXACT,
    execute,
    float64,
    linear_problem,
    rel_error,
    run_optax,
    run_torch,
    translate_package,
)
from tests.differential.test_cross_file import XFILE
from tests.support import gpt_groups, importable

MODEL = (
    """\
import torch


class GPT:
    def __init__(self, tensors):
        self.tensors = tensors

    def named_parameters(self):
        return list(zip(["w", "b"], self.tensors))

    def configure_optimizers(self, weight_decay, learning_rate, betas):
"""
    + gpt_groups("self", "weight_decay", " " * 8)
    + """\
        optimizer = torch.optim.{constructor}(optim_groups, lr=learning_rate, betas=betas)
        return optimizer
"""
)

TRAIN = """\
from xfile_pkg.model import GPT

model = GPT(params)
optimizer = model.configure_optimizers(0.3, 0.02, (0.9, 0.95))


def fit(loss_of, loader):
    for batch in loader:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(batch)
        loss.backward()
        optimizer.step()
"""

CONSTRUCTORS = ["AdamW", "Adam"]


def files(constructor: str) -> dict[str, str]:
    return {
        "xfile_pkg/__init__.py": "",
        "xfile_pkg/model.py": MODEL.replace("{constructor}", constructor),
        "xfile_pkg/train.py": TRAIN,
    }


def built(root: Path, source: str, params: list[Any]) -> Any:
    """The ``optimizer`` ``train.py`` (``source``) gets, with the package importable."""
    with importable(root, XFILE):
        return execute(source, {"params": params})["optimizer"]


@pytest.mark.parametrize("constructor", CONSTRUCTORS)
def test_a_method_builder_of_another_file_reproduces_torch(
    constructor: str, tmp_path: Path
) -> None:
    translations = translate_package(tmp_path, files(constructor))
    assert translations["xfile_pkg/model.py"].escapes == []
    assert [r.api for r in translations["xfile_pkg/train.py"].escapes] == [
        "torch.optim.Optimizer.step"
    ]
    assert "zero_grad" not in translations["xfile_pkg/train.py"].code
    assert_reproduces(tmp_path, TRAIN, translations)


def assert_reproduces(tmp_path: Path, train: str, translations: dict[str, Any]) -> None:
    """The optimizer the translated ``train.py`` gets follows torch's over 60 steps."""
    with float64():
        problem = linear_problem()
        torch_traj = run_torch(problem, lambda p: built(tmp_path / "original", train, p))
        leftovers = [torch.tensor(v, requires_grad=True) for v in problem.init.values()]
        code = translations["xfile_pkg/train.py"].code
        optax_traj, _ = run_optax(problem, built(tmp_path / "translated", code, leftovers))
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel < EXACT, f"rel={rel:.3e}\n{translations['xfile_pkg/model.py'].code}"


# nanoGPT and build-nanogpt: the model is an nn.Module, compiled before or after the call
# (torch.compile's wrapper forwards `configure_optimizers` to the model it wraps).
MODULE = MODEL.replace("class GPT:", "class GPT(torch.nn.Module):").replace(
    "        self.tensors = tensors\n",
    "        super().__init__()\n        self.tensors = tensors\n",
)

COMPILED = {
    "compiled before the call": TRAIN.replace(
        "model = GPT(params)\n", "model = GPT(params)\nmodel = torch.compile(model.to('cpu'))\n"
    ),
    "compiled after the call": TRAIN.replace(
        "optimizer = model.configure_optimizers(0.3, 0.02, (0.9, 0.95))\n",
        "optimizer = model.configure_optimizers(0.3, 0.02, (0.9, 0.95))\n"
        "model = torch.compile(model)\n",
    ),
}


@pytest.mark.parametrize("shape", sorted(COMPILED))
def test_a_method_builder_called_on_a_compiled_model_reproduces_torch(
    shape: str, tmp_path: Path
) -> None:
    train = "import torch\n" + COMPILED[shape]
    package = {
        "xfile_pkg/__init__.py": "",
        "xfile_pkg/model.py": MODULE.replace("{constructor}", "AdamW"),
        "xfile_pkg/train.py": train,
    }
    translations = translate_package(tmp_path, package)
    assert translations["xfile_pkg/model.py"].escapes == []
    assert "torch.compile(" in translations["xfile_pkg/train.py"].code
    assert_reproduces(tmp_path, train, translations)
