"""Per-update LR schedulers folded into the optimizer, both targets, against torch's own
(chainable) schedulers, float64. The lr of the translated ``sched`` at each of optax's int32
update counts over 300 updates (jitted, as the optimizer evaluates it), and NNX training loops.

With ``--exact`` every schedule is within EXACT. Without it, optax's own schedules compute on
the int32 count in float32 even with x64 on (``count / transition_steps`` is float32), about
1e-8 relative: an entry the map calls approximate stays within the map's tolerance and is off
by more than EXACT (else the map should call it exact). A stock per-update StepLR in an NNX loop
is off by ~5e-9 this way; ``--exact`` (``optax_torch.float64_count``) removes it."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from ml_switcheroo.targets.catalogue import load_semantic_map
from tests.differential.harness import (
    EXACT,
    float64,
    map_tolerance,
    optax_lrs,
    relative,
    torch_lrs,
    training_module,
    translate,
)
from tests.differential.nnx_loops import (
    nnx_net,
    run_nnx_loop,
    run_script,
    run_torch_loop,
    translate_nnx,
    worst_rel,
)

UPDATES = 300
SCHEDULES = {
    "step": "torch.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)",
    "step_every_5": "torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.7)",
    "multi_step": "torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[30, 80, 200], gamma=0.1)",
    "exponential": "torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.99)",
    "cosine": "torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)",
    # past T_max torch's recursive form keeps cycling (its rounding grows to ~1e-13 by 300)
    "cosine_cycling": "torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=30, eta_min=1e-3)",
    "linear": (
        "torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, end_factor=0.5, total_iters=20)"
    ),
    "polynomial": "torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=50, power=2.0)",
    "constant": "torch.optim.lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=10)",
    "warm_restarts": (
        "torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=10, T_mult=2, eta_min=1e-3)"
    ),
}
SGD = "torch.optim.SGD(params, lr=0.1)"
NNX_LOOP = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5, nesterov=True)
sched = {scheduler}
for epoch in range(EPOCHS):
    for x, y in loader:
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
"""


def _api(name: str) -> str:
    return SCHEDULES[name].partition("(")[0]


def _approximate(name: str) -> bool:
    return load_semantic_map().apis[_api(name)].status_for(False) == "approximate"


def _torch_lrs(name: str) -> list[float]:
    return torch_lrs(training_module(SGD, SCHEDULES[name]), {}, UPDATES)["lr"]


def _optax_lrs(name: str, exact: bool) -> list[float]:
    translation = translate(training_module(SGD, SCHEDULES[name]), exact=exact)
    escaped = [r.reason for r in translation.escapes if r.api != "torch.optim.Optimizer.step"]
    assert not escaped and "sched.step()" not in translation.code, translation.code
    return optax_lrs(translation.code, {}, UPDATES)


def _nnx_lrs(name: str, exact: bool) -> list[float]:
    """``sched`` of the NNX translation (the schedule its nnx.Optimizer is given), jitted, at
    each int32 update count."""
    translated = translate_nnx(NNX_LOOP.format(scheduler=SCHEDULES[name]), exact=exact)
    assert BEGIN not in translated and "sched.step()" not in translated, translated
    with float64():
        scope = run_script(translated, nnx_net(), [], "<nnx schedule>")
        schedule: Any = jax.jit(scope["sched"])
        return [float(schedule(jnp.asarray(k, jnp.int32))) for k in range(UPDATES)]


LRS = {"optax": _optax_lrs, "nnx": _nnx_lrs}


@pytest.mark.parametrize("exact", [False, True], ids=["stock", "exact"])
@pytest.mark.parametrize("target", sorted(LRS))
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_the_folded_schedule_follows_torch_for_300_updates(
    name: str, target: str, exact: bool
) -> None:
    rel = relative(_torch_lrs(name), LRS[target](name, exact))
    assert rel < map_tolerance(_api(name), exact), f"{target} {name}: lr rel {rel:.3e}"


APPROXIMATE = sorted(name for name in SCHEDULES if _approximate(name))


@pytest.mark.parametrize("target", sorted(LRS))
@pytest.mark.parametrize("name", APPROXIMATE)
def test_a_schedule_the_map_calls_approximate_is_off_by_more_than_exact(
    name: str, target: str
) -> None:
    rel = relative(_torch_lrs(name), LRS[target](name, False))
    assert rel > EXACT, f"{target} {name}: lr rel {rel:.3e}: the map could call it exact"


@pytest.mark.parametrize("name", ["exponential", "cosine_cycling", "polynomial", "warm_restarts"])
def test_an_nnx_loop_with_a_folded_schedule_matches_torch_with_exact(name: str) -> None:
    source = NNX_LOOP.format(scheduler=SCHEDULES[name])
    translated = translate_nnx(source, exact=True)
    rel = worst_rel(run_torch_loop(source), run_nnx_loop(source, translated))
    assert rel < EXACT, f"{name}: rel {rel:.3e}"


def test_a_stock_nnx_loop_with_a_step_lr_is_within_the_map_tolerance_but_not_exact() -> None:
    source = NNX_LOOP.format(scheduler=SCHEDULES["step_every_5"])
    translated = translate_nnx(source)
    rel = worst_rel(run_torch_loop(source), run_nnx_loop(source, translated))
    assert EXACT < rel < map_tolerance(_api("step_every_5"), False), f"rel {rel:.3e}"
