"""A scheduler handed, with its optimizer, to a function of the file that steps it right
after the optimizer in its batch loop (``train_epoch(model, loader, loss_fn, optimizer,
device, scheduler, n)``: the fine-tuning shape copied across many BERT scripts) steps once
per update: it folds into the optimizer, its ``step()`` in the function goes, and the
trajectory matches torch (float64, 60 updates over three calls; NNX: losses and final
weights, 60 updates over five calls). Before, it escaped as "this
scheduler's step() is not called in this file". Trap twins keep the escape, with the reason:
the function steps it per epoch or under a condition of its own, steps the optimizer twice,
is also handed another scheduler, reads the scheduler otherwise, or the optimizer is also
stepped or handed elsewhere."""

from __future__ import annotations

import pytest

from tests.differential.harness import EXACT, measure_loop, translate

BUILT = """\
import itertools
import torch
from transformers import get_linear_schedule_with_warmup


def train_epoch(loader, optimizer, scheduler):
    for batch in loader:
        optimizer.zero_grad()
        loss = batch()
        loss.backward()
        optimizer.step()
        scheduler.step()


opt = torch.optim.AdamW(params, lr=0.1, weight_decay=0.01)
total_steps = 20 * 3
sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=7, num_training_steps=total_steps)
for epoch in range(3):
    train_epoch(itertools.islice(batches, 20), opt, sched)
list(batches)
"""


def test_a_scheduler_stepped_per_batch_in_a_function_folds_and_matches_torch() -> None:
    rel, translation = measure_loop(BUILT, exact=True)
    assert "learning_rate=sched" in translation.code
    assert "scheduler.step()" not in translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"


def test_a_one_cycle_scheduler_handed_by_keyword_matches_torch() -> None:
    source = BUILT.replace(
        "sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=7, "
        "num_training_steps=total_steps)",
        "sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=total_steps)",
    ).replace("opt, sched)", "scheduler=sched, optimizer=opt)")
    rel, translation = measure_loop(source, exact=True)
    assert "learning_rate=sched" in translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"


def test_the_translation_is_stable() -> None:
    first = translate(BUILT, exact=True).code
    assert translate(first, exact=True).code == first


TRAPS = {
    "stepped once per epoch": (
        "        optimizer.step()\n        scheduler.step()\n",
        "        optimizer.step()\n    scheduler.step()\n",
    ),
    "stepped under a condition of its own": (
        "        scheduler.step()\n",
        "        if loss.item() > 0.5:\n            scheduler.step()\n",
    ),
    "the optimizer stepped twice": (
        "        optimizer.step()\n",
        "        optimizer.step()\n        optimizer.step()\n",
    ),
    "another scheduler handed": (
        "list(batches)\n",
        "opt2 = torch.optim.SGD(params, lr=0.1)\n"
        "other = torch.optim.lr_scheduler.StepLR(opt2, 5)\n"
        "train_epoch(batches, opt2, other)\n",
    ),
    "the scheduler read otherwise": (
        "        scheduler.step()\n",
        "        scheduler.step()\n        print(scheduler.get_last_lr())\n",
    ),
    "the optimizer stepped elsewhere": (
        "list(batches)\n",
        "opt.step()\nlist(batches)\n",
    ),
    "the optimizer handed to another call": (
        "list(batches)\n",
        "finetune(opt)\nlist(batches)\n",
    ),
    "the scheduler stepped before the optimizer": (
        "        optimizer.step()\n        scheduler.step()\n",
        "        scheduler.step()\n        optimizer.step()\n",
    ),
    "the optimizer stepped through an alias in the function": (
        "        scheduler.step()\n",
        "        scheduler.step()\n        again = optimizer\n        again.step()\n",
    ),
    "the optimizer stepped through an alias outside": (
        "list(batches)\n",
        "again = opt\nagain.step()\nlist(batches)\n",
    ),
    "the optimizer's lr written outside": (
        "list(batches)\n",
        'opt.param_groups[0]["lr"] = 0.01\nlist(batches)\n',
    ),
    "the function called through another name": (
        "list(batches)\n",
        "opt2 = torch.optim.SGD(params, lr=0.1)\n"
        "other = torch.optim.lr_scheduler.StepLR(opt2, 5)\n"
        "run = train_epoch\nrun(batches, opt2, other)\n",
    ),
    "the scheduler handed on": (
        "        scheduler.step()\n",
        "        scheduler.step()\n        log(scheduler)\n",
    ),
}


@pytest.mark.parametrize("trap", sorted(TRAPS))
def test_a_function_that_may_not_step_it_once_per_update_keeps_the_escape(trap: str) -> None:
    old, new = TRAPS[trap]
    assert old in BUILT
    source = BUILT.replace(old, new)
    translation = translate(source, exact=True)
    records = [r for r in translation.escapes if r.api.endswith("get_linear_schedule_with_warmup")]
    assert records, f"{trap}: converted\n{translation.code}"
    assert "learning_rate=sched" not in translation.code


NNX_LOOP = """\
import torch
from transformers import get_linear_schedule_with_warmup


def train_epoch(model, data_loader, optimizer, device, scheduler):
    model.train()
    for x, y in data_loader:
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())


model = make_model()
optimizer = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.01)
total_steps = len(loader) * EPOCHS
scheduler = get_linear_schedule_with_warmup(optimizer, 3, total_steps)
for epoch in range(EPOCHS):
    train_epoch(model, loader, optimizer, "cpu", scheduler)
"""


def test_nnx_a_scheduler_stepped_per_batch_in_a_function_matches_torch() -> None:
    from tests.differential import nnx_loops  # NNX's harness: flax

    translated = nnx_loops.translate_nnx(NNX_LOOP)
    names = {"EPOCHS": 5}  # 60 updates: 12 batches an epoch
    torch_run = nnx_loops.run_torch_loop(NNX_LOOP, names=names)
    assert len(torch_run.losses) == 60
    rel = nnx_loops.worst_rel(torch_run, nnx_loops.run_nnx_loop(NNX_LOOP, translated, names=names))
    assert "ESCAPE-BEGIN" not in translated, translated
    assert "optax.adamw(learning_rate=scheduler" in translated, translated
    assert "scheduler.step()" not in translated, translated
    assert rel < EXACT, f"rel={rel:.3e}\n{translated}"
