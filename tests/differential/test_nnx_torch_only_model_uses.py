"""Torch-only uses of the model next to a converted NNX step (s22c): the NNX model is an
nnx.Module, which has no ``parameters()`` and whose ``nnx.Linear`` holds ``kernel``, not
``weight``. Before the fix each step below converted and its translation raised
AttributeError when run (``'Linear' object has no attribute 'weight'``, ``'NnxNet' object has
no attribute 'parameters'``): no number to compare. Now the step escapes naming the use (the
map's ``torch_only_module_names``); a use an NNX module has (``model.eval()``, calling it) and
the optimizer's own ``model.parameters()`` still convert, exactly."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.differential.test_nnx_loops import MODEL_PARAMETER, PLAIN_LOOP

RECORDED = "        losses.append(loss.item())\n"


def _after_step(lines: str) -> str:
    """``PLAIN_LOOP`` with ``lines`` run after the step (8 spaces of indent already there)."""
    assert RECORDED in PLAIN_LOOP
    return PLAIN_LOOP.replace(RECORDED, lines + RECORDED)


def _in_function(lines: str) -> str:
    """``MODEL_PARAMETER`` (the optimizer built in the function) with ``lines`` at its end."""
    end = "\n\n\nRUNNERS"
    assert end in MODEL_PARAMETER
    return MODEL_PARAMETER.replace(end, "\n" + lines + end[1:])


@pytest.mark.parametrize(
    ("source", "said"),
    [
        (
            _after_step(
                "        with torch.no_grad():\n            model.out.weight.clamp_(-0.1, 0.1)\n"
            ),
            "`model.out.weight` reads the model as a torch module",
        ),
        (
            _after_step("        for p in model.parameters():\n            p.data.mul_(0.99)\n"),
            "`model.parameters` reads the model as a torch module",
        ),
        (
            _in_function("    n = sum(p.numel() for p in model.parameters())\n"),
            "has no `parameters`",
        ),
        (  # probe s41a M2: moved into the loss function, the call raised AttributeError
            PLAIN_LOOP.replace("model(x)", "model.forward(x)", 1),
            "has no `forward`",
        ),
        (  # the same read through getattr, next to a plain call (s42)
            PLAIN_LOOP.replace("model(x)", "model(x) + getattr(model, 'forward')(x) * 0", 1),
            "`getattr(model, 'forward')` reads the model as a torch module",
        ),
    ],
)
def test_a_torch_only_use_of_the_model_escapes_the_step(source: str, said: str) -> None:
    translated = translate_nnx(source)
    assert BEGIN in translated and "loss.backward()" in translated, translated
    assert said in translated, translated


@pytest.mark.parametrize(
    "source",
    [
        _after_step("        model.eval()\n        model.train()\n"),
        _after_step("        with torch.no_grad():\n            check = model(x)\n"),
        MODEL_PARAMETER,  # `torch.optim.SGD(model.parameters(), ...)` in the function
    ],
)
def test_a_use_an_nnx_module_has_still_converts_exactly(source: str) -> None:
    translated, rel = translated_rel(source)
    assert BEGIN not in translated and ".update(model, grads)" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"
