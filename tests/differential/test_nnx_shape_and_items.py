"""Torch's shape reads and device moves on items of the batch, written in and around the NNX
step (s33): ``y.size()`` -> ``y.shape`` (the map's ``bare_exact``: torch.Size is a tuple of the
same ints, ``.view(y.size())`` -> ``.reshape(y.shape)``, Shawn1993's accuracy line), an
``any_array`` template on an item of the batch at literal indices (``batch[0].size(0)`` ->
``batch[0].shape[0]``, moco's ``images[0].size(0)``) and ``x.cuda(device, non_blocking=True)``
-> ``x`` (moco's ``images[0].cuda(args.gpu, non_blocking=True)``). Before, each step escaped.
The codemod's own output run against torch (float64, 36 updates, recorded values); ``cuda``
runs as the identity on torch's side (no GPU here: the same numbers on any device). Twins
that are not exact keep the escape, naming the call."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.differential.test_nnx_array_functions import BATCH_LOOP, _loop


@pytest.fixture(autouse=True)
def cuda_is_the_identity(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``torch.Tensor.cuda`` returns the tensor: torch's numbers without a GPU."""
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *args, **kwargs: self)
    yield


CONVERTED = {
    "view_to_the_batch_size_after_the_update": (
        _loop(after="losses.append(float((out.view(-1).view(y.size()).data == y).sum()))"),
        ["out.reshape(-1).reshape(y.shape)"],
    ),
    "size_compared_and_indexed_after_the_update": (
        _loop(
            after="losses.append(float(out.size() == y.size()) + out.size()[1]"
            " + float(out.size() == [1, 2]))"
        ),
        ["float(out.shape == y.shape) + out.shape[1] + float(out.shape == [1, 2])"],
    ),
    "size_of_the_batch_inside_the_loss_function": (
        _loop(loss="((out - y.view(y.size())) ** 2).mean()"),
        ["((out - y.reshape(y.shape)) ** 2).mean()"],
    ),
    "size_and_cuda_of_items_of_the_batch": (
        _loop(
            prefix="x, y = batch[0].cuda(0, non_blocking=True), batch[1].cuda(dev)",
            after="losses.append(float(batch[0].size(0) * batch[1].size(1)))",
            source=BATCH_LOOP.replace("model = make_model()", "dev = 0\nmodel = make_model()"),
        ),
        ["x, y = batch[0], batch[1]\n", "float(batch[0].shape[0] * batch[1].shape[1])"],
    ),
    # moco's `images[0] = images[0].cuda(args.gpu, non_blocking=True)` under `if args.gpu is not
    # None:` before the step: the item's own values, no change of the batch (left as written:
    # the statements before a step are not rewritten; `gpu` is None here, as on a CPU)
    "item_moved_back_into_the_batch": (
        _loop(
            prefix="batch = list(batch)\n"
            "        if gpu is not None:\n"
            "            batch[0] = batch[0].cuda(gpu, non_blocking=True)\n"
            "            batch[1] = batch[1].cuda()\n"
            "        x, y = batch[0], batch[1]",
            after="losses.append(float(batch[0].size(0)))",
            source=BATCH_LOOP.replace("model = make_model()", "gpu = None\nmodel = make_model()"),
        ),
        ["float(batch[0].shape[0])"],
    ),
}


@pytest.mark.parametrize("case", sorted(CONVERTED))
def test_shapes_and_moves_convert_exactly(case: str) -> None:
    source, written = CONVERTED[case]
    translated, rel = translated_rel(source)
    assert BEGIN not in translated and "opt.update(model, grads)" in translated, translated
    for text in written:
        assert text in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"
    assert translate_nnx(translated) == translated


ESCAPED = {
    # torch.Size's own method: a tuple has none
    "numel_of_a_size": (
        _loop(after="losses.append(float(out.size().numel()))"),
        "`out.size().numel()`",
    ),
    # an index computed at run time: not shown to be an item of the batch
    "size_of_an_item_at_a_computed_index": (
        _loop(
            prefix="k = 0", after="losses.append(float(batch[k].size(0)))", source=BATCH_LOOP
        ).replace("out = model(x)", "x, y = batch[0], batch[1]\n        out = model(x)"),
        "`batch[k].size(0)`",
    ),
    # the device is computed by a call: not read as written
    "cuda_of_a_computed_device": (
        _loop(prefix="y = y.cuda(pick())"),
        "`y.cuda(pick())`",
    ),
    # another item's values written into the batch (a tensor batch changes in torch)
    "other_item_moved_into_the_batch": (
        _loop(
            prefix="batch[0] = batch[1].cuda()\n        x, y = batch[0], batch[1]",
            after="keep = batch[0]\n        losses.append(float(keep.sum()))",
            source=BATCH_LOOP,
        ),
        "`batch[0] = batch[1].cuda()` changes `batch` in place",
    ),
    # a view that is not the item's own values in its shape (`t()`: transposed)
    "transposed_item_written_back": (
        _loop(
            prefix="batch[0] = batch[0].t().t()\n        x, y = batch[0], batch[1]",
            source=BATCH_LOOP,
        ),
        "`batch[0] = batch[0].t().t()` changes `batch` in place",
    ),
    "cuda_with_a_memory_format": (
        _loop(prefix="y = y.cuda(memory_format=torch.preserve_format)"),
        "`y.cuda(memory_format=torch.preserve_format)`",
    ),
}


@pytest.mark.parametrize("case", sorted(ESCAPED))
def test_forms_that_are_not_exact_escape(case: str) -> None:
    source, said = ESCAPED[case]
    translated = translate_nnx(source)
    assert BEGIN in translated and said in translated, translated
