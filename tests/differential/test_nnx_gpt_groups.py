"""GPT-style param groups in a whole NNX loop (36 updates, float64): the decay / no-decay
groups split by ``p.dim() >= 2`` from ``model.named_parameters()``, AdamW given
``**extra_args`` of kernel options only, and the clip's returned norm recorded. torch's script
as written against the NNX codemod's own translation: ``nnx.Optimizer(model, <tx with the
mask>, wrt=nnx.Param)``; the recorded values and the final parameters are compared."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from flax import nnx

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import (
    NnxNet,
    run_nnx_loop,
    run_torch_loop,
    translated_rel,
    worst_rel,
)
from tests.support import gpt_groups

GROUPS = (
    "import torch\n\nmodel = make_model()\n"
    + gpt_groups("model", "0.5")
    + """\
use_fused = False
extra_args = dict(fused=True) if use_fused else dict()
opt = torch.optim.AdamW(optim_groups, lr=0.05, betas=(0.9, 0.95), **extra_args)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad(set_to_none=True)
        loss = ((model(x) - y) ** 2).sum()
        loss.backward()
        CLIP
        opt.step()
        losses.append(RECORDED)
"""
)

CASES = {
    "loss_recorded": GROUPS.replace("        CLIP\n", "").replace("RECORDED", "loss.item()"),
    "clip_norm_recorded": GROUPS.replace(
        "CLIP", "norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)"
    ).replace("RECORDED", "norm.item()"),
}


def _named_copies(model: NnxNet) -> Iterator[tuple[str, torch.Tensor]]:
    """Torch copies of the NNX parameters, for the group lists the translation keeps (they
    are built, measured and not used by the nnx.Optimizer)."""
    for path, value in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        yield ".".join(map(str, path)), torch.tensor(np.array(value[...]))


@pytest.fixture(autouse=True)
def _leftover_group_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NnxNet, "named_parameters", _named_copies, raising=False)


MASK = "mask=lambda params: jax.tree_util.tree_map(lambda p: p.ndim >= 2, params)"


@pytest.mark.parametrize("name", sorted(CASES))
def test_rank_split_groups_train_as_torch_does(name: str) -> None:
    translated, rel = translated_rel(CASES[name], exact=True)
    assert BEGIN not in translated and "opt = nnx.Optimizer(model, " in translated, translated
    assert MASK in translated and "extra_args" not in translated.split("opt = ")[1], translated
    assert rel < EXACT, f"rel {rel:.3e}\n{translated}"


def test_the_mask_matters() -> None:
    """Without the mask (every leaf decayed) the run differs: the case tests the mask."""
    source = CASES["loss_recorded"]
    translated, _ = translated_rel(source, exact=True)
    unmasked = translated.replace(MASK, "mask=None")
    assert unmasked != translated
    assert worst_rel(run_torch_loop(source), run_nnx_loop(source, unmasked)) > 1e-3


def test_the_clip_acts_at_some_updates() -> None:
    """torch's recorded norm exceeds max_norm (10) at some of the 36 updates, not
    at others: the clip acts, and a norm taken after clipping would differ."""
    norms = run_torch_loop(CASES["clip_norm_recorded"]).losses
    assert len(norms) == 36 and max(norms) > 10.0 > min(norms)
