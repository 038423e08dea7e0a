"""An injected optimizer with a decay mask (GPT-style rank-split groups and an lr written
through ``param_groups``): ``optax.inject_hyperparams`` reads any callable argument as a
schedule of the step count, so ``mask=lambda params: ...`` became ``mask(count)`` (no leaf
decayed: NNX 0.10 relative off torch over 36 updates, optax 0.2.8). The map's
``inject_static_args`` passes it through (``static_args=("mask",)``). The codemod's own output
is run against torch, float64, 36 updates."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential import nnx_loops
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import run_nnx_loop, run_torch_loop, translate_nnx, worst_rel
from tests.support import gpt_groups

SOURCE = (
    """\
import torch

model = make_model()
"""
    + gpt_groups("model", "0.5")
    + """\
opt = torch.optim.AdamW(optim_groups, lr=1e-2, betas=(0.9, 0.95), eps=1e-8)
for step in range(EPOCHS * len(loader)):
    x, y = loader[step % len(loader)]
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).sum()
    loss.backward()
    lr = 0.05 / (1 + step)
    for param_group in opt.param_groups:
        param_group["lr"] = lr
    opt.step()
    losses.append(loss.item())
"""
)
STATIC = 'optax.inject_hyperparams(optax.adamw, static_args=("mask",))('


def test_the_injected_masked_decay_matches_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        nnx_loops.NnxNet, "named_parameters", nnx_loops.torch_named_parameters, raising=False
    )
    translated = translate_nnx(SOURCE)
    assert BEGIN not in translated and STATIC in translated, translated
    torch_run = run_torch_loop(SOURCE)
    assert len(torch_run.losses) == 36
    rel = worst_rel(torch_run, run_nnx_loop(SOURCE, translated))
    assert rel < EXACT, f"rel {rel:.3e}\n{translated}"
    unmasked = translated.replace(', static_args=("mask",)', "")
    assert worst_rel(torch_run, run_nnx_loop(SOURCE, unmasked)) > 1e-3


PER_EPOCH = (
    """\
import torch

model = make_model()
"""
    + gpt_groups("model", "0.5")
    + """\
opt = torch.optim.AdamW(optim_groups, lr=1e-2, betas=(0.9, 0.95), eps=1e-8)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).sum()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    sched.step()
"""
)


def test_a_per_epoch_schedule_written_to_the_masked_optimizer_matches_torch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lr written per epoch injects the masked adamw (its mask passed through: before, the
    mask met the injected call unrecognised and the optimizer escaped)."""
    monkeypatch.setattr(
        nnx_loops.NnxNet, "named_parameters", nnx_loops.torch_named_parameters, raising=False
    )
    translated = translate_nnx(PER_EPOCH)
    assert BEGIN not in translated and STATIC in translated, translated
    torch_run = run_torch_loop(PER_EPOCH)
    rel = worst_rel(torch_run, run_nnx_loop(PER_EPOCH, translated))
    assert rel < EXACT, f"rel {rel:.3e}\n{translated}"
    unmasked = translated.replace(', static_args=("mask",)', "")
    assert worst_rel(torch_run, run_nnx_loop(PER_EPOCH, unmasked)) > 1e-3
