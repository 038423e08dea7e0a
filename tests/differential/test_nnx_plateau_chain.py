"""ReduceLROnPlateau stepped once per epoch on an optimizer whose tx is a chain (weight decay,
gradient clipping at its head), translated by ``optimizer.TorchToNNX`` with the lr written to
the injected element's state (``opt.opt_state[i]``), matches PyTorch when run: every
recorded loss and the final parameters, float64, 36 updates over 12 epochs of 3 batches; each
loop's torch lr is checked to have been reduced at least twice (else the test proves
nothing), and the lr read through ``opt.param_groups[0]["lr"]`` before the loop and after
each ``sched.step(val_loss)`` (< 1e-12 relative)."""

from __future__ import annotations

import numpy as np
import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import (
    run_nnx_loop,
    run_torch_loop,
    translate_nnx,
    worst_rel,
)
from tests.differential.test_nnx_plateau import torch_lrs

CHAINED_PLATEAU_LOOP = """\
import torch

model = make_model()
opt = torch.optim.{optimizer}
sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience={patience})
losses.append(opt.param_groups[0]["lr"])
for epoch in range(EPOCHS * 4):
    for i, (x, y) in enumerate(loader):
        if i >= 3:
            break
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        {clip}
        opt.step()
        losses.append(loss.item())
    val_loss = 0.0
    with torch.no_grad():
        for x, y in loader[3:6]:
            val_loss += ((model(x) - y) ** 2).mean().item()
    sched.step(val_loss)
    losses.append(opt.param_groups[0]["lr"])
"""
CLIP = "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)"
UNCLIPPED_PLATEAU_LOOP = CHAINED_PLATEAU_LOOP.replace("        {clip}\n", "")

LOOPS = {
    "adam_weight_decay_and_clipping": CHAINED_PLATEAU_LOOP.format(
        optimizer="Adam(model.parameters(), lr=0.05, weight_decay=1e-2)", patience=0, clip=CLIP
    ),
    "adam_weight_decay": UNCLIPPED_PLATEAU_LOOP.format(
        optimizer="Adam(model.parameters(), lr=0.05, weight_decay=1e-2)", patience=0
    ),
    "sgd_clipping": CHAINED_PLATEAU_LOOP.format(
        optimizer="SGD(model.parameters(), lr=0.2, momentum=0.9)", patience=1, clip=CLIP
    ),
}
SEVERAL_REDUCTIONS = 0.25  # factor 0.5 twice
LR_READS_EXACT = 1e-12
BATCHES_PER_EPOCH = 3


def lr_reads(recorded: list[float]) -> np.ndarray:
    """The lrs the loop records: one before it, one after each epoch's 3 losses."""
    return np.asarray([v for i, v in enumerate(recorded) if i % (BATCHES_PER_EPOCH + 1) == 0])


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_the_plateau_of_a_chained_optimizer_matches_torch(name: str) -> None:
    first, last = torch_lrs(LOOPS[name])
    assert last <= first * SEVERAL_REDUCTIONS, f"{name}: torch reduced the lr less than twice"
    translated = translate_nnx(LOOPS[name], exact=True)
    assert BEGIN not in translated and "param_groups" not in translated, translated
    assert "opt.opt_state[" in translated and ".scale" in translated, translated
    torch_run = run_torch_loop(LOOPS[name])
    nnx_run = run_nnx_loop(LOOPS[name], translated)
    expected, got = lr_reads(torch_run.losses), lr_reads(nnx_run.losses)
    assert len(set(expected.tolist())) > 2, f"{name}: fewer than two reductions read"
    lr_rel = float(np.max(np.abs(expected - got) / np.abs(expected)))
    assert lr_rel < LR_READS_EXACT, f"{name}: lr rel {lr_rel:.3e}"
    rel = worst_rel(torch_run, nnx_run)
    assert rel < EXACT, f"{name}: rel {rel:.3e}"


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_a_second_run_leaves_the_chained_plateau_as_it_is(name: str) -> None:
    once = translate_nnx(LOOPS[name])
    assert translate_nnx(once) == once
