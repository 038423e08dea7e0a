"""JAX namesakes (the map's ``array_namesakes``) on values that come out of the NNX loss
function (s22b): after the gradient ``out`` and ``loss`` are JAX arrays, so a torch method a
JAX array has with other numbers, in a statement the step records between the gradient and
the update or in the step's scope after it, computes other numbers. Measured before the fix
(the codemod's own output run, float64, 36 updates, recorded values): ``spread =
out.std().item()`` between backward and step 0.0074 relative off torch, ``stats =
out.max(1)[0]`` after the step 0.59, ``o = out * 2; stats = o.sort(1)[0]`` after it 0.77. Such
a step escapes, naming the call; a method computing the same on arrays still converts, and
since s23a so does one the map's template after the update writes (``out.max(1)[0]`` after
the step: ``take_along_axis`` at the argmax, test_nnx_after_update_rewrites.py)."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.differential.test_nnx_loops import PLAIN_LOOP

BACKWARD, STEP = "        loss.backward()\n", "        opt.step()\n"
RECORD = "losses.append(loss.item())"


def _loop(after: str, line: str, recorded: str) -> str:
    """``PLAIN_LOOP`` with ``line`` after the ``after`` statement, recording ``recorded``."""
    assert after in PLAIN_LOOP and RECORD in PLAIN_LOOP
    return PLAIN_LOOP.replace(after, after + line).replace(RECORD, f"losses.append({recorded})")


@pytest.mark.parametrize(
    ("after", "line", "recorded", "said"),
    [
        (BACKWARD, "        spread = out.std().item()\n", "loss.item() + spread", "`out.std()`"),
        (
            STEP,
            "        stats = out.max(1).values\n",  # a tuple has no `.values`
            "loss.item() + stats.sum().item()",
            "`out.max(1)`",
        ),
        (
            STEP,
            "        o = out * 2\n        stats = o.sort(1)[0]\n",
            "loss.item() + stats.sum().item()",
            "`o.sort(1)`",
        ),
        (STEP, "        big = loss.repeat(2)\n", "big.sum().item()", "`loss.repeat(2)`"),
    ],
)
def test_a_namesake_on_a_value_of_the_loss_function_after_the_gradient_escapes(
    after: str, line: str, recorded: str, said: str
) -> None:
    translated = translate_nnx(_loop(after, line, recorded))
    assert BEGIN in translated and "loss.backward()" in translated, translated
    assert "a value the loss function returns or reads is a JAX array" in translated
    assert f"{said} runs on JAX arrays there" in translated, translated


@pytest.mark.parametrize(
    ("after", "line", "recorded"),
    [
        (STEP, "        stats = out.max()\n", "loss.item() + stats.item()"),
        (BACKWARD, "        spread = out.mean(1).sum().item()\n", "loss.item() + spread"),
        (STEP, "        stats = out.max(1)[0]\n", "loss.item() + stats.sum().item()"),  # s23a
    ],
)
def test_a_method_computing_the_same_after_the_gradient_converts_exactly(
    after: str, line: str, recorded: str
) -> None:
    """``out.max()`` (``bare``), ``out.mean(1)``. A namesake on the batch (``y.std()``) escapes
    since s23d: test_nnx_namesakes_on_the_batch.py."""
    source = _loop(after, line, recorded)
    translated, rel = translated_rel(source)
    assert BEGIN not in translated and "opt.update(model, grads)" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"
