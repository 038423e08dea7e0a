"""torch.Tensor methods a JAX array also has, with other numbers (s21c): the NNX loss function
runs the forward pass's statements as written on JAX arrays, so ``out.std()`` there divided by
n, not n - 1, and ``out.max(1)[0]`` read the first row, not the maxima. Measured before the fix
(the codemod's own output run, float64, 36 updates): ``.std()`` 0.53 relative off torch,
``.var()`` 0.079, ``.max(1)[0]`` 6.1, ``.sort(1)[0]`` 1.4. Such a step escapes, naming the call
and what to write (the map's ``array_namesakes``); the same method without arguments, where it
computes the same, still converts."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.differential.test_nnx_loops import PLAIN_LOOP


def _loop(loss: str) -> str:
    """``PLAIN_LOOP`` with ``loss`` for its loss."""
    plain = "loss = ((out - y) ** 2).mean()"
    assert plain in PLAIN_LOOP
    return PLAIN_LOOP.replace(plain, f"loss = {loss}")


@pytest.mark.parametrize(
    ("loss", "said"),
    [
        ("((out - y) ** 2).mean() + out.std()", "divides by n - 1"),
        ("((out - y) ** 2).mean() + out.var(0).sum()", "divides by n - 1"),
        ("((out.sort(1)[0] - y) ** 2).mean()", "returns (values, indices)"),
        ("((out.max(1, True)[0] - y[:, :1]) ** 2).mean()", "returns (values, indices)"),
        ("((out.repeat(2, 1) - y.repeat(2, 1)) ** 2).mean()", "tiles the tensor"),
        # s22c, measured before: 1.8, 1.06 and 1.09 relative off torch (36 updates)
        ("((out - y) ** 2).mean() + out.transpose(0, 1)[0].mean()", "swaps two dimensions"),
        ("((out.transpose(-2, -1).reshape(-1) - y.reshape(-1)) ** 2).mean()", "swaps two"),
        ("((out - y) ** 2).mean() + out[y.nonzero()[0]].mean()", "one row of indices"),
    ],
)
def test_a_namesake_with_other_numbers_in_the_loss_escapes_the_step(loss: str, said: str) -> None:
    translated = translate_nnx(_loop(loss))
    assert BEGIN in translated and "loss.backward()" in translated, translated
    assert "runs on JAX arrays there" in translated and said in translated


@pytest.mark.parametrize(
    "loss",
    [
        "((out - y) ** 2).mean() + out.max() - out.min()",
        "((out - y) ** 2).mean(1).sum()",
        # s22i: the map's `exact` writes these (tests/differential/test_nnx_exact_namesakes.py)
        "((out.max(1)[0] - y[:, 0]) ** 2).mean()",
        "((out.min(dim=1)[0] - y[:, 0]) ** 2).mean()",
        "((out - y) ** 2).mean() + out.T[0].mean()",  # .T is no call: the same on both
    ],
)
def test_a_method_computing_the_same_on_arrays_converts_exactly(loss: str) -> None:
    translated, rel = translated_rel(_loop(loss))
    assert BEGIN not in translated and "opt.update(model, grads)" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"


HELPER = """\
def spread_loss(out, y):
    return ((out - y) ** 2).mean() + out.SPREAD


"""


def test_a_function_of_the_file_the_loss_calls_with_a_namesake_escapes_the_step() -> None:
    """``loss = spread_loss(out, y)`` whose body reads ``out.std()`` (measured before the fix:
    0.53 relative off torch)."""
    source = HELPER.replace("SPREAD", "std()") + _loop("spread_loss(out, y)")
    translated = translate_nnx(source)
    assert BEGIN in translated and "`out.std()` runs on JAX arrays there" in translated


def test_a_function_of_the_file_the_loss_calls_without_one_converts_exactly() -> None:
    source = HELPER.replace("SPREAD", "max()") + _loop("spread_loss(out, y)")
    translated, rel = translated_rel(source)
    assert BEGIN not in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"


def test_a_function_of_torch_named_like_a_namesake_is_no_method_call() -> None:
    """``torch.max(a, b)`` in a loss helper (pytorch/examples' VAE) is torch's function, not
    a method of an array: the helper is not refused for it."""
    source = HELPER.replace("out.SPREAD", "torch.max(out, y).mean()") + _loop("spread_loss(out, y)")
    assert "runs on JAX arrays there" not in translate_nnx(source)


# s22h: torch.Tensor methods a JAX array lacks (the map's `array_lacks`). Before the fix each
# step converted and its translation raised AttributeError when run (no number to compare).
LACKING_TAIL = """\
        TAIL
        losses.append(loss.item())
"""


def _tail(statement: str) -> str:
    """``PLAIN_LOOP`` with ``statement`` run after the step, before the loss is recorded."""
    recorded = "        losses.append(loss.item())\n"
    assert recorded in PLAIN_LOOP
    return PLAIN_LOOP.replace(recorded, LACKING_TAIL.replace("TAIL", statement))


def _before_step(statement: str) -> str:
    """``PLAIN_LOOP`` with ``statement`` between the backward pass and the step."""
    step = "        opt.step()\n"
    assert step in PLAIN_LOOP
    return PLAIN_LOOP.replace(step, f"        {statement}\n{step}")


@pytest.mark.parametrize(
    ("source", "said"),
    [
        (_loop("((out - out.detach().mean()) ** 2).mean() + ((out - y) ** 2).mean()"), "stop_grad"),
        (_loop("(out - y).pow(2).mean()"), "write `x ** k`"),
        (_before_step("total = 0.5 * loss.numel()"), "has no `numel`"),
        (_tail("loss2 = out.pow(2.0).mean()"), "has no `pow` method"),  # s23a: ints only
        (_tail("loss2 = (out * 1).pow(2).mean()"), "has no `pow` method"),  # not a name
        (_tail("ppl = loss.clamp(0, 9)"), "has no `clamp` method"),
    ],
)
def test_a_method_a_jax_array_lacks_escapes_the_step(source: str, said: str) -> None:
    translated = translate_nnx(source)
    assert BEGIN in translated and "loss.backward()" in translated, translated
    assert "runs on JAX arrays there" in translated and said in translated, translated


@pytest.mark.parametrize(
    "source",
    [
        _loop("(out - y) ** 2).mean() + 0.0 * (out ** 2".join(["(", ").mean()"])),
        _tail("total = 0.5 * loss.item()"),
        _tail("total = loss.item() ** 2"),
        _tail("loss2 = out.pow(2).mean()"),  # s23a: the map's template, `(out ** 2)`
        _before_step("total = 0.5 * loss.detach()"),  # s23a: after the gradient, `loss`
    ],
)
def test_the_twin_without_the_lacking_method_converts_exactly(source: str) -> None:
    translated, rel = translated_rel(source)
    assert BEGIN not in translated and "opt.update(model, grads)" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"


def test_an_added_detached_loss_before_the_update_still_converts_exactly() -> None:
    """``total += loss.detach()`` between the backward pass and the step: the translation
    adds ``loss`` (a JAX array, exact). After the step the map's ``after`` template writes
    ``loss`` too (s23a, test_nnx_after_update_rewrites.py)."""
    source = "total = 0.0\n" + _before_step("total += loss.detach()")
    translated, rel = translated_rel(source)
    assert BEGIN not in translated and "total += loss\n" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"
