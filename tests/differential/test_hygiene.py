"""Hygienic translations, run against torch in float64: user names that templates used to
capture, and arguments that translations used to read late or more than once.

Every case defines a name of its own (``count``, ``n``, ``scale``...) or changes a value after
construction; the translated module is executed as written by the codemod.
"""

from __future__ import annotations

import pytest

from ml_switcheroo.targets.catalogue import load_semantic_map
from tests.differential.harness import (
    EXACT,
    measure,
    measure_training,
    optax_hyperparams,
    optax_lrs,
    relative,
    torch_lrs,
    training_module,
    translate,
)

SEMANTIC_MAP = load_semantic_map()
SCHEDULER = "torch.optim.lr_scheduler."

# (prelude defining the user's names, optimizer, scheduler, statements after construction)
CAPTURES = {
    "count": ("count = 3", "torch.optim.SGD(params, lr=0.1 * count)", "CosineAnnealingLR(opt, T_max=10)", ""),
    "n": ("n = 2", "torch.optim.SGD(params, lr=0.1)", "MultiStepLR(opt, [10, 30], gamma=0.5 ** n)", ""),
    "scale": ("scale = 2.0", "torch.optim.SGD(params, lr=0.1)", "CyclicLR(opt, 0.005 * scale, 0.05 * scale, step_size_up=5, scale_fn=lambda c: 1.0 / (scale * c), cycle_momentum=False)", ""),
    "alpha": ("alpha = 0.05", "torch.optim.SGD(params, lr=0.1)", "torch.optim.swa_utils.SWALR(opt, swa_lr=alpha, anneal_epochs=20)", ""),
    "i": ("i = 2", "torch.optim.SGD(params, lr=0.1)", "CosineAnnealingWarmRestarts(opt, T_0=5 * i, T_mult=2)", ""),
    "product": ("product = 0.9", "torch.optim.SGD(params, lr=0.1)", "MultiplicativeLR(opt, lambda e: product)", ""),
    "attributes_changed_after_construction": (
        "import types\nargs = types.SimpleNamespace(lr=0.1, epochs=20)",
        "torch.optim.SGD(params, lr=args.lr)",
        "CosineAnnealingLR(opt, T_max=args.epochs)",
        "args.lr = 5.0\nargs.epochs = 3",
    ),
    "names_rebound_after_construction": (
        "base = 0.1\nperiod = 20",
        "torch.optim.SGD(params, lr=base)",
        "CosineAnnealingLR(opt, T_max=period, eta_min=base / 10)",
        "base = 7.0\nperiod = 1",
    ),
}  # fmt: skip


def with_statements_after_construction(source: str, statements: str, loop: str) -> str:
    """``source`` with ``statements`` inserted right before its training loop."""
    if not statements:
        return source
    head, _, tail = source.partition(loop)
    return f"{head}{statements}\n{loop}{tail}"


def scheduler_source(name: str) -> str:
    prelude, optimizer, scheduler, after = CAPTURES[name]
    if not scheduler.startswith("torch."):
        scheduler = SCHEDULER + scheduler
    source = training_module(optimizer, scheduler, prelude=prelude)
    return with_statements_after_construction(source, after, "for batch in batches:")


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_schedule_with_user_names_matches_torch(name: str) -> None:
    source = scheduler_source(name)
    translation = translate(source)
    assert not [r for r in translation.escapes if r.api != "torch.optim.Optimizer.step"]
    assert "sched.step()" not in translation.code
    expected = torch_lrs(source, {})["lr"]
    assert relative(expected, optax_lrs(translation.code, {})) < EXACT, translation.code


def test_momentum_cycle_with_user_names_e1_and_peak_matches_torch() -> None:
    source = training_module(
        "torch.optim.SGD(params, lr=0.1, momentum=0.9)",
        SCHEDULER + "OneCycleLR(opt, max_lr=peak, total_steps=100, max_momentum=e1)",
        prelude="peak = 0.1\ne1 = 0.95",
    )
    translation = translate(source)
    assert "optax.inject_hyperparams(" in translation.code
    expected = torch_lrs(source, {})
    momentum = optax_hyperparams(translation.code, {}, "momentum")
    assert relative(expected["momentum"], momentum) < EXACT, translation.code
    lr = optax_hyperparams(translation.code, {}, "learning_rate")
    assert relative(expected["lr"], lr) < EXACT, translation.code


# Schedulers whose arguments land inside template scopes; `USER` stands for a user variable (1.0).
NAMED_SCHEDULERS = [
    "CosineAnnealingLR(opt, T_max=10 * USER)",
    "torch.optim.swa_utils.SWALR(opt, swa_lr=0.05 * USER, anneal_epochs=20)",
    "CyclicLR(opt, 0.01 * USER, 0.1 * USER, step_size_up=5, cycle_momentum=False)",
    "OneCycleLR(opt, max_lr=0.1 * USER, total_steps=100, three_phase=True, cycle_momentum=False)",
    "MultiStepLR(opt, [10, 30], gamma=0.5 * USER)",
    "CosineAnnealingWarmRestarts(opt, T_0=int(5 * USER), T_mult=2)",
    "MultiplicativeLR(opt, lambda e: 0.9 * USER)",
    "LambdaLR(opt, lambda e: 0.9 ** (e * USER))",
]


def _named_cases() -> list[tuple[str, str]]:
    """(scheduler, user name) for every name the scheduler's templates introduce."""
    cases = []
    for scheduler in NAMED_SCHEDULERS:
        api = scheduler.split("(")[0]
        entry = SEMANTIC_MAP.apis[api if api.startswith("torch.") else SCHEDULER + api]
        names = set().union(*(link.emit.introduced_names for link in entry.chain))
        cases += [(scheduler, name) for name in sorted(names | {"count"})]
    return cases


@pytest.mark.parametrize("scheduler,name", _named_cases())
def test_every_template_name_as_a_user_name_matches_torch(scheduler: str, name: str) -> None:
    if not scheduler.startswith("torch."):
        scheduler = SCHEDULER + scheduler
    source = training_module(
        f"torch.optim.SGD(params, lr=0.1 * {name})",
        scheduler.replace("USER", name),
        prelude=f"{name} = 1.0",
    )
    translation = translate(source)
    assert not [r for r in translation.escapes if r.api != "torch.optim.Optimizer.step"]
    expected = torch_lrs(source, {})["lr"]
    assert relative(expected, optax_lrs(translation.code, {})) < EXACT, translation.code


# The loop stops at the optimizer under test and `lr` is rebound afterwards: a schedule that
# read `lr` late would see 99.0. (Optimizers collected into a list, or built in a
# comprehension, are values whose uses cannot be followed: they stay torch code, see
# tests/codemods/test_torch_only_uses.py.)
LOOP_OPTIMIZER = """
import torch
for lr in [0.1, 0.2, 0.3]:
    opt = torch.optim.{constructor}
    if lr == {target}:
        break
lr = 99.0
"""
LOOP_CONSTRUCTORS = [
    "Adagrad(params, lr=lr, lr_decay=0.05, eps=0.0)",
    "ASGD(params, lr=lr / 10, t0=5.0)",
]


@pytest.mark.parametrize("constructor", LOOP_CONSTRUCTORS, ids=["adagrad", "asgd"])
@pytest.mark.parametrize("target", [0.1, 0.2, 0.3])
def test_each_optimizer_built_in_a_loop_matches_its_torch_twin(
    constructor: str, target: float
) -> None:
    rel, translation = measure(LOOP_OPTIMIZER.format(constructor=constructor, target=target))
    assert rel < EXACT, translation.code


def test_random_lr_is_drawn_once_as_in_torch() -> None:
    source = "import torch\nimport random\nrandom.seed(7)\nopt = torch.optim.ASGD(params, lr=0.05 * random.random(), t0=5.0)\n"
    rel, translation = measure(source)
    assert "random.random()" in translation.code
    assert rel < EXACT, translation.code


def test_per_epoch_steps_expression_is_read_once_at_construction() -> None:
    # `len(loader)` is bound once where the schedule is built, not at every update. (A loader
    # assigned again after the scheduler escapes instead: the per-epoch tests in tests/codemods.)
    source = training_module(
        "torch.optim.SGD(params, lr=0.1, momentum=0.9)",
        SCHEDULER + "StepLR(opt, step_size=2, gamma=0.5)",
        prelude="loader = list(range(7))",
        per_epoch=True,
    ).replace("    for batch in batches:", "    for batch in loader:")  # what len() measures
    rel, translation = measure_training(
        source, steps_per_epoch=7, steps_per_epoch_option="len(loader)", exact=True
    )
    assert "(lambda steps_per_epoch:" in translation.code
    assert "(len(loader))" in translation.code
    assert rel < EXACT, translation.code
