"""Two crashes the NNX translation converted (s23 found, s24b fixed): ``x.size(0)`` on a value
of the step (a JAX array's ``size`` is an int: ``TypeError: 'int' object is not callable``)
and an in-place method (``out.add_(1)``, ``out.clamp_(0, 1)``) after the update on the model's
output or the loss (a JAX array has none: ``AttributeError``). Measured on main f20f630: each
shape below converted and raised when run.

``x.size(d)`` is now the map's template ``x.shape[d]`` (``array_namesakes: size``, the same int
on a torch tensor, a NumPy and a JAX array: written on the batch too); ``x.size()`` keeps the
escape. An in-place call after the update on the model's output escapes naming the call. The
codemod's own output run against torch (float64, 36 updates, the values read recorded)."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.differential.test_nnx_loops import PLAIN_LOOP

STEP = "        opt.step()\n        losses.append(loss.item())\n"


def _after(lines: str) -> str:
    """``PLAIN_LOOP`` with ``lines`` after the step, in the batch loop."""
    assert STEP in PLAIN_LOOP
    return PLAIN_LOOP.replace(STEP, STEP + lines)


SIZES = [
    (  # kuangliu/pytorch-cifar's `total += targets.size(0)`: on the batch
        "total = 0\n" + _after("        total += y.size(0)\n        losses.append(float(total))\n"),
        "total += y.shape[0]\n",
    ),
    (  # on the model's output, a negative dimension
        _after("        losses.append(float(out.size(-1) * out.size(dim=0)))\n"),
        "losses.append(float(out.shape[-1] * out.shape[0]))",
    ),
    (  # pytorch-beginner's `num_img = img.size(0)`: before the loss, in the step and before it
        PLAIN_LOOP.replace(
            "        opt.zero_grad()\n",
            "        m = x.size(0)\n        opt.zero_grad()\n        n = y.size(1)\n",
        ).replace("loss = ((out - y) ** 2).mean()", "loss = ((out - y) ** 2).sum() / (n * m)"),
        "        m = x.shape[0]\n        n = y.shape[1]\n",
    ),
    (  # in the loss function, on the batch and on the output
        PLAIN_LOOP.replace(
            "loss = ((out - y) ** 2).mean()",
            "loss = ((out - y) ** 2).sum() / x.size(0) + out.size(1) * 0.01",
        ),
        "loss = ((out - y) ** 2).sum() / x.shape[0] + out.shape[1] * 0.01",
    ),
]


@pytest.mark.parametrize(("source", "written"), SIZES)
def test_sizes_convert_exactly(source: str, written: str) -> None:
    translated, rel = translated_rel(source)
    assert BEGIN not in translated and "opt.update(model, grads)" in translated, translated
    assert written in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"
    assert translate_nnx(translated) == translated


def test_a_size_of_a_torch_value_is_written_the_same() -> None:
    """``t.size(0)`` of a tensor the step never sees stays as written."""
    source = _after("        t = torch.ones(2)\n        n = t.size(0)\n")
    translated = translate_nnx(source)
    assert BEGIN not in translated and "n = t.size(0)\n" in translated, translated


@pytest.mark.parametrize(
    ("source", "said"),
    [
        (
            _after("        w = out.size().numel()\n"),
            "`out.size().numel()` runs on JAX arrays there",
        ),
        (_after("        w = out.size(d)\n"), "`out.size(d)` runs on JAX arrays there"),
        (
            _after("        out.add_(1)\n        losses.append(out.sum().item())\n"),
            "`out.add_(1)` changes `out` in place after the update",
        ),
        (_after("        loss.clamp_(0, 1)\n"), "`loss.clamp_(0, 1)` changes `loss` in place"),
        (  # through a view
            _after("        out.detach().mul_(2)\n"),
            "`out.detach().mul_(2)` changes `out` in place",
        ),
        (  # through a name assigned from the output after the step
            _after("        o = out * 2\n        o.clamp_(0, 1)\n"),
            "`o.clamp_(0, 1)` changes `o` in place",
        ),
        (  # rebound between the step and the change: escapes all the same
            _after("        out = torch.zeros(2)\n        out.add_(1)\n"),
            "`out.add_(1)` changes `out` in place",
        ),
    ],
)
def test_other_sizes_and_in_place_calls_escape(source: str, said: str) -> None:
    translated = translate_nnx(source)
    assert BEGIN in translated and "loss.backward()" in translated, translated
    assert said in translated, translated


def test_an_in_place_call_on_a_torch_value_converts() -> None:
    """``t.add_(1)`` of a tensor the loss function does not compute stays as written."""
    source = _after("        t = torch.ones(2)\n        t.add_(1)\n")
    translated = translate_nnx(source)
    assert BEGIN not in translated and "t.add_(1)\n" in translated, translated
