"""Probe s42, F1: ``PolynomialLR(opt, total_iters=T, power=p)`` with ``p < 1``, translated and
run against torch (float64, 60 updates, past the end of the decay).

torch's lr is ``base * (1 - min(k, T) / T) ** p``: exactly 0 from update T on. The map wrote
``optax.polynomial_schedule(base, 0.0, power=p, transition_steps=T)``, which computes
``1 - k / T``; XLA divides by the constant T through its reciprocal, so at k = T the base of the
power is 2**-56 (or -2**-53: NaN for a fractional power) instead of 0, and ``p < 1`` magnifies
it: under ``--exact`` (``float64_count``), measured on the parent 1.1e-1 relative for
``T=30, p=0.1`` (the lr stays at 2.4% of base where torch's is 0), 1.5e-8 for ``T=30, p=0.5``,
6.0e-8 for ``T=7, p=0.5``, 1.3e-8 for a warm-up pair whose main scheduler is ``PolynomialLR(opt,
total_iters=30, power=0.5)``; the map calls the entry exact under ``--exact`` (1e-9).
Fixed in the map: the schedule is written ``(T - min(k, T)) / max(1, T)`` (0 at k >= T with no
division rounding), and torch's constant lr for ``total_iters=0``. Twins (``p >= 1``, other
lengths, the default mode's float32 tolerance) match torch.
"""

from __future__ import annotations

import pytest

from tests.differential.harness import (
    map_tolerance,
    measure_loop,
    measure_training,
    training_module,
)
from tests.differential.test_warmup_then_main import _pair

SGD = "torch.optim.SGD(params, lr=0.1, momentum=0.9)"
API = "torch.optim.lr_scheduler.PolynomialLR"

CASES = [
    (30, 0.1),
    (30, 0.5),
    (7, 0.5),
    (7, 0.1),
    (5, 0.5),
    (30, 1.0),
    (7, 3.0),
    (1, 0.5),
    (0, 0.5),
]


@pytest.mark.parametrize("exact", [False, True], ids=["default", "exact"])
@pytest.mark.parametrize("total,power", CASES, ids=[f"T{t}-p{p}" for t, p in CASES])
def test_polynomial_lr_past_its_end_matches_torch(total: int, power: float, exact: bool) -> None:
    source = training_module(SGD, f"{API}(opt, total_iters={total}, power={power})")
    rel, translation = measure_training(source, exact=exact)
    assert not [r for r in translation.escapes if "lr_scheduler" in r.api], translation.escapes
    assert rel < map_tolerance(API, exact), f"rel={rel:.3e}\n{translation.code}"


def test_a_polynomial_main_scheduler_after_a_warm_up_matches_torch() -> None:
    source = _pair(
        "LinearLR(opt, start_factor=0.1, total_iters=5)",
        "PolynomialLR(opt, total_iters=30, power=0.5)",
    )
    rel, translation = measure_loop(source, exact=True)
    assert "join_schedules([warm, " in translation.code, translation.code
    assert rel < map_tolerance(API, True), f"rel={rel:.3e}\n{translation.code}"
