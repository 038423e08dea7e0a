"""Hugging Face ``transformers`` schedule factories, translated and run against transformers.

Each factory returns a torch ``LambdaLR``; the codemod folds it into the optimizer as an optax
schedule. Values are compared over 100 updates (past the end of training, where the factories
clamp or keep oscillating) as optax evaluates them (jitted, on its int32 count), and whole
training trajectories over 60 steps; float64, rel < 1e-9. The trap twins below must escape.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.differential.harness import (
    EXACT,
    measure_loop,
    measure_training,
    optax_lrs,
    relative,
    torch_lrs,
    training_module,
    translate,
)

SGD = "torch.optim.SGD(params, lr=0.1)"
PLAIN = "import transformers"
FROM = (
    "from transformers import get_constant_schedule, get_constant_schedule_with_warmup, "
    "get_linear_schedule_with_warmup, get_cosine_schedule_with_warmup, "
    "get_cosine_with_hard_restarts_schedule_with_warmup, "
    "get_polynomial_decay_schedule_with_warmup, get_inverse_sqrt_schedule, get_wsd_schedule"
)
FROM_MODULE = "from transformers.optimization import get_cosine_schedule_with_warmup"

# (import statement, scheduler expression, names the expression uses)
FACTORIES: list[tuple[str, str, dict[str, Any]]] = [
    (FROM, "get_constant_schedule(opt)", {}),
    (PLAIN, "transformers.optimization.get_constant_schedule(opt)", {}),
    (FROM, "get_constant_schedule_with_warmup(opt, 10)", {}),
    (FROM, "get_constant_schedule_with_warmup(opt, num_warmup_steps=0)", {}),
    (FROM, "get_constant_schedule_with_warmup(opt, num_warmup_steps=w)", {"w": 7}),
    (FROM, "get_linear_schedule_with_warmup(opt, 10, 60)", {}),
    (FROM, "get_linear_schedule_with_warmup(opt, num_warmup_steps=0, num_training_steps=60)", {}),
    (FROM, "get_linear_schedule_with_warmup(opt, 60, 60)", {}),
    (PLAIN, "transformers.get_linear_schedule_with_warmup(opt, w, n)", {"w": 5, "n": 45}),
    (FROM, "get_cosine_schedule_with_warmup(opt, 10, 60)", {}),
    (FROM, "get_cosine_schedule_with_warmup(opt, 10, 60, num_cycles=0.5)", {}),
    (FROM, "get_cosine_schedule_with_warmup(opt, 10, 60, num_cycles=2)", {}),
    (FROM, "get_cosine_schedule_with_warmup(opt, 0, 60, num_cycles=1.25)", {}),
    (FROM, "get_cosine_schedule_with_warmup(opt, 60, 60)", {}),
    (FROM_MODULE, "get_cosine_schedule_with_warmup(opt, 8, 50, c)", {"c": 2}),
    (FROM, "get_cosine_with_hard_restarts_schedule_with_warmup(opt, 10, 60)", {}),
    (FROM, "get_cosine_with_hard_restarts_schedule_with_warmup(opt, 10, 60, num_cycles=3)", {}),
    (FROM, "get_cosine_with_hard_restarts_schedule_with_warmup(opt, 0, 60, num_cycles=2)", {}),
    (FROM, "get_cosine_with_hard_restarts_schedule_with_warmup(opt, 60, 60, 2)", {}),
    (FROM, "get_polynomial_decay_schedule_with_warmup(opt, 10, 60)", {}),
    (
        FROM,
        "get_polynomial_decay_schedule_with_warmup(opt, 10, 60, lr_end=1e-3, power=2.0)",
        {},
    ),
    (FROM, "get_polynomial_decay_schedule_with_warmup(opt, 0, 60, lr_end=0.01, power=0.5)", {}),
    (FROM, "get_polynomial_decay_schedule_with_warmup(opt, 5, 40, 0.0, 3)", {}),
    (FROM, "get_inverse_sqrt_schedule(opt, 10)", {}),
    (FROM, "get_inverse_sqrt_schedule(opt, 10, timescale=25)", {}),
    (FROM, "get_inverse_sqrt_schedule(opt, 0)", {}),
    (FROM, "get_inverse_sqrt_schedule(opt, num_warmup_steps=w, timescale=s)", {"w": 4, "s": 9}),
    (FROM, "get_wsd_schedule(opt, 10, 20, num_training_steps=60)", {}),
    (
        FROM,
        "get_wsd_schedule(opt, 10, 20, num_training_steps=60, warmup_type='cosine', "
        "decay_type='linear', min_lr_ratio=0.1)",
        {},
    ),
    (
        FROM,
        "get_wsd_schedule(opt, 8, 25, num_stable_steps=15, warmup_type='1-sqrt', "
        "decay_type='1-sqrt', min_lr_ratio=0.05)",
        {},
    ),
    (
        FROM,
        "get_wsd_schedule(opt, 0, 30, num_training_steps=60, num_stable_steps=10, num_cycles=1.0)",
        {},
    ),
    (
        FROM,
        "get_wsd_schedule(opt, 10, 20, num_training_steps=60, decay_type='cosine', num_cycles=2)",
        {},
    ),
    (FROM, "get_wsd_schedule(opt, 10, 20, 60, num_stable_steps=s)", {"s": None}),
    (FROM, "get_wsd_schedule(opt, 10, 20, 60, num_stable_steps=s)", {"s": 12}),
]
GET = "from transformers import get_scheduler"
FACTORIES += [
    (GET, "get_scheduler('linear', opt, num_warmup_steps=10, num_training_steps=60)", {}),
    (
        GET,
        "get_scheduler('cosine', opt, 10, 60, scheduler_specific_kwargs={'num_cycles': 2})",
        {},
    ),
    (GET, "get_scheduler('cosine_with_restarts', opt, 5, 60, {'num_cycles': 3})", {}),
    (GET, "get_scheduler('polynomial', opt, 5, 60, {'lr_end': 1e-3, 'power': 2.0})", {}),
    # constant ignores the steps it is given; constant_with_warmup ignores the dict
    (GET, "get_scheduler('constant', opt, 10, 60)", {}),
    (GET, "get_scheduler('constant_with_warmup', opt, 10, 60, {'unused': 1})", {}),
    (GET, "get_scheduler('inverse_sqrt', opt, 10, 60, {'timescale': 30})", {}),
    (
        GET,
        "get_scheduler('warmup_stable_decay', opt, 10, 60, {'num_decay_steps': 20, "
        "'decay_type': 'linear', 'min_lr_ratio': 0.1})",
        {},
    ),
    (
        PLAIN,
        "transformers.optimization.get_scheduler('linear', opt, w, n, None)",
        {"w": 4, "n": 40},
    ),
]
IDS = [scheduler for _, scheduler, _ in FACTORIES]


def _source(prelude: str, scheduler: str, optimizer: str = SGD, **kwargs: Any) -> str:
    return training_module(optimizer, scheduler, prelude=prelude, **kwargs)


@pytest.mark.parametrize("exact", [False, True], ids=["stock", "exact"])
@pytest.mark.parametrize("prelude,scheduler,env", FACTORIES, ids=IDS)
def test_factory_schedule_values_match_transformers(
    prelude: str, scheduler: str, env: dict[str, Any], exact: bool
) -> None:
    source = _source(prelude, scheduler)
    translation = translate(source, exact=exact)
    unexpected = [r.reason for r in translation.escapes if r.api != "torch.optim.Optimizer.step"]
    assert not unexpected
    assert "sched.step()" not in translation.code
    (schedule,) = [line for line in translation.code.splitlines() if line.startswith("sched = ")]
    assert "get_" not in schedule
    expected = torch_lrs(source, env)["lr"]
    actual = optax_lrs(translation.code, env)
    assert relative(expected, actual) < EXACT, translation.code


TRAINING = [
    ("torch.optim.AdamW(params, lr=0.01)", FROM, "get_linear_schedule_with_warmup(opt, 10, 50)"),
    (
        "torch.optim.Adam(params, lr=0.02)",
        FROM,
        "get_cosine_schedule_with_warmup(opt, 5, 60, num_cycles=2)",
    ),
    (
        "torch.optim.SGD(params, lr=0.05, momentum=0.9)",
        FROM,
        "get_polynomial_decay_schedule_with_warmup(opt, 5, 50, lr_end=1e-4, power=2.0)",
    ),
    ("torch.optim.AdamW(params, lr=0.01)", FROM, "get_inverse_sqrt_schedule(opt, 8)"),
    (
        "torch.optim.AdamW(params, lr=0.01)",
        FROM,
        "get_wsd_schedule(opt, 6, 20, num_training_steps=60, warmup_type='cosine')",
    ),
]


@pytest.mark.parametrize(
    "optimizer,prelude,scheduler", TRAINING, ids=[f"{t[0]} + {t[2]}" for t in TRAINING]
)
def test_training_with_factory_schedule_matches_torch(
    optimizer: str, prelude: str, scheduler: str
) -> None:
    rel, translation = measure_training(_source(prelude, scheduler, optimizer))
    assert "sched.step()" not in translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"


# ------------------------------------------------------------------------- trap twins


def _escape_reasons(source: str) -> list[str]:
    translation = translate(source)
    return [r.reason for r in translation.escapes if r.api.startswith("transformers.")]


def test_factory_stepped_once_per_epoch_escapes() -> None:
    source = _source(FROM, "get_linear_schedule_with_warmup(opt, 10, 60)", per_epoch=True)
    (reason,) = _escape_reasons(source)
    assert "once per epoch" in reason


def test_factory_stepped_every_k_updates_matches_torch() -> None:
    # issue 12 D2: a counter proved to count updates folds as schedule((count + r) // k)
    source = (
        f"import torch\n{FROM}\n"
        "opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)\n"
        "sched = get_linear_schedule_with_warmup(opt, 3, 12)\n"
        "step = 0\n"
        "for batch in batches:\n"
        "    opt.zero_grad()\n"
        "    loss = batch()\n"
        "    loss.backward()\n"
        "    opt.step()\n"
        "    step += 1\n"
        "    if step % 4 == 0:\n"
        "        sched.step()\n"
    )
    rel, translation = measure_loop(source, exact=True)
    assert "sched.step()" not in translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"


def test_factory_stepped_on_a_batch_index_that_restarts_per_epoch_escapes() -> None:
    source = (
        f"import torch\n{FROM}\n"
        "opt = torch.optim.SGD(params, lr=0.1)\n"
        "sched = get_linear_schedule_with_warmup(opt, 10, 60)\n"
        "for epoch in range(3):\n"
        "    for step, batch in enumerate(batches):\n"
        "        opt.zero_grad()\n"
        "        batch.sum().backward()\n"
        "        opt.step()\n"
        "        if step % 4 == 0:\n"
        "            sched.step()\n"
    )
    assert _escape_reasons(source)


def test_factory_resuming_with_last_epoch_escapes() -> None:
    source = _source(FROM, "get_cosine_schedule_with_warmup(opt, 10, 60, last_epoch=5)")
    (reason,) = _escape_reasons(source)
    assert "resumes a schedule" in reason


def test_factory_stepped_twice_per_update_escapes() -> None:
    source = _source(FROM, "get_linear_schedule_with_warmup(opt, 10, 60)").replace(
        "sched.step()\n", "sched.step()\n    sched.step()\n"
    )
    assert _escape_reasons(source)


def test_factory_of_an_optimizer_rebuilt_on_one_branch_escapes() -> None:
    source = (
        f"import torch\n{FROM}\n"
        "opt = torch.optim.SGD(params, lr=0.1)\n"
        "if resume:\n"
        "    opt = torch.optim.SGD(params, lr=0.01)\n"
        "sched = get_linear_schedule_with_warmup(opt, 10, 60)\n"
        "for batch in batches:\n"
        "    opt.zero_grad()\n"
        "    batch.sum().backward()\n"
        "    opt.step()\n"
        "    sched.step()\n"
    )
    assert _escape_reasons(source)


def test_wsd_without_training_or_stable_steps_escapes() -> None:
    source = _source(FROM, "get_wsd_schedule(opt, 10, 20)")
    (reason,) = _escape_reasons(source)
    assert "raises ValueError" in reason


def test_wsd_with_an_unknown_decay_type_escapes() -> None:
    source = _source(FROM, "get_wsd_schedule(opt, 10, 20, 60, decay_type='exp')")
    (reason,) = _escape_reasons(source)
    assert "decay_type='exp'" in reason


def test_wsd_with_a_non_literal_warmup_type_escapes() -> None:
    source = _source(FROM, "get_wsd_schedule(opt, 10, 20, 60, warmup_type=kind)")
    (reason,) = _escape_reasons(source)
    assert "`warmup_type` is not a literal" in reason


@pytest.mark.parametrize(
    "scheduler,reason",
    [
        ("get_scheduler(kind, opt, 10, 60)", "`name` (`kind`) is not a literal"),
        ("get_scheduler('linear', opt, 10, 60, extra)", "is not a dict display"),
        ("get_scheduler('greedy', opt, 10, 60)", "name='greedy' is not translated"),
        ("get_scheduler('linear', opt, 10, 60, {'last_epoch': 5})", "resumes a schedule"),
        ("get_scheduler('linear', opt)", "`num_warmup_steps` is missing"),
    ],
)
def test_get_scheduler_that_is_not_known_statically_escapes(scheduler: str, reason: str) -> None:
    (found,) = _escape_reasons(_source(GET, scheduler))
    assert reason in found
