"""A freeze in a method of a class on its own instance touches only that class's models (s24g,
issue 12). ``models.py`` holds ``Feature``, whose ``__init__`` freezes its own parameters
(pytorch/examples' ``Vgg16``), and ``Net``; ``main.py`` trains a fresh ``Net()`` towards targets
shifted by a frozen ``Feature()``. Escaped before (the freeze of ``models.py`` counted for every
optimizer); converted now, the NNX codemod's own output exact against torch (float64, 36
updates). Trap twins, where the freeze may reach the trained model, escape naming it: ``Net``
holding a ``Feature``, based on it, built with a value, handed on or returned, and a method
of ``Feature`` freezing a model it is handed."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import converted, translated_package_runs, worst_rel
from tests.support import write_package

MODELS = """\
import torch


class Feature(torch.nn.Module):
    def __init__(self, requires_grad=False):
        super().__init__()
        self.proj = torch.nn.Linear(2, 2)
        with torch.no_grad():
            self.proj.weight.copy_(torch.tensor([[1.0, 0.5], [-0.5, 1.0]]))
            self.proj.bias.fill_(0.1)
        if not requires_grad:
            for param in self.parameters():
                param.requires_grad = False

    def forward(self, x):
        return self.proj(x)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(4, 8)
        self.out = torch.nn.Linear(8, 2)
        with torch.no_grad():
            self.hidden.weight.copy_(torch.linspace(-1.0, 1.0, 32).reshape(8, 4))
            self.hidden.bias.fill_(0.0)
            self.out.weight.copy_(torch.linspace(0.5, -0.5, 16).reshape(2, 8))
            self.out.bias.fill_(0.2)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x)))
"""

NNX_MODELS = """\
import jax.numpy as jnp
from flax import nnx


def _linear(n_in, n_out, kernel, bias):
    layer = nnx.Linear(n_in, n_out, rngs=nnx.Rngs(0), param_dtype=jnp.float64)
    layer.kernel[...] = jnp.asarray(kernel, dtype=jnp.float64).T
    layer.bias[...] = jnp.full((n_out,), bias, dtype=jnp.float64)
    return layer


class Feature(nnx.Module):
    def __init__(self, requires_grad=False):
        self.proj = _linear(2, 2, [[1.0, 0.5], [-0.5, 1.0]], 0.1)

    def __call__(self, x):
        return self.proj(x)


class Net(nnx.Module):
    def __init__(self):
        self.hidden = _linear(4, 8, jnp.linspace(-1.0, 1.0, 32).reshape(8, 4), 0.0)
        self.out = _linear(8, 2, jnp.linspace(0.5, -0.5, 16).reshape(2, 8), 0.2)

    def __call__(self, x):
        return self.out(jnp.tanh(self.hidden(x)))

    def to(self, device):  # the port of Module.to on the one device
        return self
"""

MAIN = """\
import torch

from PACKAGE.models import Feature, Net


def main(unused, loader, epochs):
    losses = []
    model = Net().to("cpu")
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=0.01)
    feature = Feature(requires_grad=False)
    shift = feature(loader[0][1])
    for epoch in range(epochs):
        model.train()
        for x, y in loader:
            opt.zero_grad()
            loss = ((model(x) - y - shift) ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    model.eval()
    return losses
"""


def test_a_fresh_model_of_a_class_the_freeze_cannot_reach_converts_exactly(
    tmp_path: Path,
) -> None:
    package = "other_models"
    files = {"main.py": MAIN.replace("PACKAGE", package), "models.py": MODELS}

    def port(outputs: dict[str, str]) -> dict[str, str]:
        return {**outputs, "models.py": NNX_MODELS}

    outputs, torch_run, nnx_run = translated_package_runs(tmp_path, package, files, port)
    assert BEGIN not in outputs["main.py"], outputs["main.py"]
    assert "opt = nnx.Optimizer(model" in outputs["main.py"], outputs["main.py"]
    assert len(torch_run.losses) == 36
    assert worst_rel(torch_run, nnx_run) < EXACT


HOLDS = "        self.out = torch.nn.Linear(8, 2)\n"
TRAPS = {
    # Net holds a Feature: freezing it freezes a part of the model
    "holds": (MODELS.replace(HOLDS, HOLDS + "        self.frozen = Feature()\n"), None),
    # Net is a Feature
    "based": (MODELS.replace("class Net(torch.nn.Module)", "class Net(Feature)"), None),
    # Net builds one through a function of the file
    "function": (
        MODELS.replace(HOLDS, HOLDS + "        self.frozen = make()\n")
        + "\n\ndef make():\n    return Feature()\n",
        None,
    ),
    # the model is handed to a Feature, which may keep it
    "handed": (MODELS, ("    feature = Feature(", "    feature = Feature(model, ")),
    # the model is built with a value (a Feature may be it)
    "argument": (
        MODELS.replace("def __init__(self):", "def __init__(self, extra=None):"),
        ("Net().to", "Net(feature).to"),
    ),
    # a method of Feature freezes a model it is handed
    "handed_freeze": (
        MODELS.replace(
            "    def forward(self, x):\n        return self.proj(x)",
            "    def forward(self, x):\n        return self.proj(x)\n\n"
            "    def freeze(self, other):\n        other.requires_grad_(False)",
        ),
        ("    model.eval()", "    feature.freeze(model.out)\n    model.eval()"),
    ),
    # the model leaves the function
    "returned": (MODELS, ("    return losses", "    return model")),
}


@pytest.mark.parametrize("trap", sorted(TRAPS))
def test_a_model_the_freeze_may_reach_escapes(tmp_path: Path, trap: str) -> None:
    models, change = TRAPS[trap]
    package = f"other_models_{trap}"
    main = MAIN.replace("PACKAGE", package)
    if change is not None:
        main = main.replace(*change)
    write_package(tmp_path, {"main.py": main, "models.py": models}, package)
    translated = converted(tmp_path, package)["main.py"]
    assert "opt = nnx.Optimizer" not in translated, translated
    said = "a file of the repository this file imports freezes parameters where this file may run"
    assert said in translated, translated
    assert f"in `{package}/models.py:" in translated, translated
