"""Manual learning-rate writes (``for g in opt.param_groups: g["lr"] = lr``) translated by
``optimizer.TorchToNNX`` (``optax.inject_hyperparams`` and a write to the optimizer's state)
match PyTorch when run: every recorded loss and the final parameters, float64, 36 updates."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import (
    run_nnx_loop,
    run_torch_loop,
    translate_nnx,
    translated_rel,
    worst_rel,
)

NANOGPT_WARMUP_COSINE = """\
import math
import torch

model = make_model()
opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1)
WARMUP, TOTAL, MAX_LR, MIN_LR = 5, 30, 2e-2, 1e-3


def get_lr(it):
    if it < WARMUP:
        return MAX_LR * (it + 1) / WARMUP
    if it > TOTAL:
        return MIN_LR
    ratio = (it - WARMUP) / (TOTAL - WARMUP)
    return MIN_LR + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (MAX_LR - MIN_LR)


it = 0
for epoch in range(EPOCHS):
    for x, y in loader:
        lr = get_lr(it)
        for param_group in opt.param_groups:
            param_group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        it += 1
"""

PER_EPOCH_DECAY_ONE_LINE = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
for epoch in range(EPOCHS):
    for g in opt.param_groups: g['lr'] = 0.1 * 0.5 ** epoch
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""

WRITE_AFTER_THE_STEP = """\
import torch

model = make_model()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
step = 0
for epoch in range(EPOCHS):
    for x, y in loader:
        optimizer.zero_grad()
        out = model(x)
        loss = ((out - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        step += 1
        if step % 7 == 0:
            for group in optimizer.param_groups:
                group["lr"] = 3e-2 / (1 + step)
        losses.append(loss.item())
"""

FIRST_GROUP_WRITE_AND_READS = """\
import torch

model = make_model()
opt = torch.optim.RMSprop(model.parameters(), lr=1e-2, alpha=0.9)
for epoch in range(EPOCHS):
    opt.param_groups[0]["lr"] = 1e-2 / (1 + epoch)  # decay once per epoch
    for i, (x, y) in enumerate(loader):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        if i == 5:
            opt.param_groups[0]["lr"] = 0.5 * 1e-2 / (1 + epoch)
        losses.append(loss.item())
        losses.append(opt.param_groups[0]["lr"])
"""

INTEGER_INITIAL_LR = """\
import torch

model = make_model()
base_lr = 1
opt = torch.optim.SGD(model.parameters(), lr=base_lr)
for epoch in range(EPOCHS):
    for g in opt.param_groups:
        g["lr"] = 0.05 / (epoch + 1)
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""

LOOPS = {
    "integer_initial_lr": INTEGER_INITIAL_LR,
    "first_group_write_and_reads": FIRST_GROUP_WRITE_AND_READS,
    "nanogpt_warmup_cosine": NANOGPT_WARMUP_COSINE,
    "per_epoch_decay_one_line": PER_EPOCH_DECAY_ONE_LINE,
    "write_after_the_step_every_seventh": WRITE_AFTER_THE_STEP,
}


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_the_translated_lr_writes_match_torch(name: str) -> None:
    source = LOOPS[name]
    translated, rel = translated_rel(source)
    assert BEGIN not in translated, translated
    assert "inject_hyperparams" in translated, translated
    assert rel < EXACT, f"{name}: rel {rel:.3e}"


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_a_second_run_leaves_the_lr_writes_as_they_are(name: str) -> None:
    once = translate_nnx(LOOPS[name])
    assert translate_nnx(once) == once


def test_the_harness_sees_a_dropped_lr_write() -> None:
    translated = translate_nnx(NANOGPT_WARMUP_COSINE)
    dropped = translated.replace('opt.opt_state.hyperparams["learning_rate"][...] = lr', "pass")
    assert dropped != translated
    torch_run = run_torch_loop(NANOGPT_WARMUP_COSINE)
    rel = worst_rel(torch_run, run_nnx_loop(NANOGPT_WARMUP_COSINE, dropped))
    assert rel > 1e-6
