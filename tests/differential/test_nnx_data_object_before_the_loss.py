"""A call of a method of a data object of the file before the forward pass (build-nanogpt's
``x, y = train_loader.next_batch()``, ``train_loader = DataLoaderLite(B=4, T=32)``) makes the
batch: the NNX step runs it before the loss function, in torch's order, when the object's
class is proven to reach no model (``analysis/data_objects.py``). The translation, run with
the loader's tensors made by jnp (the user's port of the loader), matches torch (float64, 36
updates, losses and parameters). Trap twins escape: a loader handed the model or reading it,
a loader call after the forward pass, one given the loss, a torch module as the loader."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.nnx_loops import (
    LoopRun,
    run_nnx_loop,
    run_torch_loop,
    translate_nnx,
    worst_rel,
)
from tests.support import renders_a_step

LOADER = """\
class BatchLoader{bases}:
    def __init__(self, batch, seed):
        rng = np.random.default_rng(seed)
        self.x = torch.from_numpy(rng.normal(size=(72, 4)))
        self.y = torch.from_numpy(rng.normal(size=(72, 2)))
        self.batch = batch
        self.position = 0

    def next_batch(self{parameter}):
        b = self.batch
        x = self.x[self.position : self.position + b]
        y = self.y[self.position : self.position + b]{extra}
        self.position += b
        if self.position + b > len(self.x):
            self.position = 0
        return x, y
"""

SCRIPT = """\
import numpy as np
import torch


{loader}

train_loader = BatchLoader({arguments})
model = make_model()
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
for i in range(36):
    x, y = train_loader.next_batch({passed})
    optimizer.zero_grad()
    out = model(x)
    loss = ((out - y) ** 2).mean()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
"""


def script(
    bases: str = "",
    parameter: str = "",
    extra: str = "",
    arguments: str = "batch=6, seed=0",
    passed: str = "",
) -> str:
    loader = LOADER.format(bases=bases, parameter=parameter, extra=extra)
    return SCRIPT.format(loader=loader, arguments=arguments, passed=passed)


def ported(translated: str) -> str:
    """The translation with the loader's tensors made by jnp (what the user ports by hand: the
    codemod leaves the loader's class as written)."""
    return "import jax.numpy as jnp\n" + translated.replace("torch.from_numpy", "jnp.asarray")


def test_a_batch_from_a_data_object_converts_and_matches_torch() -> None:
    source = script()
    translated = translate_nnx(source)
    assert renders_a_step(translated) and BEGIN not in translated, translated
    loss_fn = translated.index("def loss_fn(model):")
    assert translated.index("x, y = train_loader.next_batch()") < loss_fn, translated
    assert translate_nnx(translated) == translated  # a second run changes nothing
    torch_run: LoopRun = run_torch_loop(source)
    assert len(torch_run.losses) == 36
    rel = worst_rel(torch_run, run_nnx_loop(source, ported(translated)))
    assert rel < 1e-12, (rel, translated)


TRAPS = {
    # the model handed to the call: its batch may carry the model's gradient
    "the model passed to the data method": script(parameter=", m", passed="model"),
    # the model handed to the constructor (stored in the object)
    "the model passed to the constructor": script(arguments="batch=6, seed=0, m=model").replace(
        "def __init__(self, batch, seed):", "def __init__(self, batch, seed, m=None):"
    ),
    # the data method reads the module's model: hoisted, x would lose its gradient path
    "a data method reading the model": script(extra="\n        x = x + 0.1 * model(x)[:, :1]"),
    # the call after the forward pass: part of the loss function, which it cannot run in
    "a data call after the forward pass": script().replace(
        "    out = model(x)\n", "    out = model(x)\n    x, y = train_loader.next_batch()\n"
    ),
    # the call given the loss of the step before (its batch depends on the loss)
    "a data call given the loss": script(parameter=", previous", passed="previous").replace(
        "for i in range(36):", "previous = 0.0\nfor i in range(36):"
    )
    + "    previous = loss\n",
    # a torch module: a model
    "a torch module as the loader": script(bases="(torch.nn.Module)").replace(
        "        rng = np.random", "        super().__init__()\n        rng = np.random"
    ),
    # the object stored into from outside: it may hold the model
    "a store into the object": script().replace(
        "model = make_model()\n", "model = make_model()\ntrain_loader.owner = model\n"
    ),
}


@pytest.mark.parametrize("name", sorted(TRAPS))
def test_a_data_call_not_proven_to_make_the_batch_escapes(name: str) -> None:
    output = translate_nnx(TRAPS[name])
    assert BEGIN in output and not renders_a_step(output), output
    assert "a method of `train_loader`" in output, output
