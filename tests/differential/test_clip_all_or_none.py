"""The clip calls before one optimizer's step fold into its chain together or not at all.

Measured before: ``clip_grad_value_`` folded into the NNX tx while the ``clip_grad_norm_``
beside it (its ``max_norm`` changes every epoch, so it is refused) was dropped from the
rendered step: relative error 41 against torch (float64, 36 updates), with no escape. Now a
refused clip escapes the step, the clips beside it escape with ``CLIP_BESIDE_ESCAPED``, and
each clip has its own escape record; the twins whose clips all fold match torch."""

from __future__ import annotations

import pytest

from tests.differential.harness import EXACT, translate
from tests.differential.nnx_loops import run_nnx_loop, translate_nnx, translated_rel
from tests.support import code_lines, renders_a_step

LOOP = """\
import torch

model = make_model()
cfg_max = 0.1
opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
for epoch in range(EPOCHS):
    {in_epoch}
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean() * 20
        loss.backward()
        {first}
        {second}
        opt.step()
        losses.append(loss.item())
"""
VALUE = "torch.nn.utils.clip_grad_value_(model.parameters(), 0.5)"
NORM = "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=cfg_max)"
VARYING = "cfg_max = 0.05 * (epoch + 1)"  # max_norm changes every epoch: the clip is refused
FIXED = "pass"
ORDERS = {"value_first": (VALUE, NORM), "norm_first": (NORM, VALUE)}


def loop(order: str, in_epoch: str, norm: str = NORM) -> str:
    first, second = ORDERS[order]
    first, second = (norm if c == NORM else c for c in (first, second))
    return LOOP.format(in_epoch=in_epoch, first=first, second=second)


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_a_refused_clip_beside_a_foldable_one_escapes_the_nnx_step(order: str) -> None:
    output = translate_nnx(loop(order, VARYING))
    assert not renders_a_step(output), output
    code = "\n".join(code_lines(output))
    assert "optax.clip(" not in code and "optax.stateless(" not in code, output
    assert "is not in the optimizer's tx" in output, output


def test_the_escaped_nnx_step_does_not_run_silently() -> None:
    """The escaped step stays torch code: on the NNX model it raises, it gives no numbers."""
    source = loop("value_first", VARYING)
    with pytest.raises(AttributeError):
        run_nnx_loop(source, translate_nnx(source))


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_two_foldable_clips_fold_in_order_and_match_torch(order: str) -> None:
    translated, rel = translated_rel(loop(order, FIXED))
    assert renders_a_step(translated) and "optax.clip(0.5)" in translated, translated
    value_at = translated.index("optax.clip(0.5)")
    norm_at = translated.index("optax.tree.norm(updates)")
    assert (value_at < norm_at) == (order == "value_first"), translated
    assert rel < EXACT, f"rel {rel:.3e}\n{translated}"


def test_a_clip_the_map_escapes_beside_a_foldable_one_escapes_the_nnx_step() -> None:
    """``norm_type=3.0`` has no stock transform: the value clip does not fold alone."""
    norm = "torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1, norm_type=3.0)"
    output = translate_nnx(loop("value_first", FIXED, norm))
    assert not renders_a_step(output), output
    assert "optax.clip(" not in "\n".join(code_lines(output)), output


def test_a_subset_clip_beside_a_foldable_one_escapes_the_nnx_step() -> None:
    norm = "torch.nn.utils.clip_grad_norm_(model.out.parameters(), 0.1)"
    output = translate_nnx(loop("value_first", FIXED, norm))
    assert not renders_a_step(output), output
    assert "optax.clip(" not in "\n".join(code_lines(output)), output


OPTAX = """\
import torch
opt = torch.optim.SGD(params, lr=0.01)
for k, batch in enumerate(batches):
    torch.nn.utils.clip_grad_value_(params, 0.5)
    torch.nn.utils.clip_grad_norm_(params, NORM)
    opt.step()
"""


@pytest.mark.parametrize("norm", ["0.1 * k", "0.1, norm_type=3.0"])
def test_optax_folds_no_clip_when_one_is_refused(norm: str) -> None:
    """Refused by the plan (the value varies) or by the map (no stock 3-norm transform)."""
    translation = translate(OPTAX.replace("NORM", norm))
    assert "opt = optax.sgd(learning_rate=0.01)" in translation.code, translation.code
    clips = {r.api.rsplit(".", 1)[-1]: r.reason for r in translation.escapes if "clip" in r.api}
    assert set(clips) == {"clip_grad_value_", "clip_grad_norm_"}, clips
    assert "`torch.nn.utils.clip_grad_norm_(params, " in clips["clip_grad_value_"], clips


def test_optax_folds_both_clips_when_both_translate() -> None:
    translation = translate(OPTAX.replace("NORM", "0.1"))
    assert "optax.chain(optax.clip(0.5), optax.stateless(" in translation.code, translation.code
    assert not [r for r in translation.escapes if "clip" in r.api]


REGION = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.5)
for epoch in range(EPOCHS):
    max_norm = 0.1 * (epoch + 1)
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), 0.5)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        opt.step()
"""


def test_each_unfolded_clip_of_an_escaped_step_has_its_own_record() -> None:
    translation = translate(REGION)
    apis = sorted(r.api for r in translation.escapes)
    assert apis == [
        "torch.nn.utils.clip_grad_norm_",
        "torch.nn.utils.clip_grad_value_",
        "torch.optim.Optimizer.step",
    ], [(r.api, r.reason) for r in translation.escapes]
    assert "ESCAPE-BEGIN torch.optim.Optimizer.step, torch.nn.utils.clip_grad_value_" in (
        translation.code
    )


OTHER_MODEL = """\
import torch

G = torch.nn.Linear(3, 1)
D = torch.nn.Linear(3, 1)
opt = torch.optim.SGD(G.parameters(), lr=0.1)
for x, y in loader:
    opt.zero_grad()
    loss = ((G(x) - y) ** 2).mean()
    loss.backward()
    torch.nn.utils.clip_grad_value_(G.parameters(), 0.5)
    torch.nn.utils.clip_grad_norm_(D.parameters(), 1.0)
    opt.step()
"""


def test_a_clip_of_another_model_escapes_with_its_own_finding() -> None:
    translation = translate(OTHER_MODEL)
    reasons = {r.api.rsplit(".", 1)[-1]: r for r in translation.escapes}
    norm = reasons["clip_grad_norm_"]
    assert "`D` is not provably `G`" in norm.reason, norm.reason
    assert "optax.masked" not in norm.suggestion, norm.suggestion
    assert "`torch.nn.utils.clip_grad_norm_(D.parameters(), 1.0)`" in (
        reasons["clip_grad_value_"].reason
    )
    assert "opt = optax.sgd(learning_rate=0.1)" in translation.code, translation.code


def test_a_clip_of_another_model_escapes_the_nnx_step() -> None:
    output = translate_nnx(OTHER_MODEL.replace("torch.nn.Linear(3, 1)", "make_model()"))
    assert not renders_a_step(output), output
    assert "optax.clip(" not in "\n".join(code_lines(output)), output


def test_a_second_run_over_the_escaped_step_changes_nothing() -> None:
    once = translate_nnx(loop("value_first", VARYING))
    assert translate_nnx(once) == once
