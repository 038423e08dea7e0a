"""Torch methods a JAX array lacks, written by the map's templates (``array_lacks`` in
targets/nnx/nnx.yaml, s24b): ``x.exp()``, ``x.log()``, ``x.sqrt()``, ``x.abs()`` ->
``jnp.exp(x)``..., ``x.unsqueeze(d)`` -> ``jnp.expand_dims(x, d)``, ``x.dim()`` -> ``x.ndim``,
in the loss function (pytorch/examples' VAE computes ``logvar.exp()``) and after the update.
Before (main f20f630) each such step escaped ("a JAX array has no `exp` method"). The
codemod's own output run against torch (float64, 36 updates, the values read recorded). A
receiver that is not a name, an argument that is not a literal: the step keeps the escape."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.differential.test_nnx_loops import PLAIN_LOOP

LOSS = "loss = ((out - y) ** 2).mean()"
STEP = "        opt.step()\n        losses.append(loss.item())\n"


def _in_loss(lines: str, term: str) -> str:
    """``PLAIN_LOOP`` with ``lines`` before the loss, which adds ``term``."""
    return PLAIN_LOOP.replace(f"        {LOSS}\n", f"{lines}        {LOSS} + {term}\n")


def _after(lines: str) -> str:
    return PLAIN_LOOP.replace(STEP, STEP + lines)


CONVERTED = [
    (_in_loss("", "0.01 * out.exp().mean()"), "0.01 * jnp.exp(out).mean()"),
    (
        _in_loss("        o2 = out ** 2 + 1.0\n", "0.1 * o2.log().mean() + 0.1 * o2.sqrt().sum()"),
        "0.1 * jnp.log(o2).mean() + 0.1 * jnp.sqrt(o2).sum()",
    ),
    (_in_loss("", "0.05 * out.abs().sum()"), "0.05 * jnp.abs(out).sum()"),
    (
        _in_loss("", "(out.unsqueeze(1) * out.unsqueeze(-1)).mean() / out.dim()"),
        "(jnp.expand_dims(out, 1) * jnp.expand_dims(out, -1)).mean() / out.ndim",
    ),
    (
        _after("        losses.append(float(out.exp().sum() + loss.log() + x.dim()))\n"),
        "losses.append(float(jnp.exp(out).sum() + jnp.log(loss) + x.ndim))",
    ),
]


@pytest.mark.parametrize(("source", "written"), CONVERTED)
def test_templates_convert_exactly(source: str, written: str) -> None:
    translated, rel = translated_rel(source)
    assert BEGIN not in translated and "opt.update(model, grads)" in translated, translated
    assert written in translated, translated
    assert "import jax.numpy as jnp" in translated or "jnp." not in written, translated
    assert rel < EXACT, f"rel {rel:.3e}"
    assert translate_nnx(translated) == translated


@pytest.mark.parametrize(
    ("source", "said"),
    [
        (_in_loss("", "(out * 2).exp().mean()"), "`(out * 2).exp()`"),  # not a name
        (_in_loss("        d = 1\n", "out.unsqueeze(d).mean()"), "`out.unsqueeze(d)`"),
        (_after("        t = torch.ones(2)\n        w = (t + out.sum()).exp()\n"), "exp()"),
    ],
)
def test_other_forms_keep_the_escape(source: str, said: str) -> None:
    translated = translate_nnx(source)
    assert BEGIN in translated and said in translated, translated


def test_a_torch_value_after_the_step_keeps_its_method() -> None:
    """``t.exp()`` of a tensor the step never sees stays torch code."""
    translated = translate_nnx(_after("        t = torch.ones(2)\n        w = t.exp()\n"))
    assert BEGIN not in translated and "w = t.exp()\n" in translated, translated
