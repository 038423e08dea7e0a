"""A step call in a lambda (s24d): ``do = lambda: opt.step()`` steps when ``do()`` runs, if
ever. The NNX translation took the lambda's statement as the step and wrote the update in its
place: with ``do()`` after it the output raised NameError; with the lambda never called it
updated the model at every batch torch never updates (measured at main on the codemod's own
output, float64, 36 batches: 1.28 relative off torch). Such a step is no training step the
translation writes: it escapes. A lambda next to the step keeps the translation, exact."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.differential.test_nnx_loops import PLAIN_LOOP

STEP = "        opt.step()\n"


@pytest.mark.parametrize(
    "line",
    ["        do = lambda: opt.step()\n        do()\n", "        do = lambda: opt.step()\n"],
)
def test_a_step_in_a_lambda_escapes(line: str) -> None:
    translated = translate_nnx(PLAIN_LOOP.replace(STEP, line))
    assert BEGIN in translated and "do = lambda: opt.step()" in translated, translated
    assert "opt.update(model, grads)" not in translated.split(BEGIN)[0], translated


def test_a_lambda_next_to_the_step_converts_exactly() -> None:
    zero = "        opt.zero_grad()\n"
    source = PLAIN_LOOP.replace(zero, "        count = lambda: len(losses)\n" + zero)
    translated, rel = translated_rel(source)
    assert BEGIN not in translated and "opt.update(model, grads)" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"
