"""``x.max(dim)`` / ``x.min(dim)`` on values of the NNX loss function, written exactly through
the map's ``exact`` template (``array_namesakes`` in targets/nnx/nnx.yaml, s22i): ``vals, pred
= out.max(1)`` becomes ``(jnp.take_along_axis(out, out.argmax(axis=1, keepdims=True),
axis=1).squeeze(1), out.argmax(axis=1))`` in the loss function and between the gradient and
the update, where s21c/s22b escaped the step.
The codemod's own output run against torch (float64, 36 updates): losses, recorded index sums
(an accuracy count's input) and final parameters equal. Any other form keeps the escape."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from ml_switcheroo.spec.errors import SemanticMapError
from ml_switcheroo.spec.escape_hatch import BEGIN
from ml_switcheroo.targets.catalogue import NNX, load_semantic_map
from tests.differential.harness import EXACT, float64
from tests.differential.nnx_loops import translate_nnx, translated_rel

LOOP = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        out = model(x)
        FORWARD
        loss = ((out - y) ** 2).mean() + 0.1 * vals.mean()
        loss.backward()
        TAIL
        opt.step()
        losses.append(loss.item())
        losses.append(RECORDED)
"""


def _loop(forward: str, tail: str, recorded: str) -> str:
    return LOOP.replace("FORWARD", forward).replace("TAIL", tail).replace("RECORDED", recorded)


CONVERTED = [
    ("vals, pred = out.max(1)", "low = out.min(dim=1)[0].sum().item()", "low"),
    ("vals, pred = out.min(1)", "top = out.max(-1)[1].sum().item()", "float(top)"),
    ("vals = out.max(-1)[0]", "n = out.max(dim=1)[1].sum().item()", "float(n)"),
]


@pytest.mark.parametrize(("forward", "tail", "recorded"), CONVERTED)
def test_max_and_min_with_a_dim_convert_exactly(forward: str, tail: str, recorded: str) -> None:
    source = _loop(forward, tail, recorded)
    translated, rel = translated_rel(source)
    assert BEGIN not in translated and "opt.update(model, grads)" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"
    assert translate_nnx(translated) == translated  # a second run changes nothing


def test_the_index_recorded_after_the_loss_function_matches_torch() -> None:
    """The accuracy count's input: ``pred`` (argmax) returned by the loss function, summed."""
    source = _loop("vals, pred = out.max(1)", "", "float(pred.sum().item())")
    translated, rel = translated_rel(source)
    expected = (
        "vals, pred = (jnp.take_along_axis(out, out.argmax(axis=1, keepdims=True), axis=1)"
        ".squeeze(1), out.argmax(axis=1))"
    )
    assert expected in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"


@pytest.mark.parametrize(
    ("forward", "tail", "said"),
    [
        ("vals, pred = out.max(1, out=(a, b))", "", "`out.max(1, out=(a, b))`"),
        ("vals, pred = out.max(d)", "", "`out.max(d)`"),  # `d` may be a tensor: elementwise
        ("vals = out.max(1).values", "", "`out.max(1)`"),  # a tuple has no `.values`
        ("vals, pred = out.max(1.0)", "", "`out.max(1.0)`"),
        ("vals, pred = out.max(1, keepdim=k)", "", "`out.max(1, keepdim=k)`"),
        ("vals, pred = out.max(1, True)", "", "`out.max(1, True)`"),  # keepdim: not in the map
        ("vals = out.sort(1)[0]", "", "`out.sort(1)`"),
        ("vals = out.std(1)", "", "`out.std(1)`"),
        ("vals = (out * 2).max(1)[0]", "", "`(out * 2).max(1)`"),  # not a name
    ],
)
def test_other_forms_keep_the_escape(forward: str, tail: str, said: str) -> None:
    translated = translate_nnx(_loop(forward, tail, "1.0"))
    assert BEGIN in translated and "loss.backward()" in translated, translated
    assert f"{said} runs on JAX arrays there" in translated, translated


@pytest.mark.parametrize(("name", "row"), [("max", [1.0, 1.0, 0.0]), ("min", [0.0, 2.0, 0.0])])
def test_the_template_gives_tied_values_torchs_gradient(name: str, row: list[float]) -> None:
    """Torch's gradient of ``x.max(1)[0]`` on a tie goes to the index ([1, 0, 0]); that of a JAX
    array's ``x.max(axis=1)`` splits it ([0.5, 0.5, 0]): the map's template gathers the values
    at the index, and has torch's."""
    namesake = load_semantic_map((), NNX).array_namesakes[name]
    assert namesake.exact is not None
    code = "lambda x: " + namesake.exact.format(x="x", dim="1") + "[0].sum()"
    with float64():
        tensor = torch.tensor([row], requires_grad=True)
        getattr(tensor, name)(1)[0].sum().backward()
        grad = jax.grad(eval(code, {"jnp": jnp}))(jnp.asarray([row]))
    np.testing.assert_array_equal(np.asarray(grad), tensor.grad.numpy())


def test_after_the_update_the_template_writes_it_too() -> None:
    """Since s23a the statements after the step are rewritten too (kuangliu/pytorch-cifar's
    ``_, predicted = outputs.max(1)`` after ``optimizer.step()``;
    test_nnx_after_update_rewrites.py): the step converts, the index recorded equal."""
    source = _loop("vals = out.mean(1)", "", "1.0").replace(
        "        losses.append(loss.item())\n",
        "        losses.append(loss.item())\n        _, predicted = out.max(1)\n"
        "        losses.append(float(predicted.sum().item()))\n",
    )
    translated, rel = translated_rel(source)
    assert BEGIN not in translated and "out.argmax(axis=1))" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"


def test_ties_and_nan_give_torchs_indices() -> None:
    """What the template relies on (torch 2.13, jax 0.10.2, float64, CPU): on ties both give the
    first index, on NaN both the first NaN's value and index."""
    with float64():
        rng = np.random.default_rng(0)
        rows = [rng.integers(0, 3, size=(64, n)).astype(np.float64) for n in (3, 17, 1000)]
        rows.append(np.array([[np.nan, 1.0, np.nan, 5.0], [1.0, np.nan, 7.0, 7.0]]))
        for x in rows:
            for dim in (0, 1):
                for name, arg in (("max", "argmax"), ("min", "argmin")):
                    values, indices = getattr(torch.from_numpy(x), name)(dim)
                    array = jnp.asarray(x)
                    got = getattr(array, name)(axis=dim), getattr(array, arg)(axis=dim)
                    np.testing.assert_array_equal(np.asarray(got[1]), indices.numpy())
                    np.testing.assert_array_equal(np.asarray(got[0]), values.numpy())


def test_exact_goes_with_params(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    text = 'array_namesakes:\n  max:\n    reason: "r"\n    exact: "{x}.max()"\n'
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SemanticMapError, match="'exact' and 'params' go together"):
        load_semantic_map([path], NNX)
