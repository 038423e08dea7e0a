"""Probe s34 B1: a value the forward pass binds and the code after the step reads (an aux output
of ``loss_fn``) that holds code run later: ``show = lambda: out.sum()``, ``(o for o in [out])``,
``map(float, [out.sum()])``. Torch runs it after the step on the tensors of the step; the
translation returned it as aux, and it read the loss function's traced values when it ran:
JAX raised an UnexpectedTracerError. Such a step escapes, naming the kept code. Twins that
convert: a generator expression a call runs where it is written (``sum(o.sum() for o in
rows)``) and a lambda reading only its own parameters (the codemod's output run against torch,
float64, 36 updates)."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.differential.test_nnx_array_functions import _loop

KEPT = "is kept after the step and reads `{name}` when it runs"

ESCAPED = {
    "lambda_reading_the_output": (
        _loop(forward="show = lambda: out.sum()", after="losses.append(float(show()))"),
        "`lambda: out.sum()`",
        "out",
    ),
    "generator_over_the_output": (
        _loop(forward="g = (o for o in [out])", after="losses.append(float(next(g).sum()))"),
        "`(o for o in [out])`",
        "out",
    ),
    "map_over_the_output": (
        _loop(forward="m = map(float, [out.sum()])", after="losses.append(next(m))"),
        "`map(float, [out.sum()])`",
        "out",
    ),
    "lambda_in_a_dict": (
        _loop(forward='fs = {"f": lambda: out.sum()}', after='losses.append(float(fs["f"]()))'),
        "`lambda: out.sum()`",
        "out",
    ),
}


@pytest.mark.parametrize("case", sorted(ESCAPED))
def test_code_kept_after_the_step_escapes(case: str) -> None:
    source, code, name = ESCAPED[case]
    translated = translate_nnx(source)
    assert BEGIN in translated, translated
    assert code in translated and KEPT.format(name=name) in translated, translated
    assert translate_nnx(translated) == translated


CONVERTED = {
    "generator_run_by_a_call_and_a_lambda_of_its_own_parameter": _loop(
        forward="rows = [out[0], out[1]]\n        s = sum(o.sum() for o in rows)\n"
        "        dbl = lambda out: out * 2",
        loss="((out - y) ** 2).mean() + 0.0 * s",
        after="losses.append(float(s) + float(dbl(2.0)))",
    ),
    "lambda_reading_no_value_of_the_loss_function": _loop(
        forward="half = lambda t: t * 0.5",
        after="losses.append(float(half(out).sum()))",
    ),
}


@pytest.mark.parametrize("case", sorted(CONVERTED))
def test_code_run_where_written_converts_exactly(case: str) -> None:
    translated, rel = translated_rel(CONVERTED[case])
    assert BEGIN not in translated and "opt.update(model, grads)" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"
    assert translate_nnx(translated) == translated
