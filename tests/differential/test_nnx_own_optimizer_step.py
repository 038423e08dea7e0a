"""A module that holds an optimizer over its own parameters and steps it in its own method (the
forward-forward example's ``Layer``: ``self.opt = Adam(self.parameters(), ...)`` in
``__init__``, ``self.opt.step()`` in ``Layer.train``): the step's ``self`` is the trained model
(``analysis/own_optimizer.py``), and the NNX step differentiates ``loss_fn(model)`` at
``self``. The codemod's own output, run on an NNX module with the same weights, matches torch
(float64, 36 updates, losses and parameters). Trap twins escape: a subclass of the class in the
file, ``.opt`` stored twice, the step in another class's method, ``self`` rebound in the
step's method."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import float64
from tests.differential.nnx_loops import run_script, translate_nnx
from tests.support import renders_a_step

SOURCE = """\
import torch


class Layer(Base):
    def __init__(self):
        super().__init__()
        self.lin = make_linear()
        self.opt = torch.optim.Adam(self.parameters(), lr=0.01)
        self.threshold = 2.0
        self.num_epochs = 36

    def forward(self, x):
        return self.lin(x)

    def fit(self, x_pos, x_neg):
        for i in range(self.num_epochs):
            g_pos = (self.forward(x_pos) ** 2).mean(1)
            g_neg = (self.forward(x_neg) ** 2).mean(1)
            loss = ((g_pos - self.threshold) ** 2).mean() + ((g_neg + self.threshold) ** 2).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            losses.append(loss.item())


layer = Layer()
layer.fit(x_pos, x_neg)
"""


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    weight, bias = rng.normal(size=(3, 4)), rng.normal(size=3)
    return weight, bias, rng.normal(size=(6, 4)), rng.normal(size=(6, 4))


def _torch_run(
    source: str, more: dict[str, Any] | None = None
) -> tuple[list[float], list[np.ndarray]]:
    weight, bias, x_pos, x_neg = _data()

    def make_linear() -> torch.nn.Linear:
        linear = torch.nn.Linear(4, 3)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(weight))
            linear.bias.copy_(torch.from_numpy(bias))
        return linear

    with float64():
        names: dict[str, Any] = {
            "Base": torch.nn.Module,
            "make_linear": make_linear,
            "x_pos": torch.from_numpy(x_pos),
            "x_neg": torch.from_numpy(x_neg),
            **(more or {}),
        }
        scope = run_script(source, None, [], "<torch own optimizer>", names)
        lin = scope["layer"].lin
        return [float(v) for v in scope["losses"]], [
            lin.weight.detach().numpy().T.copy(),
            lin.bias.detach().numpy().copy(),
        ]


def _nnx_run(
    translated: str, more: dict[str, Any] | None = None
) -> tuple[list[float], list[np.ndarray]]:
    weight, bias, x_pos, x_neg = _data()

    def make_linear() -> nnx.Linear:
        linear = nnx.Linear(4, 3, rngs=nnx.Rngs(0), param_dtype=jnp.float64)
        linear.kernel[...] = jnp.asarray(weight.T)
        linear.bias[...] = jnp.asarray(bias)
        return linear

    with float64():
        names: dict[str, Any] = {
            "Base": nnx.Module,
            "make_linear": make_linear,
            "x_pos": jnp.asarray(x_pos),
            "x_neg": jnp.asarray(x_neg),
            **(more or {}),
        }
        scope = run_script(translated, None, [], "<nnx own optimizer>", names)
        lin = scope["layer"].lin
        return [float(v) for v in scope["losses"]], [
            np.asarray(lin.kernel[...]),
            np.asarray(lin.bias[...]),
        ]


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a))), 1e-300))


def test_a_module_stepping_its_own_optimizer_converts_and_matches_torch() -> None:
    translated = translate_nnx(SOURCE)
    assert renders_a_step(translated) and BEGIN not in translated, translated
    assert "nnx.value_and_grad(loss_fn)(self)" in translated, translated
    assert "self.opt.update(self, grads)" in translated, translated
    assert translate_nnx(translated) == translated  # a second run changes nothing
    torch_losses, torch_weights = _torch_run(SOURCE)
    nnx_losses, nnx_weights = _nnx_run(translated)
    assert len(torch_losses) == len(nnx_losses) == 36
    pairs = [(np.asarray(torch_losses), np.asarray(nnx_losses))]
    pairs += list(zip(torch_weights, nnx_weights, strict=True))
    rel = max(_rel(a, b) for a, b in pairs)
    assert rel < 1e-12, (rel, translated)


TRAPS = {
    # a subclass may add parameters after the base's __init__ built the optimizer
    "a subclass of the class in the file": SOURCE.replace(
        "layer = Layer()", "class Bigger(Layer):\n    pass\n\n\nlayer = Bigger()"
    ),
    # `.opt` stored twice: the step's `self.opt` may be another object's optimizer
    "the optimizer attribute stored twice": SOURCE.replace(
        "layer = Layer()\n", "layer = Layer()\nlayer.opt = Layer().opt\n"
    ),
    # `self` rebound in the step's method: not the object whose optimizer is stepped
    "self rebound in the step's method": SOURCE.replace(
        "        for i in range(self.num_epochs):",
        "        self = Layer()\n        for i in range(self.num_epochs):",
    ),
    # the step in a method of another class, the optimizer of its argument
    "the step in another class": SOURCE.replace(
        "    def fit(self, x_pos, x_neg):\n        for i in range(self.num_epochs):",
        "\nclass Trainer:\n    def fit(self, layer, x_pos, x_neg):\n        for i in range(36):",
    )
    .replace("(self.forward(", "(layer.forward(")
    .replace("self.threshold) ** 2", "layer.threshold) ** 2")
    .replace("            self.opt.", "            layer.opt.")
    .replace("layer.fit(x_pos, x_neg)", "Trainer().fit(layer, x_pos, x_neg)"),
}


@pytest.mark.parametrize("name", sorted(TRAPS))
def test_an_optimizer_not_proven_the_steps_own_escapes(name: str) -> None:
    output = translate_nnx(TRAPS[name])
    assert not renders_a_step(output) and "opt.step()" in output, output


# The forward-forward example's `self.threshold = args.threshold` after the optimizer: an option
# of the command line holds a plain value (`analysis/plain_values.py`), not a parameter.
WITH_OPTIONS = "import argparse\n" + SOURCE.replace(
    "self.threshold = 2.0", "self.threshold = args.threshold"
).replace("lr=0.01)", "lr=args.lr)").replace(
    "layer = Layer()\nlayer.fit(x_pos, x_neg)\n",
    'if __name__ == "__main__":\n'
    "    parser = argparse.ArgumentParser()\n"
    '    parser.add_argument("--lr", type=float, default=0.01, help="learning rate")\n'
    '    parser.add_argument("--threshold", type=float, default=2, help="threshold")\n'
    '    parser.add_argument("--no_cuda", action="store_true", default=False)\n'
    "    args = parser.parse_args()\n"
    "    layer = Layer()\n"
    "    layer.fit(x_pos, x_neg)\n",
)


def test_an_option_stored_after_the_optimizer_converts_and_matches_torch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.argv", ["main.py"])
    translated = translate_nnx(WITH_OPTIONS)
    assert renders_a_step(translated) and BEGIN not in translated, translated
    assert "nnx.Optimizer(self, optax.adam(learning_rate=args.lr)" in translated, translated
    main = {"__name__": "__main__"}
    torch_losses, torch_weights = _torch_run(WITH_OPTIONS, main)
    nnx_losses, nnx_weights = _nnx_run(translated, main)
    assert len(torch_losses) == len(nnx_losses) == 36
    pairs = [(np.asarray(torch_losses), np.asarray(nnx_losses))]
    pairs += list(zip(torch_weights, nnx_weights, strict=True))
    rel = max(_rel(a, b) for a, b in pairs)
    assert rel < 1e-12, (rel, translated)


CHANGES = {
    "an nn.Parameter": "torch.nn.Parameter(torch.ones(3))",
    "a submodule": "torch.nn.Linear(3, 3)",
    "an unknown value": "make_threshold()",
    "arithmetic with an unknown value": "args.threshold * make_threshold()",
}
OPTION_CHANGES = {
    "an option of a custom type": ('type=float, default=2, help="threshold"', "type=torch.tensor"),
    "an option with a tensor default": ("default=2,", "default=torch.ones(3),"),
    "an option stored into": (
        "    layer = Layer()\n",
        "    args.threshold = torch.ones(3)\n    layer = Layer()\n",
    ),
    "options handed to a function": (
        "    layer = Layer()\n",
        "    setup(args)\n    layer = Layer()\n",
    ),
}


@pytest.mark.parametrize("name", sorted(CHANGES) + sorted(OPTION_CHANGES))
def test_a_value_not_proven_plain_after_the_optimizer_escapes(name: str) -> None:
    if name in CHANGES:
        source = WITH_OPTIONS.replace(
            "self.threshold = args.threshold", f"self.threshold = {CHANGES[name]}"
        )
    else:
        old, new = OPTION_CHANGES[name]
        assert old in WITH_OPTIONS
        source = WITH_OPTIONS.replace(old, new)
    output = translate_nnx(source)
    assert BEGIN in output and not renders_a_step(output), output
    assert "the model changes after the optimizer took its parameters" in output, output
