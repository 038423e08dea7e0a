"""``clip_grad_norm_`` with ``norm_type`` 1 and inf, and ``clip_grad_value_``, in stock mode:
torch's total norm of every gradient as one vector is ``optax.tree.norm(updates, ord=1)`` /
``ord=jnp.inf`` (sum / max of the absolute values), so the stock translation writes torch's
formula with it. Run against torch in float64 (36 NNX updates, recording the norm
``clip_grad_norm_`` returns; 60 optax updates), in cases where the clip acts; the trap twins
(another order, a non-literal ``math.inf``) escape."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.differential.harness import EXACT, STEPS, measure_training, training_module, translate
from tests.differential.nnx_loops import (
    run_torch_loop,
    translate_nnx,
    translated_rel,
    worst_rel,
)
from tests.support import renders_a_step

NORM_LOOP = """\
import math
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).sum()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM, norm_type=NORM_TYPE)
        opt.step()
        losses.append(norm.item())
"""
# norm_type as written -> (max_norm, the ord the translation writes)
NORM_TYPES = {
    "1": (2.0, "ord=1"),
    "1.0": (2.0, "ord=1"),
    "float('inf')": (0.3, "ord=jnp.inf"),
    "'inf'": (0.3, "ord=jnp.inf"),
}


def norm_loop(norm_type: str) -> str:
    max_norm = NORM_TYPES[norm_type][0]
    return NORM_LOOP.replace("MAX_NORM", repr(max_norm)).replace("NORM_TYPE", norm_type)


@pytest.mark.parametrize("norm_type", sorted(NORM_TYPES))
def test_nnx_norm_types_one_and_inf_match_torch(norm_type: str) -> None:
    translated, rel = translated_rel(norm_loop(norm_type))
    order = NORM_TYPES[norm_type][1]
    assert renders_a_step(translated), translated
    assert f"optax.tree.norm(updates, {order})" in translated, translated
    assert f"norm = optax.tree.norm(grads, {order})" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}\n{translated}"


@pytest.mark.parametrize("norm_type", sorted(NORM_TYPES))
def test_the_nnx_norm_cases_clip(norm_type: str) -> None:
    """The recorded norms exceed max_norm at some updates and not at others."""
    norms = np.asarray(run_torch_loop(norm_loop(norm_type)).losses)
    max_norm = NORM_TYPES[norm_type][0]
    assert norms.max() > max_norm, norms


def test_a_norm_type_written_as_math_inf_escapes_the_nnx_step() -> None:
    output = translate_nnx(norm_loop("1").replace("norm_type=1", "norm_type=math.inf"))
    assert not renders_a_step(output), output
    assert "is not a literal" in output, output


VALUE_LOOP = """\
import torch

model = make_model()
opt = torch.optim.Adam(model.parameters(), lr=0.05)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).sum()
        loss.backward()
        CLIP
        opt.step()
        losses.append(loss.item())
"""
VALUE_CLIP = "torch.nn.utils.clip_grad_value_(model.parameters(), clip_value=0.2)"


def test_nnx_clip_grad_value_matches_torch() -> None:
    translated, rel = translated_rel(VALUE_LOOP.replace("CLIP", VALUE_CLIP))
    assert renders_a_step(translated) and "optax.clip(0.2)" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}\n{translated}"


def test_the_nnx_value_case_clips() -> None:
    """Without the clip, torch ends elsewhere: the clip acts."""
    clipped = run_torch_loop(VALUE_LOOP.replace("CLIP", VALUE_CLIP))
    unclipped = run_torch_loop(VALUE_LOOP.replace("CLIP", "pass"))
    assert worst_rel(clipped, unclipped) > 1e-3


def clip_norm(max_norm: float, norm_type: float, norms: list[float]):  # type: ignore[no-untyped-def]
    def clip(params: list[torch.Tensor]) -> None:
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)))

    return clip


@pytest.mark.parametrize(
    "written,norm_type,max_norm",
    [("1", 1.0, 0.5), ("float('inf')", float("inf"), 0.1)],
    ids=["one", "inf"],
)
def test_optax_norm_types_one_and_inf_match_torch(
    written: str, norm_type: float, max_norm: float
) -> None:
    norms: list[float] = []
    clip = f"torch.nn.utils.clip_grad_norm_(params, {max_norm}, norm_type={written})"
    rel, translation = measure_training(
        training_module("torch.optim.SGD(params, lr=0.1, momentum=0.9)", clip=clip),
        before_step=clip_norm(max_norm, norm_type, norms),
    )
    assert not [r for r in translation.escapes if "clip" in r.api], translation.code
    assert "optax.tree.norm(updates, ord=" in translation.code, translation.code
    assert len(norms) == STEPS and max(norms) > max_norm, norms
    assert rel < EXACT, f"rel {rel:.3e}\n{translation.code}"


def test_optax_norm_type_written_as_math_inf_escapes() -> None:
    source = training_module(
        "torch.optim.SGD(params, lr=0.1)",
        clip="torch.nn.utils.clip_grad_norm_(params, 0.1, norm_type=math.inf)",
        prelude="import math",
    )
    translation = translate(source)
    clips = [r for r in translation.escapes if "clip" in r.api]
    assert clips and "is not a literal" in clips[0].reason, translation.code
