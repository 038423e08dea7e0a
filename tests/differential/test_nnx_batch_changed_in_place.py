"""Issue 13, Shawn1993/cnn-text-classification-pytorch's train.py (s40): the batch changed by
torch's in-place methods before the step (``feature.t_(), target.sub_(1)``) beside a rebinding
through a view (``feature, target = feature.cuda(), target.cuda()``), and an accuracy logged
after the update (``torch.max(logit, 1)[1].view(target.size()).data``).

The step escaped: the rebinding made ``feature`` share memory with a value of the step, so
``feature.t_()`` counted as a shared in-place change (step_shared ``_check_no_shared_change``).
An in-place method of a name no value of the loss function reaches is torch's own change on a
port keeping torch tensors, and AttributeError on a JAX or NumPy array (none has a method named
with the map's ``in_place_suffix``): never other numbers, so it no longer counts. An augmented
assignment still does (``alias *= 2`` rebinds a JAX array, torch changes ``feature`` too), and so
does an in-place method of a value of the loss function. The logged accuracy: libcst qualifies
``torch.max(logit, 1)[1].view`` as ``torch.max.view``, which hid the JAX array's ``view(dtype)``
(TypeError on a shape) and ``torch.max(out, 1)[0].std()`` (n, not n - 1: other numbers) from
the after-update check and from the loss function's check (``_qualify``); both are seen now,
and an item at literal indices of a written read after the update is
written (``(values, indices)[1].reshape(target.shape)``). And a name bound to an attribute of
the batch (``x = batch.text``) shares its tensor: ``x += 1.0`` before ``model(batch.text)``
converted before s40 and trained on other numbers; it escapes now. ``optimizer.TorchToNNX``'s
own output, the batch lines ported by the user, matches torch: float64, 36 updates,
parameters, losses and accuracies."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from ml_switcheroo.spec.escape_hatch import BEGIN
from ml_switcheroo.targets.catalogue import NNX, load_semantic_map
from tests.differential.harness import EXACT, float64
from tests.differential.nnx_loops import (
    batches,
    nnx_net,
    run_nnx_loop,
    run_script,
    run_torch_loop,
    translate_nnx,
    translated_rel,
    worst_rel,
)
from tests.differential.test_nnx_loops import PLAIN_LOOP

TEXT_STEP = """\
import torch
import torch.nn.functional as F

model = make_model()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
steps = 0
for epoch in range(EPOCHS):
    for batch in loader:
        model.train()
        feature, target = batch.text, batch.label
        feature.t_(), target.sub_(1)  # batch first, index align
        if CUDA:
            feature, target = feature.cuda(), target.cuda()

        optimizer.zero_grad()
        logit = model(feature)
        loss = F.cross_entropy(logit, target)
        loss.backward()
        optimizer.step()

        steps += 1
        if steps % 2 == 0:
            corrects = (torch.max(logit, 1)[1].view(target.size()).data == target.data).sum()
            losses.append(corrects.item())
        losses.append(loss.item())
"""

BATCH_LINE = "        feature.t_(), target.sub_(1)  # batch first, index align\n"
# The rebinding through a view first, the in-place change after it. (`model.train()` stays at
# the top: since s40 the `if CUDA:` joins the step's region, and a model use between it and the
# forward pass escapes, as any mode switch in the step does.)
MOVED_FIRST = TEXT_STEP.replace(BATCH_LINE, "").replace(
    "            feature, target = feature.cuda(), target.cuda()\n",
    "            feature, target = feature.cuda(), target.cuda()\n" + BATCH_LINE,
)

# What the user ports (the codemod leaves the batch's torch lines as they are): JAX arrays
# have no in-place methods, no `.data`.
PORTED = (
    ("feature.t_(), target.sub_(1)", "feature, target = feature.T, target - 1"),
    ("== target.data)", "== target)"),
)


def ported(translated: str) -> str:
    for torch_code, nnx_code in PORTED:
        translated = translated.replace(torch_code, nnx_code)
    assert ".t_()" not in translated and ".data" not in translated, translated
    return translated


@dataclass
class Batch:
    """A torchtext batch: ``text`` sequence first, ``label`` counted from 1."""

    text: Any
    label: Any


class TextLoader:
    """New batches at each pass (torchtext's iterator): ``batches()`` with the text transposed
    and the class of each row (the argmax of its target) plus one, as torch or JAX arrays."""

    def __init__(self, array: Any) -> None:
        self.array = array

    def __iter__(self) -> Iterator[Batch]:
        for x, y in batches():
            label = np.argmax(y, axis=1).astype(np.int64) + 1
            yield Batch(self.array(np.ascontiguousarray(x.T)), self.array(label))


def _torch_tensor(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(values.copy())


def _names(array: Any) -> dict[str, Any]:
    return {"loader": TextLoader(array), "CUDA": False}


def _runs(source: str, translated: str) -> float:
    """The worst relative difference of ``translated`` run on JAX batches from ``source`` run
    on torch's."""
    torch_run = run_torch_loop(source, names=_names(_torch_tensor))
    nnx_run = run_nnx_loop(source, translated, names=_names(jnp.asarray))
    assert len(torch_run.losses) == 36 + 18, len(torch_run.losses)
    return worst_rel(torch_run, nnx_run)


@pytest.mark.parametrize("source", [TEXT_STEP, MOVED_FIRST], ids=["as-written", "moved-first"])
def test_the_text_classification_step_matches_torch(source: str) -> None:
    translated = translate_nnx(source)
    assert BEGIN not in translated and "nnx.value_and_grad(loss_fn" in translated, translated
    assert ".reshape(target.shape) == target.data).sum()" in translated, translated
    assert BATCH_LINE in translated, translated  # left to the port
    rel = _runs(source, ported(translated))
    assert rel < EXACT, f"rel {rel:.3e}"


def test_a_second_run_changes_nothing() -> None:
    once = translate_nnx(TEXT_STEP)
    assert translate_nnx(once) == once


def test_the_batch_line_left_as_written_raises_on_jax_arrays() -> None:
    """Not ported, the in-place method is loud on a JAX array (never other numbers)."""
    translated = translate_nnx(TEXT_STEP)
    with float64(), pytest.raises(AttributeError, match="t_"):
        run_script(translated, nnx_net(), [], "<nnx loop>", _names(jnp.asarray))


def test_no_jax_or_numpy_array_has_a_method_named_in_place() -> None:
    """What the narrowing stands on (the map's ``in_place_suffix`` comment)."""
    suffix = load_semantic_map((), NNX).in_place_suffix
    assert suffix
    for array in (jnp.zeros(2), np.zeros(2)):
        named = [m for m in dir(array) if m.endswith(suffix) and not m.startswith("__")]
        assert not named, (type(array), named)


ALIAS_LINE = "        alias = feature\n        alias.mul_(2.0)\n"


def _with_alias(change: str) -> str:
    """``TEXT_STEP`` with ``alias = feature`` (the same tensor) changed by ``change``."""
    return TEXT_STEP.replace(BATCH_LINE, BATCH_LINE + ALIAS_LINE.replace("alias.mul_(2.0)", change))


def test_an_in_place_method_of_an_alias_of_the_batch_converts_and_is_loud_on_jax() -> None:
    """Torch's own change on torch tensors, AttributeError on a JAX array."""
    translated = translate_nnx(_with_alias("alias.mul_(2.0)"))
    assert BEGIN not in translated, translated
    with float64(), pytest.raises(AttributeError, match="mul_"):
        run_script(ported(translated), nnx_net(), [], "<nnx loop>", _names(jnp.asarray))


def test_an_augmented_assignment_of_an_alias_of_the_batch_escapes() -> None:
    """``alias *= 2.0`` doubles ``feature`` in torch and rebinds ``alias`` alone in JAX: left
    in the translation (what converting it would write) it trains on other numbers."""
    source = _with_alias("alias *= 2.0")
    translated = translate_nnx(source)
    assert BEGIN in translated and "optimizer.step()" in translated, translated
    assert "`alias *= 2.0` changes `alias` in place, which shares its memory" in translated
    would_be = translate_nnx(_with_alias("alias.mul_(2.0)")).replace(
        "alias.mul_(2.0)", "alias *= 2.0"
    )
    assert would_be.count("alias *= 2.0") == 1
    assert _runs(source, ported(would_be)) > 1e-3


def test_an_in_place_method_of_a_value_of_the_loss_function_escapes() -> None:
    """``keep`` shares ``logit``'s memory in torch, a JAX array in the translation."""
    source = TEXT_STEP.replace(
        "        steps += 1\n",
        "        keep = logit.detach()\n        keep.mul_(2.0)\n        steps += 1\n",
    )
    translated = translate_nnx(source)
    assert BEGIN in translated and "optimizer.step()" in translated, translated
    assert "`keep.mul_(2.0)` changes `keep` in place, which shares its memory" in translated


LOGGED = "losses.append(loss.item())"


def _logged(line: str) -> str:
    """``PLAIN_LOOP`` with ``c = <line>`` after the update, ``c`` recorded with the loss."""
    step = "        opt.step()\n"
    return PLAIN_LOOP.replace(step, f"{step}        c = {line}\n").replace(
        LOGGED, "losses.append(loss.item() + float(c.sum()))"
    )


@pytest.mark.parametrize(
    "line",
    [
        "torch.max(out, 1)[1].view(-1)",
        "torch.max(out, 1)[1].view(-1).data",
        "out.max(1)[0].view(2, 3)",
        "(torch.max(out, 1)[1] == 1)",
    ],
)
def test_an_item_of_a_written_read_after_the_update_is_written_exactly(line: str) -> None:
    translated, rel = translated_rel(_logged(line))
    assert BEGIN not in translated and ".view(" not in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"


def test_a_namesake_on_an_item_of_an_array_function_escapes() -> None:
    """``torch.max(out, 1)[0].std()``: libcst's ``torch.max.std`` hid it; converted, the JAX
    array's ``std`` divides by n (torch's by n - 1)."""
    source = _logged("torch.max(out, 1)[0].std()")
    translated = translate_nnx(source)
    assert BEGIN in translated and "opt.step()" in translated, translated
    assert "`torch.max(out, 1)[0].std()` runs on JAX arrays there" in translated, translated
    would_be = translate_nnx(_logged("torch.max(out, 1)[0].mean()"))
    would_be = would_be.replace("[0].mean()", "[0].std()")
    assert would_be.count(".std()") == 1
    assert worst_rel(run_torch_loop(source), run_nnx_loop(source, would_be)) > 1e-3


class PairLoader:
    """New ``Batch(text=x, label=y)`` objects of ``batches()`` at each pass."""

    def __init__(self, array: Any) -> None:
        self.array = array

    def __iter__(self) -> Iterator[Batch]:
        for x, y in batches():
            yield Batch(self.array(x), self.array(y))


ATTRIBUTE_STEP = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(EPOCHS):
    for batch in loader:
        x = batch.text
        x += 1.0
        opt.zero_grad()
        out = model(batch.text)
        loss = ((out - batch.label) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""


def _pair_rel(source: str, translated: str) -> float:
    torch_run = run_torch_loop(source, names={"loader": PairLoader(_torch_tensor)})
    nnx_run = run_nnx_loop(source, translated, names={"loader": PairLoader(jnp.asarray)})
    assert len(torch_run.losses) == 36
    return worst_rel(torch_run, nnx_run)


def test_an_attribute_of_the_batch_changed_in_place_escapes() -> None:
    """``x = batch.text`` is the batch's tensor: ``x += 1.0`` changes what ``model(batch.text)``
    reads in torch, rebinds ``x`` alone in JAX. Before s40 ``_shared_names`` saw no memory in
    an attribute read and the step converted: that output trains on other numbers."""
    translated = translate_nnx(ATTRIBUTE_STEP)
    assert BEGIN in translated and "opt.step()" in translated, translated
    assert "`x += 1.0` changes `x` in place, which shares its memory" in translated, translated
    would_be = translate_nnx(ATTRIBUTE_STEP.replace("x += 1.0", "x.add_(1.0)"))
    assert BEGIN not in would_be and would_be.count("x.add_(1.0)") == 1, would_be
    assert _pair_rel(ATTRIBUTE_STEP, would_be.replace("x.add_(1.0)", "x += 1.0")) > 1e-3


@pytest.mark.parametrize(
    "change",
    [
        "        x = batch.text\n        x = x + 1.0\n",  # a new value
        "        n = batch.text.shape[0]\n        n += 1\n",  # a static read: no memory
    ],
)
def test_a_new_value_or_a_static_read_of_the_batch_converts_exactly(change: str) -> None:
    source = ATTRIBUTE_STEP.replace("        x = batch.text\n        x += 1.0\n", change)
    assert source != ATTRIBUTE_STEP
    translated = translate_nnx(source)
    assert BEGIN not in translated and "opt.update(model, grads)" in translated, translated
    rel = _pair_rel(source, translated)
    assert rel < EXACT, f"rel {rel:.3e}"


def _in_loss(term: str) -> str:
    """``PLAIN_LOOP`` with ``term`` added to its loss."""
    loss = "loss = ((out - y) ** 2).mean()"
    return PLAIN_LOOP.replace(loss, f"{loss} + {term}")


def test_a_namesake_on_an_item_of_an_array_function_in_the_loss_escapes() -> None:
    """The same quirk in the loss function: converted, JAX's ``std`` (n) trained on other
    numbers than torch's (n - 1)."""
    source = _in_loss("torch.max(out, 1)[0].std()")
    translated = translate_nnx(source)
    assert BEGIN in translated and "opt.step()" in translated, translated
    assert "`torch.max(out, 1)[0].std()` runs on JAX arrays there" in translated, translated
    would_be = translate_nnx(_in_loss("torch.max(out, 1)[0].mean()"))
    would_be = would_be.replace("[0].mean()", "[0].std()")
    assert would_be.count(".std()") == 1 and BEGIN not in would_be
    assert worst_rel(run_torch_loop(source), run_nnx_loop(source, would_be)) > 1e-3


@pytest.mark.parametrize("term", ["torch.max(out, 1)[0].mean()", "torch.max(out, 1)[0].sum()"])
def test_a_method_computing_the_same_on_an_item_in_the_loss_converts_exactly(term: str) -> None:
    translated, rel = translated_rel(_in_loss(term))
    assert BEGIN not in translated and "opt.update(model, grads)" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"
