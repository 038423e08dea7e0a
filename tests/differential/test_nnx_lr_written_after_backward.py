"""build-nanogpt's order: the gradient clipped (its norm recorded), then ``lr = get_lr(step)``
and ``for g in opt.param_groups: g["lr"] = lr``, then ``opt.step()``. The NNX step computes
the gradient, runs the lr function and writes the stored lr of the chain's injected element,
then takes the norm and updates: torch reads the lr at ``step()``, so writing it anywhere
before the update is exact. The codemod's own output is run against torch (float64, 36
updates, the losses, recorded norms and lrs, and the parameters compared); the twins keep
their escape."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.nnx_loops import run_nnx_loop, run_torch_loop, translate_nnx, worst_rel
from tests.support import renders_a_step

GPT_ORDER = """\
import math
import torch

model = make_model()
opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
max_lr = 2e-2
min_lr = max_lr * 0.1
warmup_steps = 5
max_steps = 30


def get_lr(it):
    if it < warmup_steps:
        return max_lr * (it + 1) / warmup_steps
    if it > max_steps:
        return min_lr
    decay_ratio = (it - warmup_steps) / (max_steps - warmup_steps)
    assert 0 <= decay_ratio <= 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (max_lr - min_lr)


for step in range(EPOCHS * len(loader)):
    x, y = loader[step % len(loader)]
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).sum()
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    lr = get_lr(step)
    for param_group in opt.param_groups:
        param_group["lr"] = lr
    opt.step()
    losses.append(loss.item())
    losses.append(norm.item())
    losses.append(lr)
"""

WRITTEN = 'opt.opt_state[1].hyperparams["learning_rate"][...] = lr'
# torch clips by max_norm / (norm + 1e-6), stock optax by max_norm / norm: the map's tolerance
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def torch_run():
    return run_torch_loop(GPT_ORDER)


def test_the_gpt_order_matches_torch(torch_run) -> None:
    translated = translate_nnx(GPT_ORDER)
    assert BEGIN not in translated and WRITTEN in translated, translated
    rel = worst_rel(torch_run, run_nnx_loop(GPT_ORDER, translated))
    assert rel < TOLERANCE, f"rel {rel:.3e}\n{translated}"


def test_the_case_discriminates(torch_run) -> None:
    """The lr changes, the clip acts at some updates, and a translation that forgot the write
    differs."""
    assert len(torch_run.losses) == 3 * 36
    assert len(set(torch_run.losses[2::3])) > 10 and max(torch_run.losses[1::3]) > 1.0
    translated = translate_nnx(GPT_ORDER).replace(WRITTEN, "pass")
    assert worst_rel(torch_run, run_nnx_loop(GPT_ORDER, translated)) > 1e-3


TWINS = {
    "second group written": (
        '    for param_group in opt.param_groups:\n        param_group["lr"] = lr\n',
        '    opt.param_groups[1]["lr"] = lr\n',
    ),
    "lr of a value the loss computed": ("lr = get_lr(step)", "lr = get_lr(loss)"),
    "lr of a name not a range counter": ("lr = get_lr(step)", "lr = get_lr(max_steps)"),
    "lr function reading a module list": (
        "    if it < warmup_steps:\n",
        "    if it < len(history):\n",
    ),
    "lr function changing a global": (
        "    if it < warmup_steps:\n",
        "    global max_lr\n    if it < warmup_steps:\n",
    ),
    "lr function bound twice": ("max_steps = 30\n", "max_steps = 30\nget_lr = print\n"),
    "constant bound twice": ("max_steps = 30\n", "max_steps = 30\nmax_lr = 1e-2\n"),
    "lr function reading the model": (
        "    if it < warmup_steps:\n",
        "    if it < model.weight.grad.sum():\n",
    ),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_twins_keep_the_step_escaped(name: str) -> None:
    old, new = TWINS[name]
    assert old in GPT_ORDER
    source = "history = []\n" + GPT_ORDER.replace(old, new)
    translated = translate_nnx(source)
    assert not renders_a_step(translated) and BEGIN in translated, translated


# the lr written every third update only (the stored lr persists until the next write, as
# torch's param group's does): before the forward pass the write is rewritten in place; between
# the backward pass and the step the `if` runs after the gradient, before the update
EVERY_THIRD = "    if step % 3 == 0:\n        for param_group in opt.param_groups:\n"
EVERY_THIRD_BEFORE = (
    GPT_ORDER.replace(
        '    for param_group in opt.param_groups:\n        param_group["lr"] = lr\n', ""
    )
    .replace("    lr = get_lr(step)\n", "")
    .replace(
        "    opt.zero_grad()\n",
        "    lr = get_lr(step)\n"
        + EVERY_THIRD
        + '            param_group["lr"] = lr\n    opt.zero_grad()\n',
    )
)
EVERY_THIRD_AFTER = GPT_ORDER.replace(
    "    for param_group in opt.param_groups:\n        param_group",
    EVERY_THIRD + "            param_group",
)


@pytest.mark.parametrize("source", [EVERY_THIRD_BEFORE, EVERY_THIRD_AFTER])
def test_an_lr_written_every_third_update_matches_torch(source: str) -> None:
    assert source != GPT_ORDER
    translated = translate_nnx(source)
    assert BEGIN not in translated and "if step % 3 == 0:\n        " + WRITTEN in translated
    torch_run = run_torch_loop(source)
    rel = worst_rel(torch_run, run_nnx_loop(source, translated))
    assert rel < TOLERANCE, f"rel {rel:.3e}\n{translated}"
    every_update = translated.replace("if step % 3 == 0:", "if True:")
    assert worst_rel(torch_run, run_nnx_loop(source, every_update)) > 1e-3


def test_an_lr_written_under_an_if_with_an_else_escapes() -> None:
    source = EVERY_THIRD_AFTER.replace(
        "    opt.step()\n", "    else:\n        pass\n    opt.step()\n"
    )
    translated = translate_nnx(source)
    assert not renders_a_step(translated) and BEGIN in translated, translated
