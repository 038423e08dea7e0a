"""A library's feature extractor frozen by hand in the loss (issue 13): ``vgg =
torchvision.models.vgg16(pretrained=True).features[:2]``, ``vgg.eval()`` and ``for p in
vgg.parameters(): p.requires_grad = False``, the usual perceptual loss. The freeze touches
no parameter the optimizer is given (library code holds no object of the program, and
``vgg`` reaches no code), so the optimizer converts on both targets (before, any freeze in
the file escaped it), and the NNX step passes ``vgg`` to the loss function after the model.
The NNX run applies the user's port of the freeze loop (an NNX model has no
``parameters()``: deleted, as JAX has no ``requires_grad``) and of the library model (an
NNX copy): every recorded loss and both models' parameters equal torch's, float64, 36
updates. Twins that must escape: a class of the user's (it may hold a module a global
holds), the model handed to code, built from a value, held at module level, a loop doing
more than freezing, a freeze of the trained model's parameters."""

from __future__ import annotations

import types
from typing import Any

import jax.numpy as jnp
import pytest
import torch

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT, float64, translate
from tests.differential.nnx_gan_loops import (
    D_SIZES,
    EPOCHS,
    G_SIZES,
    GanRun,
    batches,
    nnx_copy,
    nnx_state,
    torch_models,
    torch_state,
    torchvision_models,
    worst_gan_rel,
)
from tests.differential.nnx_loops import translate_nnx

LIBRARY = """\
import torch
import torchvision


def train():
    generator = make_generator()
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-2)
    vgg = torchvision.models.vgg16(pretrained=True).features[:2]
    vgg.eval()
    for p in vgg.parameters():
        p.requires_grad = False
    for epoch in range(EPOCHS):
        for i, (z, images, real_labels, fake_labels) in enumerate(loader):
            optimizer.zero_grad()
            fake = generator(z)
            content = ((vgg(fake) - vgg(images)) ** 2).mean()
            total_loss = content + 0.1 * (fake**2).mean()
            total_loss.backward()
            optimizer.step()
            g_losses.append(total_loss.item())
            d_losses.append(content.item())


train()
"""
FREEZE_LOOP = "    for p in vgg.parameters():\n        p.requires_grad = False\n"

USER_CLASS = LIBRARY.replace("torchvision.models.vgg16(pretrained=True)", "Vgg16(pretrained=True)")
HANDED_OUT = LIBRARY.replace(FREEZE_LOOP, FREEZE_LOOP + "    register(vgg)\n")
FROM_A_VALUE = LIBRARY.replace("vgg16(pretrained=True)", "vgg16(weights=EPOCHS)")
MODULE_LEVEL = LIBRARY.replace(
    "    vgg = torchvision.models.vgg16(pretrained=True).features[:2]\n    vgg.eval()\n"
    + FREEZE_LOOP,
    "",
).replace(
    "def train():\n",
    "vgg = torchvision.models.vgg16(pretrained=True).features[:2]\n"
    + FREEZE_LOOP.replace("    ", "", 1).replace("        ", "    ")
    + "\n\ndef train():\n",
)
MORE_THAN_FREEZING = LIBRARY.replace(FREEZE_LOOP, FREEZE_LOOP + "        p.data.mul_(0.5)\n")
# The loop's variable read after it: the model's last parameter handed to code.
LEAKED = LIBRARY.replace(FREEZE_LOOP, FREEZE_LOOP + "    register(p)\n")
# Another loop over the trained model's parameters binding the same name: still converts.
ANOTHER_LOOP = LIBRARY.replace(
    FREEZE_LOOP, FREEZE_LOOP + "    for p in generator.parameters():\n        register(p.shape)\n"
)
TRAINED_FROZEN = LIBRARY.replace(FREEZE_LOOP, FREEZE_LOOP.replace("vgg.", "generator."))
FREEZES = "this file freezes parameters"


class _Layers:
    """A library model's ``features``: its first two layers are ``features``."""

    def __init__(self, features: Any) -> None:
        self.features = features

    def __getitem__(self, key: slice) -> Any:
        assert key == slice(None, 2), key
        return self.features


def fake_torchvision(features: Any) -> Any:
    """``torchvision.models.vgg16(...).features[:2]`` is ``features`` while the script runs."""
    layers = _Layers(features)
    return torchvision_models(vgg16=lambda **options: types.SimpleNamespace(features=layers))


def run_torch(source: str) -> GanRun:
    """``source`` run as written on torch models (the feature extractor with a BatchNorm, in
    eval mode: its running statistics are read, never moved)."""
    with float64():
        generator, frozen = torch_models(0, norm=True)
        data = [tuple(torch.from_numpy(a) for a in batch) for batch in batches(0)]
        scope = _scope(generator, data)
        with fake_torchvision(frozen):
            exec(compile(source, "<torch>", "exec"), scope)
        state = [*torch_state(generator), *torch_state(frozen)]
        return GanRun(_floats(scope["g_losses"]), _floats(scope["d_losses"]), state)


def run_nnx(translated: str) -> GanRun:
    """The translation, with the user's port of the freeze loop, on NNX copies."""
    assert FREEZE_LOOP in translated, translated
    ported = translated.replace(FREEZE_LOOP, "")
    with float64():
        torch_generator, torch_frozen = torch_models(0, norm=True)
        generator = nnx_copy(torch_generator, G_SIZES)
        frozen = nnx_copy(torch_frozen, D_SIZES)
        data = [tuple(jnp.asarray(a) for a in batch) for batch in batches(0)]
        scope = _scope(generator, data)
        with fake_torchvision(frozen):
            exec(compile(ported, "<nnx>", "exec"), scope)
        state = [*nnx_state(generator), *nnx_state(frozen)]
        return GanRun(_floats(scope["g_losses"]), _floats(scope["d_losses"]), state)


def _scope(generator: Any, data: list[Any]) -> dict[str, Any]:
    return {
        "make_generator": lambda: generator,
        "register": lambda model: None,
        "loader": data,
        "g_losses": [],
        "d_losses": [],
        "EPOCHS": EPOCHS,
    }


def _floats(values: list[Any]) -> list[float]:
    return [float(v) for v in values]


def test_the_library_model_step_matches_torch() -> None:
    translated = translate_nnx(LIBRARY)
    assert BEGIN not in translated and ".backward(" not in translated, translated
    assert "nnx.value_and_grad(loss_fn, has_aux=True)(generator, vgg)" in translated, translated
    rel = worst_gan_rel(run_torch(LIBRARY), run_nnx(translated))
    assert rel < EXACT, f"rel {rel:.3e}"


def test_a_second_run_changes_nothing() -> None:
    once = translate_nnx(LIBRARY)
    assert translate_nnx(once) == once


def test_the_optax_target_translates_the_optimizer() -> None:
    """The freeze no longer escapes the optimizer on the optax target either."""
    code = translate(LIBRARY).code
    assert "optimizer = optax.adam(learning_rate=1e-2)" in code, code
    assert FREEZES not in code, code


@pytest.mark.parametrize("target", ["nnx", "optax"])
def test_another_loop_binding_the_same_name_converts(target: str) -> None:
    """A later ``for p in generator.parameters():`` binds ``p`` anew before its reads."""
    code = translate_nnx(ANOTHER_LOOP) if target == "nnx" else translate(ANOTHER_LOOP).code
    assert FREEZES not in code, code
    assert "optax.adam(learning_rate=1e-2)" in code, code


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (USER_CLASS, FREEZES),
        (HANDED_OUT, FREEZES),
        (FROM_A_VALUE, FREEZES),
        (MODULE_LEVEL, FREEZES),
        (MORE_THAN_FREEZING, FREEZES),
        (TRAINED_FROZEN, FREEZES),
        (LEAKED, FREEZES),
    ],
    ids=[
        "a_class_of_the_user",
        "handed_to_code",
        "built_from_a_value",
        "module_level",
        "more_than_freezing",
        "the_trained_model_frozen",
        "the_loop_variable_read_after_it",
    ],
)
@pytest.mark.parametrize("target", ["nnx", "optax"])
def test_the_twin_escapes(source: str, reason: str, target: str) -> None:
    code = translate_nnx(source) if target == "nnx" else translate(source).code
    assert BEGIN in code and "            total_loss.backward()\n" in code, code
    assert reason in code, code
