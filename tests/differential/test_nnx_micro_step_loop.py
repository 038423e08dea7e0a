"""nanoGPT's micro-step loop (issue 13): ``for micro_step in range(k):`` holding the forward
and backward passes, the step after it. Torch sums the k backward passes in .grad and steps
once; ``optimizer.TorchToNNX`` renders a running sum of the k gradients
(``jax.tree.map(jnp.add, ...)``) and one update. The clip under ``if grad_clip != 0.0:`` (a
module constant, always true) folds into the chain; the lr written through ``param_groups``
is written to the injected chain element. Its own output matches PyTorch when run (losses,
the last micro step's logits and final parameters, float64, 36 updates)."""

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
from tests.support import stock_clip

GPTLIKE = """\
import math
import torch

learning_rate = 0.05
warmup_iters = 4
lr_decay_iters = 30
min_lr = 0.005
grad_clip = 0.5
gradient_accumulation_steps = 3
max_iters = 35


def get_lr(it):
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (learning_rate - min_lr)


def train(model, get_batch):
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, betas=(0.9, 0.95), weight_decay=0.1)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    iter_num = 0
    X, Y = get_batch('train')
    while True:
        lr = get_lr(iter_num)
        for param_group in optimizer.param_groups:
            param_group['lr'] = lr
        for micro_step in range(gradient_accumulation_steps):
            logits = model(X)
            loss = ((logits - Y) ** 2).mean()
            loss = loss / gradient_accumulation_steps
            X, Y = get_batch('train')
            scaler.scale(loss).backward()
        if grad_clip != 0.0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item() * gradient_accumulation_steps)
        losses.append(logits.sum().item())
        iter_num += 1
        if iter_num > max_iters:
            break


position = [0]


def get_batch(split):
    batch = loader[position[0] % len(loader)]
    position[0] += 1
    return batch


train(make_model(), get_batch)
"""

PLAIN = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(EPOCHS):
    for i in range(0, len(loader), 2):
        opt.zero_grad()
        for micro in range(2):
            x, y = loader[i + micro]
            out = model(x)
            loss = ((out - y) ** 2).mean() / 2
            loss.backward()
        opt.step()
        losses.append(loss.item())
"""

# --exact: torch's clip scales by max_norm / (norm + 1e-6) (the map's clip tolerance, 1e-6)
EXACT_CLIP = {"exact": True}
LOOPS = {
    "nanogpt_micro_steps_clip_and_lr_exact": (GPTLIKE, EXACT_CLIP),
    "plain_micro_steps_sgd": (PLAIN, {}),
}


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_the_translated_micro_step_loop_matches_torch(name: str) -> None:
    source, options = LOOPS[name]
    translated, rel = translated_rel(source, **options)
    assert BEGIN not in translated and ".backward(" not in translated, translated
    assert "jax.tree.map(jnp.add, grads_sum, grads)" in translated, translated
    assert rel < EXACT, f"{name}: rel {rel:.3e}"


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_a_second_run_changes_nothing(name: str) -> None:
    source, options = LOOPS[name]
    once = translate_nnx(source, **options)
    assert translate_nnx(once, **options) == once


def test_the_clip_and_the_written_lr_are_in_the_chain() -> None:
    translated = translate_nnx(GPTLIKE)
    # grad_clip is read once, where the optimizer is built (the default of the lambda)
    assert f"optax.chain({stock_clip('grad_clip')}, optax.inject_hyperparams(" in translated
    assert 'optimizer.opt_state[1].hyperparams["learning_rate"][...] = lr' in translated


def test_the_harness_sees_the_sum_left_out() -> None:
    """Only the last micro step's gradients applied is seen: the sum is what the match
    depends on."""
    translated = translate_nnx(GPTLIKE, **EXACT_CLIP)
    wrong = translated.replace("jax.tree.map(jnp.add, grads_sum, grads)", "grads")
    assert wrong != translated
    rel = worst_rel(run_torch_loop(GPTLIKE), run_nnx_loop(GPTLIKE, wrong))
    assert rel > 1e-3


TWINS = {
    "a_break_in_the_micro_loop": (
        "            scaler.scale(loss).backward()\n",
        "            scaler.scale(loss).backward()\n            if micro_step == 1:\n"
        "                break\n",
    ),
    "a_break_before_the_backward": (
        "            X, Y = get_batch('train')\n",
        "            X, Y = get_batch('train')\n            if micro_step == 1:\n"
        "                break\n",
    ),
    "a_zero_grad_in_the_micro_loop": (
        "            logits = model(X)\n",
        "            optimizer.zero_grad()\n            logits = model(X)\n",
    ),
    "a_step_in_the_micro_loop": (
        "            scaler.scale(loss).backward()\n",
        "            scaler.scale(loss).backward()\n            scaler.step(optimizer)\n",
    ),
    "the_loss_recorded_after_a_backward": (
        "            scaler.scale(loss).backward()\n",
        "            scaler.scale(loss).backward()\n            losses.append(loss.item())\n",
    ),
    "a_gradient_read_in_the_micro_loop": (
        "            X, Y = get_batch('train')\n",
        "            X, Y = get_batch('train')\n"
        "            norms = [p.grad for p in model.parameters()]\n",
    ),
    "a_micro_loop_over_batches_of_unknown_length": (
        "        for micro_step in range(gradient_accumulation_steps):\n",
        "        for micro_step in get_batch('micro'):\n",
    ),
    "a_micro_loop_over_a_parameter_count": (
        "def train(model, get_batch):\n",
        "def train(model, get_batch, gradient_accumulation_steps):\n",
    ),
    "a_micro_loop_that_may_run_zero_times": (
        "gradient_accumulation_steps = 3\n",
        "gradient_accumulation_steps = 0\n",
    ),
    "a_micro_loop_with_an_else": (
        "            scaler.scale(loss).backward()\n",
        "            scaler.scale(loss).backward()\n        else:\n            pass\n",
    ),
    "a_clip_under_a_false_constant": ("grad_clip = 0.5\n", "grad_clip = 0.0\n"),
    "a_clip_constant_rebound_in_a_function": (
        "def get_lr(it):\n",
        "def set_clip():\n    global grad_clip\n    grad_clip = 0.0\n\n\ndef get_lr(it):\n",
    ),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_a_trap_twin_of_the_micro_step_loop_escapes(name: str) -> None:
    old, new = TWINS[name]
    assert old in GPTLIKE
    translated = translate_nnx(GPTLIKE.replace(old, new, 1))
    assert BEGIN in translated and "scaler.step(optimizer)" in translated, translated
    assert "grads_sum = None" not in translated, translated


# build-nanogpt: the micro-step count is integer arithmetic on module constants, the loop in
# the module's own code, the loss summed in `loss_accum` started before the loop
COMPUTED_COUNT = """\
import torch

total_batch_size = 12
B = 2
T = 3
assert total_batch_size % (B * T) == 0
grad_accum_steps = total_batch_size // (B * T)
model = make_model()
opt = torch.optim.AdamW(model.parameters(), lr=0.01, betas=(0.9, 0.95), weight_decay=0.1)
for epoch in range(EPOCHS * 2):
    for i in range(0, len(loader), 2):
        opt.zero_grad()
        loss_accum = 0.0
        for micro_step in range(grad_accum_steps):
            x, y = loader[i + micro_step]
            out = model(x)
            loss = ((out - y) ** 2).mean() / grad_accum_steps
            loss_accum += loss.detach()
            loss.backward()
        opt.step()
        losses.append(loss_accum.item())
"""


def test_a_computed_count_and_a_loss_sum_match_torch() -> None:
    """36 updates of 2 micro steps each, ``2 == 12 // (2 * 3)``; the recorded losses are the
    sums of ``loss_accum`` (``+= loss.detach()`` adds the JAX array ``loss``)."""
    translated, rel = translated_rel(COMPUTED_COUNT)
    assert BEGIN not in translated and ".backward(" not in translated, translated
    assert "loss_accum = 0.0\n        grads_sum = None\n" in translated, translated
    assert "loss_accum += loss\n" in translated, translated
    assert "for micro_step in range(grad_accum_steps):" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"
    assert translate_nnx(translated) == translated


# (old, new, words of the escape's reason)
COUNT = "may run zero times"
SUM = "runs before the micro-step loop"
BUILD_NANOGPT_TWINS = {
    "a_count_that_floors_to_zero": ("total_batch_size = 12\n", "total_batch_size = 5\n", COUNT),
    "a_count_rebound_later_in_the_loop": (
        "        losses.append(loss_accum.item())\n",
        "        losses.append(loss_accum.item())\n    grad_accum_steps = 0\n",
        COUNT,
    ),
    "a_factor_from_the_command_line": ("B = 2\n", "B = int(sys.argv[1])\n", COUNT),
    "a_factor_bound_twice": ("T = 3\n", "T = 3\nif epochs_are_long:\n    T = 12\n", COUNT),
    "a_true_division": ("total_batch_size // (B * T)", "total_batch_size / (B * T)", COUNT),
    "a_zero_divisor": ("T = 3\n", "T = 0\n", COUNT),
    "the_sum_read_by_the_loss": (
        "/ grad_accum_steps\n",
        "/ grad_accum_steps + 0.0 * loss_accum\n",
        SUM,
    ),
    "the_sum_restarted_in_the_loop": (
        "            out = model(x)\n",
        "            loss_accum = 0.0\n            out = model(x)\n",
        SUM,
    ),
    "the_addition_reads_the_sum": ("+= loss.detach()\n", "+= loss.detach() + loss_accum\n", SUM),
    "a_start_that_is_no_number": ("loss_accum = 0.0\n", "loss_accum = float(epoch)\n", SUM),
    "a_product_instead_of_a_sum": ("loss_accum += loss", "loss_accum *= loss", SUM),
}


@pytest.mark.parametrize("name", sorted(BUILD_NANOGPT_TWINS))
def test_a_trap_twin_of_the_build_nanogpt_shape_escapes(name: str) -> None:
    old, new, reason = BUILD_NANOGPT_TWINS[name]
    assert old in COMPUTED_COUNT
    translated = translate_nnx(COMPUTED_COUNT.replace(old, new, 1))
    assert BEGIN in translated and reason in translated, translated
    assert "grads_sum = None" not in translated, translated
