"""Torch tensor calls in and around the NNX step written by the map (s26c): ``x.view(a, b)`` ->
``x.reshape(a, b)`` (a variadic ``*shape`` parameter; ``x.size(0)`` inside it written too),
``x.view_as(y)``, ``x.cuda()`` -> ``x``, ``Variable(x)`` -> ``x`` (the map's ``array_functions``:
torch's Variable detaches, so not on a value the loss function computes), and ``torch.max``/
``min``/``argmax``/``argmin``/``sum``/``mean`` with literal dims -> their JAX forms, in the loss
function, before it and after the update. Before (main 7c53ce7) each step converted and raised
when run (a JAX array's ``view`` takes a dtype, it has no ``cuda``/``view_as``; ``Variable`` and
``torch.max`` take torch tensors). The codemod's own output run against torch (float64, 36
updates, recorded values); ``x.cuda()`` runs as the identity on torch's side (no GPU here: the
same numbers on any device). Forms that are not exact escape, naming the call."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel

LOOP = """\
import torch
from torch.autograd import Variable

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(EPOCHS):
    for x, y in loader:
        PREFIX
        opt.zero_grad()
        out = model(INPUT)
        FORWARD
        loss = LOSS
        loss.backward()
        opt.step()
        losses.append(loss.item())
        AFTER
"""

BATCH_LOOP = LOOP.replace("for x, y in loader:", "for batch in loader:")
DEVICE_LOOP = LOOP.replace(
    "for epoch in range(EPOCHS):",
    'device = torch.device("cuda" if torch.cuda.is_available() else "cpu")\n'
    "for epoch in range(EPOCHS):",
)


def _loop(
    prefix: str = "",
    input_: str = "x",
    forward: str = "",
    loss: str = "((out - y) ** 2).mean()",
    after: str = "",
    source: str = LOOP,
) -> str:
    """``source`` with its lines filled in (an empty one left out)."""
    for key, text in (("PREFIX", prefix), ("FORWARD", forward), ("AFTER", after)):
        source = source.replace(f"        {key}\n", f"        {text}\n" if text else "")
    return source.replace("INPUT", input_).replace("LOSS", loss)


@pytest.fixture(autouse=True)
def cuda_is_the_identity(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``torch.Tensor.cuda`` returns the tensor: torch's numbers without a GPU."""
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *args, **kwargs: self)
    yield


CONVERTED = {
    "view_of_the_batch_before_the_loss": (
        _loop(prefix="x = x.view(x.size(0), 2, 2)", input_="x.view(-1, 4)"),
        ["x = x.reshape(x.shape[0], 2, 2)", "model(x.reshape(-1, 4))"],
    ),
    "view_inside_the_loss_function": (
        _loop(loss="((out.view(-1) - y.view(-1)) ** 2).mean()"),
        ["((out.reshape(-1) - y.reshape(-1)) ** 2).mean()"],
    ),
    "view_and_view_as_after_the_update": (
        _loop(after="losses.append(float((out.view(-1).view_as(out) - y).sum()))"),
        ["(out.reshape(-1).reshape(out.shape) - y).sum()"],
    ),
    "variable_and_cuda_of_the_batch": (
        _loop(prefix="x = Variable(x)\n        y = Variable(y).cuda()"),
        ["x = x\n", "y = y\n"],
    ),
    "variable_of_an_item_of_the_batch": (
        _loop(
            prefix="x, y = Variable(batch[0]), Variable(batch[1], requires_grad=False)",
            source=BATCH_LOOP,
        ),
        ["x, y = batch[0], batch[1]"],
    ),
    "variable_of_the_batch_inside_the_loss_function": (
        _loop(input_="Variable(x)"),
        ["out = model(x)"],
    ),
    "to_a_proven_device": (
        _loop(
            prefix="x, y = x.to(device), y.to(device=device, non_blocking=True)", source=DEVICE_LOOP
        ),
        ["x, y = x, y\n"],
    ),
    "to_a_device_string": (_loop(prefix='x = x.to("cpu")'), ["x = x\n"]),
    "torch_max_and_argmax_after_the_update": (
        _loop(
            after="v, i = torch.max(out, 1)\n        losses.append(float(v.sum()))\n"
            "        losses.append(float(i.sum() + torch.argmax(out, dim=1).sum()))\n"
            "        losses.append(float(torch.argmin(out, 0, keepdim=True).sum()))"
        ),
        [
            "v, i = (jnp.take_along_axis(out, out.argmax(axis=1, keepdims=True), axis=1)",
            "jnp.argmax(out, axis=1, keepdims=False)",
        ],
    ),
    "torch_max_and_min_in_the_loss_function": (
        _loop(
            forward="v, _ = torch.max(out, 1)\n        w = torch.min(out, dim=0)[0]",
            loss="((out - y) ** 2).mean() + 0.1 * v.mean() + 0.1 * w.sum()",
        ),
        ["v, _ = (jnp.take_along_axis(out,", "w = (jnp.take_along_axis(out, out.argmin(axis=0"],
    ),
    "torch_sum_and_mean_of_expressions": (
        _loop(
            loss="torch.mean((out - y) ** 2) + 0.01 * torch.sum(out, dim=1, keepdim=True).mean()",
            after="losses.append(float(torch.sum(out.data)))",
        ),
        [
            "jnp.mean((out - y) ** 2, axis=None, keepdims=False)",
            "jnp.sum(out, axis=1, keepdims=True).mean()",
            "float(jnp.sum(out, axis=None, keepdims=False))",
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(CONVERTED))
def test_torch_array_calls_convert_exactly(case: str) -> None:
    source, written = CONVERTED[case]
    translated, rel = translated_rel(source)
    assert BEGIN not in translated and "opt.update(model, grads)" in translated, translated
    for text in written:
        assert text in translated, translated
    assert "import jax.numpy as jnp" in translated or "jnp." not in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"
    assert translate_nnx(translated) == translated


ESCAPED = {
    # torch's Variable detaches a value of the loss: `out` would pass the gradient through
    "variable_of_a_value_the_loss_computes": (
        _loop(forward="h = Variable(out)", loss="((out - y) ** 2).mean() + (h * out).mean()"),
        "`Variable(out)`",
    ),
    "named_field_of_torch_max": (
        _loop(after="losses.append(float(torch.max(out, 1).indices.sum()))"),
        "`torch.max(out, 1)`",
    ),
    "torch_max_of_all_elements": (
        _loop(after="losses.append(float(torch.max(out)))"),
        "`torch.max(out)`",
    ),
    "torch_max_elementwise": (
        _loop(after="losses.append(float(torch.max(out, y).sum()))"),
        "`torch.max(out, y)`",
    ),
    "a_dim_in_a_variable": (
        _loop(prefix="d = 1", after="losses.append(float(torch.sum(out, dim=d).sum()))"),
        "`torch.sum(out, dim=d)`",
    ),
    "view_with_a_dtype": (_loop(input_="x.view(torch.float64)"), "`x.view(torch.float64)`"),
    "double_of_the_batch": (_loop(prefix="y = y.double()"), "`y.double()`"),
    "a_variable_changed_in_place": (
        _loop(prefix="h = Variable(x)\n        h += 1.0", input_="x"),
        "`h += 1.0` changes `h` in place",
    ),
}


@pytest.mark.parametrize("case", sorted(ESCAPED))
def test_forms_that_are_not_exact_escape(case: str) -> None:
    source, said = ESCAPED[case]
    translated = translate_nnx(source)
    assert BEGIN in translated and said in translated, translated


def test_a_torch_value_keeps_its_torch_calls() -> None:
    """``Variable(torch.ones(n)).cuda()`` makes a torch tensor (ported by hand with the model):
    left as written, the step converts."""
    line = "t = Variable(torch.ones(x.shape[0])).cuda()"
    translated = translate_nnx(_loop(prefix=line, after="losses.append(float(t.sum()))"))
    assert BEGIN not in translated and f"{line}\n" in translated, translated


@pytest.mark.parametrize(
    "line", ["y = y.to(kind)", "y = y.to(device=kind)", "y = y.to(torch.float32)"]
)
def test_a_to_of_what_is_not_proven_a_device_is_left_as_written(line: str) -> None:
    """``x.to(dtype)`` converts: only a device proven so is written as ``x``; anything else
    stays torch code (AttributeError on a JAX array when run, never other numbers)."""
    source = _loop(prefix=f"kind = torch.float32\n        {line}")
    translated = translate_nnx(source)
    assert f"        {line}\n" in translated, translated


def test_variable_of_the_output_a_generator_step_differentiates_escapes() -> None:
    """DCGAN's generator step differentiates its loss with respect to ``fake`` (pulled back
    through ``nnx.vjp``); torch's ``Variable(fake)`` cuts that gradient: not written ``fake``."""
    from tests.codemods.test_nnx_dcgan_generator import code, converted
    from tests.codemods.test_nnx_dcgan_step import DCGAN

    loop = DCGAN.replace(
        "    output = netD(fake)\n", "    output = netD(torch.autograd.Variable(fake))\n"
    )
    output = converted(loop)
    assert "optimizerG.update" not in code(output), output
