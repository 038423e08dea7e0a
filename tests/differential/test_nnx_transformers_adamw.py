"""transformers.AdamW (transformers 4.x) in whole training loops: ``optimizer.TorchToNNX``'s own
output (``nnx.Optimizer(model, <transformers' chain>, wrt=nnx.Param)``) matches the script run
with transformers 4.x's AdamW (``TransformersAdamW``) when run: losses and final parameters,
float64, 36 updates; constant lr, the linear-warmup schedule with clip_grad_norm_, and
correct_bias=False. The learning-rate reads of such an optimizer escape."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.differential.transformers_adamw import patched


@pytest.fixture(autouse=True)
def transformers_4(monkeypatch: pytest.MonkeyPatch) -> None:
    """The torch script runs ``transformers.AdamW`` as transformers 4.x steps it."""
    patched(monkeypatch)


LOOP = """\
import torch
from transformers import AdamW, get_linear_schedule_with_warmup

model = make_model()
optimizer = AdamW(model.parameters(), {arguments})
{scheduler}
for epoch in range(EPOCHS):
    for x, y in loader:
        loss = ((model(x) - y) ** 2).mean()
        loss.backward(){clip}
        optimizer.step(){step}
        optimizer.zero_grad()
        losses.append(loss.item())
"""
SCHEDULER = (
    "scheduler = get_linear_schedule_with_warmup("
    "optimizer, num_warmup_steps=4, num_training_steps=EPOCHS * len(loader))"
)
CLIP = "torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)"


def loop(arguments: str, scheduled: bool = False, clipped: bool = False) -> str:
    source = LOOP.format(
        arguments=arguments,
        scheduler=SCHEDULER if scheduled else "",
        clip=f"\n        {CLIP}" if clipped else "",
        step="\n        scheduler.step()" if scheduled else "",
    )
    return source


CASES = {
    "constant_lr": loop("lr=0.05, weight_decay=0.2"),
    "constant_lr_no_decay": loop("lr=0.05, eps=1e-3"),
    "linear_warmup_clipped": loop("lr=0.05, weight_decay=0.2", scheduled=True, clipped=True),
    "no_bias_correction": loop(
        "lr=0.05, betas=(0.8, 0.9), weight_decay=0.3, correct_bias=False", scheduled=True
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_translated_loop_matches_transformers(name: str) -> None:
    translated, rel = translated_rel(CASES[name])
    assert BEGIN not in translated and "nnx.Optimizer(model, optax.chain(" in translated
    assert rel < EXACT, f"rel {rel:.3e}"


def test_a_second_run_changes_nothing() -> None:
    once = translate_nnx(CASES["linear_warmup_clipped"])
    assert "nnx.Optimizer(" in once and translate_nnx(once) == once


@pytest.mark.parametrize(
    ("arguments", "clipped"),
    [("lr=0.05", False), ("lr=0.05, weight_decay=0.1", False), ("lr=0.05, weight_decay=0.1", True)],
)
def test_an_lr_read_escapes(arguments: str, clipped: bool) -> None:
    """Its chain injects eps, and the decay's lr positionally into a lambda: no element's
    hyperparams hold a `learning_rate` (with a clip too, where the NNX target injects the lr
    of an optimizer whose lr is read)."""
    source = loop(arguments, clipped=clipped).replace(
        "losses.append(loss.item())",
        'losses.append(loss.item())\n        print(optimizer.param_groups[0]["lr"])',
    )
    translated = translate_nnx(source)
    assert ".opt_state[0]" not in translated, translated
    assert "ESCAPE-BEGIN torch.optim.Optimizer.param_groups" in translated, translated


def test_a_per_epoch_scheduler_escapes() -> None:
    """The lr written once per epoch would be one injected value; its decay takes it too."""
    source = loop("lr=0.05, weight_decay=0.2").replace(
        "\nfor epoch", "\nscheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)\nfor epoch"
    )
    source += "    scheduler.step()\n"
    translated = translate_nnx(source)
    assert "ESCAPE-BEGIN transformers.AdamW" in translated, translated
    assert "not proportional to its learning rate" in translated, translated
