"""A name sharing memory with a value of the NNX step, changed in place (s23int). In torch
``keep = out.detach(); keep += 1`` changes ``out`` too (a view, the same storage); JAX arrays
are never changed in place, so ``keep = out; keep += 1`` leaves ``out`` as it was. s23a's
after-update templates (``x.detach()`` -> ``x``) made this convert: measured on the codemod's
own output, float64, 36 updates, ``out`` recorded: 0.785 relative off torch. The step escapes
naming the change (the map's ``array_views``); a fresh value changed in place still converts."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.differential.test_nnx_namesakes_after_gradient import STEP, _loop

RECORDED = "loss.item() + out.sum().item()"


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("        keep = out.detach()\n        keep += 1\n", "`keep += 1` changes `keep`"),
        ("        keep = out.cpu()\n        keep += 1\n", "`keep += 1` changes `keep`"),
        ("        keep = out.data\n        keep *= 2\n", "`keep *= 2` changes `keep`"),
        ("        keep = out\n        keep += 1\n", "`keep += 1` changes `keep`"),
        ("        row = out[0]\n        row[0] = 5.0\n", "`row[0] = 5.0` changes `row`"),
        ("        keep = out.detach()\n        keep.add_(1)\n", "`keep.add_(1)` changes `keep`"),
        ("        a, b = out.chunk(2)\n        a += 1\n", "`a += 1` changes `a`"),
    ],
)
def test_a_shared_value_changed_in_place_escapes(line: str, said: str) -> None:
    translated = translate_nnx(_loop(STEP, line, RECORDED))
    assert BEGIN in translated and "opt.step()" in translated, translated
    assert said in translated and "shares its memory" in translated, translated


@pytest.mark.parametrize(
    "line",
    [
        "        keep = out.pow(2)\n        keep += 1\n",  # a fresh value
        "        keep = out.detach()\n        keep = keep + 1\n",  # a new value, not in place
        "        keep = out.cpu()\n",  # shared, never changed
    ],
)
def test_a_fresh_or_unchanged_value_still_converts_exactly(line: str) -> None:
    translated, rel = translated_rel(_loop(STEP, line, RECORDED))
    assert BEGIN not in translated and "opt.update(model, grads)" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("        keep = out if epoch >= 0 else None\n        keep += 1\n", "`keep += 1`"),
        ("        (keep := out.detach())\n        keep += 1\n", "`keep += 1`"),
        ("        d = {'o': out}\n        d['o'] += 1\n", "`d['o'] += 1`"),
        ("        for row in out.detach():\n            row += 1\n", "`row += 1`"),
        ("        rows = list(out.detach())\n        rows[0] += 1\n", "`rows[0] += 1`"),
        ("        rows = [o for o in out.detach()]\n        rows[0] += 1\n", "`rows[0] += 1`"),
        ("        keep = next(iter(out.detach()))\n        keep += 1\n", "`keep += 1`"),
        ("        keep = torch.squeeze(out)\n        keep += 1\n", "`keep += 1`"),
    ],
)
def test_a_value_shared_through_a_conditional_walrus_dict_loop_or_call_escapes(
    line: str, said: str
) -> None:
    """s24d: the first seven converted before, measured on the codemod's own output (float64,
    36 updates, ``out`` recorded): 0.785 relative off torch for the conditional, the walrus,
    the dict and the ``for`` loop, 0.379 for ``list``, the comprehension and ``next(iter())``;
    ``torch.squeeze(out)`` converted and raised on the JAX array."""
    translated = translate_nnx(_loop(STEP, line, RECORDED))
    assert BEGIN in translated and "opt.step()" in translated, translated
    assert f"{said} changes" in translated and "shares its memory" in translated, translated


@pytest.mark.parametrize(
    "line",
    [
        "        keep = out.pow(2) if epoch >= 0 else out * 2\n        keep += 1\n",
        "        (keep := out.pow(2))\n        keep += 1\n",
        "        d = {'o': out.pow(2)}\n        d['o'] += 1\n",
        "        for row in out.detach():\n            rows = row * 2\n",
        "        keep = float(out.sum())\n        keep += 1\n",
    ],
)
def test_a_fresh_value_through_a_conditional_walrus_dict_or_loop_converts_exactly(
    line: str,
) -> None:
    translated, rel = translated_rel(_loop(STEP, line, RECORDED))
    assert BEGIN not in translated and "opt.update(model, grads)" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"


# probe s41a R2: a running total of Python numbers (`.item()`), then `best = running`: a number
# is never changed in place (`+=` rebinds it), so nothing is shared and the step converts. A
# tensor total (`torch.zeros(())`, or `+= loss` without `.item()`) is changed in place by `+=`
# from its second update on, and `best` with it: those still escape.
BEST = "        best = running\n"


@pytest.mark.parametrize(
    "start",
    [
        "        running = 0.0\n",
        "        running = float(0)\n",
        "        running = 2 * len(x) * 0\n",
    ],
)
def test_a_running_total_of_numbers_copied_converts_exactly(start: str) -> None:
    line = start + "        running += loss.item()\n" + BEST
    translated, rel = translated_rel(_loop(STEP, line, RECORDED + " + best"))
    assert BEGIN not in translated and "opt.update(model, grads)" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"


@pytest.mark.parametrize(
    "line",
    [
        "        running = loss * 0\n        best = running\n        running += 1.0\n",
        "        running = loss.detach()\n        best = running\n        running += loss.item()\n",
    ],
)
def test_a_running_total_of_tensors_copied_escapes(line: str) -> None:
    translated = translate_nnx(_loop(STEP, line, RECORDED + " + best.item()"))
    assert BEGIN in translated and "shares its memory" in translated, translated
