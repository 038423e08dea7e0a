"""Torch namesakes (the map's ``array_namesakes``) on what the NNX loss function reads but does
not compute: the batch. The translated loss runs only on JAX (or NumPy) arrays (a torch ``y``
in ``(out - y) ** 2`` raises under ``nnx.value_and_grad``), so ``y.std()`` after the step, or
``t = y.max(0)[0]`` before it, computes other numbers than torch. Measured before the fix (the
codemod's own output run against torch, float64, 36 updates, recorded values): ``y.std()``
after the step 0.044 relative, ``x.var(0)`` after it 0.17, ``batch[1].max(0)[0]`` 0.46,
``t = y.max(0)[0]`` in the step before the forward pass (or before ``zero_grad``) 1.98. Such a
step escapes, naming the call; namesakes computing the same, and torch values the loss does
not read, still convert exactly (s23d)."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel

HEAD = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
"""

LOOP = (
    HEAD
    + """\
w = torch.tensor([3.0, 1.0, 2.0])
for epoch in range(EPOCHS):
    for x, y in loader:
        BEFORE
        opt.zero_grad()
        PREFIX
        out = model(x)
        loss = ((out - TARGET) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        losses.append(RECORDED)
"""
)


def _loop(recorded: str, before: str = "", prefix: str = "", target: str = "y") -> str:
    return (
        LOOP.replace("BEFORE", before or "pass")
        .replace("PREFIX", prefix or "pass")
        .replace("TARGET", target)
        .replace("RECORDED", recorded)
    )


FULL_BATCH = (
    HEAD
    + """\
X, Y = loader[0]
for epoch in range(EPOCHS * 12):
    opt.zero_grad()
    loss = ((model(X) - Y) ** 2).mean()
    loss.backward()
    opt.step()
    losses.append(loss.item() / Y.std().item())
"""
)

BATCH_TUPLE = (
    HEAD
    + """\
for epoch in range(EPOCHS):
    for batch in loader:
        opt.zero_grad()
        loss = ((model(batch[0]) - batch[1]) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item() + batch[1].max(0)[0].sum().item())
"""
)


@pytest.mark.parametrize(
    ("source", "said"),
    [
        (_loop("y.std().item()"), "`y.std()`"),
        (_loop("x.var(0).sum().item()"), "`x.var(0)`"),
        (_loop("1.0", prefix="t = y.max(0)[0]", target="t"), "`y.max(0)`"),
        (_loop("1.0", before="t = y.max(0)[0]", target="t"), "`y.max(0)`"),
        (_loop("1.0", before="_, t = y.max(1)", target="y + 0 * t[:, None]"), "`y.max(1)`"),
        (FULL_BATCH, "`Y.std()`"),
        (BATCH_TUPLE, "`batch[1].max(0)`"),
    ],
)
def test_a_namesake_on_the_batch_escapes(source: str, said: str) -> None:
    translated = translate_nnx(source)
    assert BEGIN in translated and "loss.backward()" in translated, translated
    assert "a value the loss function returns or reads is a JAX array" in translated
    assert f"{said} runs on JAX arrays there" in translated, translated


@pytest.mark.parametrize(
    "source",
    [
        _loop("y.max().item()"),  # `bare`: the same on a JAX array
        _loop("y.mean(0).sum().item() + x.shape[0]"),
        _loop("w.max(0)[0].item()"),  # a torch tensor the loss does not read
        _loop("1.0", prefix="t = y * 2", target="t"),
    ],
)
def test_what_computes_the_same_still_converts_exactly(source: str) -> None:
    translated, rel = translated_rel(source)
    assert BEGIN not in translated and "opt.update(model, grads)" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"
    assert translate_nnx(translated) == translated  # a second run changes nothing
