"""``loss.backward(retain_graph=True)`` as a step's last backward pass (s36, issue 13:
MorvanZhou's PyTorch-Tutorial 406_GAN, ``D_loss.backward(retain_graph=True)``).

torch's gradients are those without ``retain_graph``; the graph kept only matters to a later
backward pass walking it again, which the NNX step (the aux outputs carry no graph) would not
do. ``analysis/retained_graph.py`` proves none does: the forward pass's names read elsewhere
only detached (``D_loss.data``, ``.item()``) or after a plain rebinding inside the loop, and
the models called keep no tensor between calls (``nn.Sequential`` of ``torch.nn`` layers: the
map's ``graph_free_modules``/``graph_free_containers``). The D step converted before this only
in the GAN form without ``retain_graph``; here 406_GAN's own shape, with its ``torch.log`` (the
map's ``array_functions``; before, the D step's ``torch.log(prob_artist0)`` was not qualified
inside a loss with a detached other model's output and read as a method). Run against torch:
float64, 36 updates of each model, recorded losses and both models' parameters < 1e-9.

Trap twins escape: a value of the forward pass carried to the next iteration (torch walks the
old graph again: its gradient flows into earlier steps), a model of the file's own class (it
may store an output its next call reads), a read of the loss under an ``if`` after the step."""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT, float64
from tests.differential.nnx_loops import EPOCHS, translate_nnx

BUILD = """\
torch.manual_seed(0)
G = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 4))
D = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 1), nn.Sigmoid())
"""
PORTED = "G, D = make_models()\n"

GAN = (
    """\
import torch
import torch.nn as nn

"""
    + BUILD
    + """opt_D = torch.optim.Adam(D.parameters(), lr=0.01)
opt_G = torch.optim.Adam(G.parameters(), lr=0.01)

for epoch in range(EPOCHS):
    for artist_paintings, G_ideas in loader:
        G_paintings = G(G_ideas)
        prob_artist1 = D(G_paintings)
        G_loss = torch.mean(torch.log(1. - prob_artist1))
        opt_G.zero_grad()
        G_loss.backward()
        opt_G.step()

        prob_artist0 = D(artist_paintings)
        prob_artist1 = D(G_paintings.detach())
        D_loss = - torch.mean(torch.log(prob_artist0) + torch.log(1. - prob_artist1))
        opt_D.zero_grad()
        D_loss.backward(retain_graph=True)      # reusing computational graph
        opt_D.step()
        losses.append(G_loss.item())
        losses.append(float(-D_loss.data.numpy()))
        losses.append(float(prob_artist0.data.numpy().mean()))
"""
)


class NnxMlp(nnx.Module):
    """A torch ``Sequential(Linear, Tanh, Linear[, Sigmoid])`` in NNX, with its weights."""

    def __init__(self, seq: torch.nn.Sequential) -> None:
        self.hidden = _linear(seq[0])
        self.out = _linear(seq[2])
        self.sigmoid = len(seq) == 4

    def __call__(self, x: Any) -> Any:
        h = self.out(jnp.tanh(self.hidden(x)))
        return jax.nn.sigmoid(h) if self.sigmoid else h


def _linear(layer: torch.nn.Linear) -> nnx.Linear:
    linear = nnx.Linear(
        layer.in_features, layer.out_features, rngs=nnx.Rngs(0), param_dtype=jnp.float64
    )
    linear.kernel[...] = jnp.asarray(layer.weight.detach().numpy().T)
    linear.bias[...] = jnp.asarray(layer.bias.detach().numpy())
    return linear


def _batches() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [(rng.normal(size=(5, 4)), rng.normal(size=(5, 3))) for _ in range(12)]


def _torch_models() -> tuple[torch.nn.Sequential, torch.nn.Sequential]:
    scope: dict[str, Any] = {"torch": torch, "nn": torch.nn}
    exec(BUILD, scope)
    return scope["G"], scope["D"]


def _weights(models: Any) -> list[np.ndarray]:
    arrays = []
    for model in models:
        if isinstance(model, torch.nn.Sequential):
            for layer in (model[0], model[2]):
                arrays += [layer.weight.detach().numpy().T, layer.bias.detach().numpy()]
        else:
            for layer in (model.hidden, model.out):
                arrays += [np.asarray(layer.kernel[...]), np.asarray(layer.bias[...])]
    return arrays


def _run(source: str, nnx_side: bool) -> tuple[list[float], list[np.ndarray]]:
    with float64():
        data = [
            (jnp.asarray(a), jnp.asarray(b)) if nnx_side else tuple(map(torch.from_numpy, (a, b)))
            for a, b in _batches()
        ]
        ported: list[Any] = []

        def make_models() -> tuple[NnxMlp, NnxMlp]:
            ported.extend(NnxMlp(m) for m in _torch_models())
            return ported[0], ported[1]

        scope: dict[str, Any] = {
            "loader": data,
            "losses": [],
            "EPOCHS": EPOCHS,
            "make_models": make_models,
        }
        exec(compile(source, "<nnx>" if nnx_side else "<torch>", "exec"), scope)
        models = ported if nnx_side else [scope["G"], scope["D"]]
        return [float(v) for v in scope["losses"]], _weights(models)


def _rel(a: list[Any], b: list[Any]) -> float:
    return max(
        float(np.max(np.abs(np.asarray(x) - np.asarray(y))) / max(np.max(np.abs(x)), 1e-300))
        for x, y in zip(a, b, strict=True)
    )


def test_the_406_gan_discriminator_step_converts_exactly() -> None:
    translated = translate_nnx(GAN)
    assert BEGIN not in translated, translated
    assert "retain_graph" not in translated and "opt_D.update(D, grads)" in translated
    assert "jnp.log(prob_artist0)" in translated, translated
    assert translate_nnx(translated) == translated
    torch_losses, torch_weights = _run(GAN, nnx_side=False)
    nnx_losses, nnx_weights = _run(translated.replace(BUILD, PORTED), nnx_side=True)
    assert len(torch_losses) == 3 * 36
    rel = max(_rel([torch_losses], [nnx_losses]), _rel(torch_weights, nnx_weights))
    assert rel < EXACT, f"rel {rel:.3e}"


def _d_step_escapes(source: str, said: str) -> None:
    translated = translate_nnx(source)
    assert "opt_G.update(G, grads)" in translated, translated  # the G step still converts
    assert BEGIN in translated and said in translated, translated
    assert not re.search(r"^ *opt_D\.update\(", translated, re.MULTILINE), translated


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        (  # the next iteration's D loss reads this one's output: torch walks the old graph
            "        D_loss = - torch.mean(",
            "        D_loss = 0.1 * carry.mean() - torch.mean(",
            "torch's retained graph would be walked again",
        ),
        (  # a model of the file's own class may keep an output between calls
            "D = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 1), nn.Sigmoid())\n",
            "D = Disc()\n",
            "not proven to keep no tensor between calls",
        ),
        (  # the loss kept under a condition after the step
            "        losses.append(G_loss.item())\n",
            "        if epoch == 1:\n            kept = D_loss\n        losses.append(G_loss.item())\n",
            "torch's retained graph would be walked again",
        ),
    ],
)
def test_a_graph_walked_again_keeps_the_escape(old: str, new: str, said: str) -> None:
    source = GAN.replace(old, new)
    if "carry" in new:
        source = source.replace(
            "        opt_D.step()\n", "        opt_D.step()\n        carry = prob_artist0\n"
        ).replace("for epoch in", "carry = torch.zeros(1)\nfor epoch in")
    if "Disc()" in new:
        source = source.replace(
            "torch.manual_seed(0)\n",
            "class Disc(nn.Module):\n    def forward(self, x):\n        return x\n\n\n"
            "torch.manual_seed(0)\n",
        )
    assert source != GAN
    _d_step_escapes(source, said)


def test_retain_graph_false_keeps_the_escape() -> None:
    source = GAN.replace("retain_graph=True", "retain_graph=False")
    _d_step_escapes(source, "retain_graph")


def test_a_model_held_in_self_keeps_the_escape() -> None:
    """``self.model(x)``: a model reached through an attribute is proven graph-free the same
    way (here ``make_model()``, not a torch.nn layer: escapes)."""
    from tests.differential.test_nnx_loops import TRAINER_CLASS

    source = TRAINER_CLASS.replace("loss.backward()", "loss.backward(retain_graph=True)")
    assert source != TRAINER_CLASS
    translated = translate_nnx(source)
    assert BEGIN in translated and "not proven to keep no tensor" in translated, translated
