"""ReduceLROnPlateau stepped once per epoch, translated by ``optimizer.TorchToNNX`` (its state
updated where torch steps it, the lr written to the injected hyper-parameter), matches PyTorch
when run: every recorded loss and the final parameters, float64, 36 updates over 12 epochs of
3 batches, with and without ``--exact``; each loop's torch lr is checked to have been reduced (else the test proves
nothing), and the eps loop is checked to differ without torch's eps floor."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT, float64
from tests.differential.nnx_loops import (
    run_nnx_loop,
    run_torch_loop,
    run_torch_script,
    translate_nnx,
    translated_rel,
    worst_rel,
)

PLATEAU_LOOP = """\
import torch

model = make_model()
opt = torch.optim.{optimizer}
sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, {arguments})
for epoch in range(EPOCHS * 4):
    for i, (x, y) in enumerate(loader):
        if i >= 3:
            break
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    sched.step({metric})
"""

TRAIN_FUNCTION_RETURNING_THE_METRIC = """\
import torch


def train(model, optimizer, loader):
    for i, (x, y) in enumerate(loader):
        if i >= 3:
            break
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return loss.item()


model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.05)
for epoch in range(EPOCHS * 4):
    val_loss = train(model, opt, loader)
    scheduler.step(val_loss)
"""

LOOPS = {
    "train_function_returning_the_metric": TRAIN_FUNCTION_RETURNING_THE_METRIC,
    "rel_threshold_on_the_last_loss": PLATEAU_LOOP.format(
        optimizer="SGD(model.parameters(), lr=0.1, momentum=0.9)",
        arguments="factor=0.5, patience=0, threshold=0.05",
        metric="loss.item()",
    ),
    "abs_threshold_cooldown_and_min_lr": PLATEAU_LOOP.format(
        optimizer="AdamW(model.parameters(), lr=0.02, weight_decay=0.01)",
        arguments="factor=0.3, patience=1, threshold=0.05, threshold_mode='abs', cooldown=1, "
        "min_lr=1e-3",
        metric="loss.item()",
    ),
    "default_learning_rate_and_a_constant_metric": PLATEAU_LOOP.format(
        optimizer="Adam(model.parameters())",
        arguments="factor=0.5, patience=2",
        metric="1.0",
    ),
    "mode_max_with_an_abs_threshold_on_the_negated_loss": PLATEAU_LOOP.format(
        optimizer="SGD(model.parameters(), lr=0.1, momentum=0.5)",
        arguments="mode='max', factor=0.5, patience=0, threshold=0.01, threshold_mode='abs'",
        metric="-loss.item()",
    ),
    "eps_stops_the_reductions": PLATEAU_LOOP.format(
        optimizer="SGD(model.parameters(), lr=0.1)",
        arguments="factor=0.5, patience=0, eps=0.01",
        metric="1.0",
    ),
    # the lr a module-level name bound once to a literal (tutorial scripts): the eps floor
    # computed from the name's number
    "eps_with_the_lr_of_a_module_constant": "learning_rate = 0.1\n"
    + PLATEAU_LOOP.format(
        optimizer="SGD(model.parameters(), lr=learning_rate)",
        arguments="factor=0.5, patience=0, eps=0.01",
        metric="1.0",
    ),
}


def torch_lrs(source: str) -> tuple[float, float]:
    """The torch optimizer's lr before and after ``source`` runs."""
    with float64():
        _, scope = run_torch_script(source)
        return scope["opt"].defaults["lr"], scope["opt"].param_groups[0]["lr"]


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("name", sorted(LOOPS))
def test_the_per_epoch_plateau_matches_torch(name: str, exact: bool) -> None:
    first, last = torch_lrs(LOOPS[name])
    assert last < first, f"{name}: torch never reduced the lr"
    translated, rel = translated_rel(LOOPS[name], exact=exact)
    assert BEGIN not in translated, translated
    assert "reduce_on_plateau(" in translated and ".scale" in translated, translated
    assert rel < EXACT, f"{name}: rel {rel:.3e}"


def test_the_eps_loop_differs_from_torch_without_the_eps_floor() -> None:
    source = LOOPS["eps_stops_the_reductions"]
    translated = translate_nnx(source)
    assert "min_scale=0.0125 / 0.1" in translated, translated
    unfloored = translated.replace("min_scale=0.0125 / 0.1", "min_scale=0 / 0.1")
    assert worst_rel(run_torch_loop(source), run_nnx_loop(source, unfloored)) > 1e-6


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_a_second_run_leaves_the_plateau_as_it_is(name: str) -> None:
    once = translate_nnx(LOOPS[name])
    assert translate_nnx(once) == once
