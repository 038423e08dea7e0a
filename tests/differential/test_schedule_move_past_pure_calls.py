"""A statement between the optimizer and its scheduler that only calls the map's
``pure_calls`` (``steps = math.ceil(len(loader) / accum)``, as in transformers'
``run_glue_no_trainer.py``) changes nothing the optimizer reads: the optimizer moves down
next to the scheduler and the schedule folds (float64, 60 updates, against torch). A call of
anything else there (a user function, a pure call of one) may change what the optimizer
reads (``cfg.lr``) and keeps the scheduler in an escape hatch."""

from __future__ import annotations

import types

import pytest

from tests.differential.harness import EXACT, measure_loop, translate

BUILT = """\
import math
import torch
opt = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9)
steps = math.ceil(len(loader) / cfg.accum) * 10
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
for batch in batches:
    opt.zero_grad()
    loss = batch()
    loss.backward()
    opt.step()
    sched.step()
"""


def _env() -> dict[str, object]:
    return {"cfg": types.SimpleNamespace(lr=0.1, accum=3), "loader": list(range(20))}


def test_a_pure_call_between_the_optimizer_and_the_scheduler_folds_and_matches_torch() -> None:
    rel, translation = measure_loop(BUILT, exact=True, env=_env())
    assert "learning_rate=sched" in translation.code
    assert "math.ceil(len(loader) / cfg.accum)" in translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"


def test_the_translation_is_stable() -> None:
    first = translate(BUILT, exact=True).code
    assert translate(first, exact=True).code == first


@pytest.mark.parametrize(
    "between",
    [
        "steps = bump(len(loader)) * 10",
        "steps = math.ceil(bump(len(loader))) * 10",
        "steps = math.ceil(*[len(loader) / cfg.accum]) * 10",
        "steps = ceil(len(loader) / cfg.accum) * 10",
    ],
)
def test_a_call_that_may_change_the_optimizers_values_keeps_it_apart(between: str) -> None:
    source = BUILT.replace("steps = math.ceil(len(loader) / cfg.accum) * 10", between)
    if between.startswith("steps = ceil"):
        source = "def ceil(x):\n    cfg.lr = 0.5\n    return int(x)\n" + source
    translation = translate(source, exact=True)
    reasons = [r.reason for r in translation.escapes if "lr_scheduler" in r.api]
    assert reasons and all("may change a value" in r for r in reasons), reasons
    assert "learning_rate=sched" not in translation.code
