"""LR schedulers and gradient clipping, translated by the codemod and run against torch.

Schedules are compared value by value over 100 updates, evaluated the way optax evaluates
them (jitted, on its int32 update count); optimizer + scheduler (+ clipping) trajectories over
60 steps. float64 throughout; rel < 1e-9, or the tolerance of an entry marked approximate.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ml_switcheroo.targets.catalogue import load_semantic_map
from tests.differential.harness import (
    EXACT,
    map_tolerance,
    measure_training,
    optax_hyperparams,
    optax_lrs,
    relative,
    torch_lrs,
    training_module,
    translate,
)

SEMANTIC_MAP = load_semantic_map()
SGD = "torch.optim.SGD(params, lr=0.1)"
JNP = {"jnp": __import__("jax.numpy", fromlist=["numpy"])}

SCHEDULES: list[tuple[str, dict[str, Any]]] = [
    ("torch.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)", {}),
    ("torch.optim.lr_scheduler.StepLR(opt, 7)", {}),
    ("torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[30, 80], gamma=0.1)", {}),
    ("torch.optim.lr_scheduler.MultiStepLR(opt, [5, 10, 10, 40])", {}),
    # gamma 0: torch's lr is 0 from the first decay (optax.exponential_decay stays constant)
    ("torch.optim.lr_scheduler.StepLR(opt, 7, gamma=0)", {}),
    ("torch.optim.lr_scheduler.StepLR(opt, 7, gamma=g)", {"g": 0.0}),
    ("torch.optim.lr_scheduler.StepLR(opt, 7, gamma=g)", {"g": 0.5}),
    ("torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.0)", {}),
    ("torch.optim.lr_scheduler.ExponentialLR(opt, gamma=g)", {"g": 0.0}),
    ("torch.optim.lr_scheduler.ExponentialLR(opt, gamma=g)", {"g": 0.9}),
    ("torch.optim.lr_scheduler.ConstantLR(opt)", {}),
    ("torch.optim.lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=10)", {}),
    # total_iters <= 0: torch keeps lr * factor forever
    ("torch.optim.lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=0)", {}),
    ("torch.optim.lr_scheduler.ConstantLR(opt, factor=0.25, total_iters=n)", {"n": 0}),
    ("torch.optim.lr_scheduler.ConstantLR(opt, factor=0.25, total_iters=n)", {"n": 7}),
    ("torch.optim.lr_scheduler.LinearLR(opt)", {}),
    (
        "torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, end_factor=0.5, total_iters=20)",
        {},
    ),
    ("torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.95)", {}),
    ("torch.optim.lr_scheduler.PolynomialLR(opt)", {}),
    ("torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=50, power=2.0)", {}),
    ("torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)", {}),
    ("torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=30, eta_min=1e-3)", {}),
    ("torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=10)", {}),
    (
        "torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=10, T_mult=2, eta_min=1e-3)",
        {},
    ),
    ("torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, 3, 3)", {}),
    ("torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.95 ** k)", {}),
    # a def of the file passed by keyword: tests/differential/test_schedule_function_reads.py
    ("torch.optim.lr_scheduler.MultiplicativeLR(opt, lambda k: 0.97)", {}),
    ("torch.optim.lr_scheduler.MultiplicativeLR(opt, lr_lambda=lambda k: 1.0 - 0.001 * k)", {}),
    (
        "torch.optim.lr_scheduler.SequentialLR(opt, [torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=10), torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=90)], milestones=[10])",
        {},
    ),
    ("torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=100)", {}),
    (
        "torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=100, anneal_strategy='linear')",
        {},
    ),
    ("torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=100, three_phase=True)", {}),
    (
        "torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, epochs=4, steps_per_epoch=29, pct_start=0.25, div_factor=10.0, final_div_factor=100.0, cycle_momentum=False, base_momentum=0.8, max_momentum=0.9)",
        {},
    ),
    ("torch.optim.lr_scheduler.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=10)", {}),
    (
        "torch.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1, step_size_up=7, step_size_down=13, mode='triangular2', cycle_momentum=False)",
        {},
    ),
    (
        "torch.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1, step_size_up=5, mode='exp_range', gamma=0.99, base_momentum=0.7, max_momentum=0.95)",
        {},
    ),
    (
        "torch.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1, step_size_up=5, scale_fn=lambda x: 0.5 ** x, scale_mode='iterations')",
        {},
    ),
    ("torch.optim.swa_utils.SWALR(opt, swa_lr=0.05)", {}),
    ("torch.optim.swa_utils.SWALR(opt, 0.05, anneal_epochs=20, anneal_strategy='linear')", {}),
    ("torch.optim.swa_utils.SWALR(opt, 0.05, anneal_epochs=0)", {}),
]


def _api(translation: Any) -> str:
    apis = {
        r.api for r in translation.conversions if SEMANTIC_MAP.apis[r.api].hook == "lr_scheduler"
    }
    return max(apis, key=lambda api: map_tolerance(api, False))


@pytest.mark.parametrize("exact", [False, True], ids=["stock", "exact"])
@pytest.mark.parametrize("scheduler,env", SCHEDULES, ids=[s for s, _ in SCHEDULES])
def test_schedule_values_match_torch(scheduler: str, env: dict[str, Any], exact: bool) -> None:
    source = training_module(SGD, scheduler)
    translation = translate(source, exact=exact)
    unexpected = [r.reason for r in translation.escapes if r.api != "torch.optim.Optimizer.step"]
    assert not unexpected
    assert "sched.step()" not in translation.code
    expected = torch_lrs(source, env)["lr"]
    actual = optax_lrs(translation.code, env)
    assert relative(expected, actual) < map_tolerance(_api(translation), exact), translation.code


MOMENTUM_CYCLES = [
    (
        "torch.optim.SGD(params, lr=0.1, momentum=0.9)",
        "torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=100)",
        "momentum",
    ),
    (
        "torch.optim.SGD(params, lr=0.1)",
        "torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=100, three_phase=True)",
        "momentum",
    ),
    (
        "torch.optim.Adam(params, lr=0.1)",
        "torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=100, anneal_strategy='linear')",
        "b1",
    ),
    (
        "torch.optim.SGD(params, lr=0.1, momentum=0.9)",
        "torch.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1, step_size_up=5, mode='triangular2')",
        "momentum",
    ),
]


@pytest.mark.parametrize(
    "optimizer,scheduler,name", MOMENTUM_CYCLES, ids=[s for _, s, _ in MOMENTUM_CYCLES]
)
def test_cycled_momentum_matches_torch(optimizer: str, scheduler: str, name: str) -> None:
    source = training_module(optimizer, scheduler)
    translation = translate(source)
    assert "optax.inject_hyperparams(" in translation.code
    expected = torch_lrs(source, {})["momentum"]
    assert relative(expected, optax_hyperparams(translation.code, {}, name)) < EXACT
    assert (
        relative(
            torch_lrs(source, {})["lr"], optax_hyperparams(translation.code, {}, "learning_rate")
        )
        < EXACT
    )


def clip_norm(max_norm: float, norm_type: float = 2.0):  # type: ignore[no-untyped-def]
    return lambda plist: torch.nn.utils.clip_grad_norm_(plist, max_norm, norm_type=norm_type)


def clip_value(value: float):  # type: ignore[no-untyped-def]
    return lambda plist: torch.nn.utils.clip_grad_value_(plist, value)


TRAINING = [
    # (optimizer, scheduler, clip source, torch clip, exact, tolerance api)
    (
        "torch.optim.SGD(params, lr=0.1, momentum=0.9)",
        "torch.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.5)",
        None,
        None,
        False,
    ),
    (
        "torch.optim.SGD(params, lr=0.1, momentum=0.9)",
        "torch.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.5)",
        None,
        None,
        True,
    ),
    (
        "torch.optim.AdamW(params, lr=0.02, weight_decay=0.1)",
        "torch.optim.lr_scheduler.SequentialLR(opt, [torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=10), torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=50, eta_min=1e-4)], milestones=[10])",
        None,
        None,
        True,
    ),
    (
        "torch.optim.Adam(params, lr=0.02)",
        "torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.02, total_steps=60)",
        None,
        None,
        False,
    ),
    (
        "torch.optim.SGD(params, lr=0.1, momentum=0.9)",
        "torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=60)",
        None,
        None,
        False,
    ),
    (
        "torch.optim.RMSprop(params, lr=0.01, momentum=0.9)",
        "torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.95)",
        None,
        None,
        True,
    ),
    (
        "torch.optim.Adam(params, lr=0.02)",
        "torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0 / (1.0 + 0.1 * k))",
        None,
        None,
        False,
    ),
    (
        "torch.optim.NAdam(params, lr=0.02, weight_decay=0.1)",
        "torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20)",
        None,
        None,
        True,
    ),
    (
        "torch.optim.Adagrad(params, lr=0.1, eps=0.0)",
        "torch.optim.lr_scheduler.MultiStepLR(opt, [10, 30])",
        None,
        None,
        False,
    ),
    (
        "torch.optim.SGD(params, lr=0.05)",
        None,
        "torch.nn.utils.clip_grad_norm_(params, 1.0)",
        clip_norm(1.0),
        False,
    ),
    (
        "torch.optim.SGD(params, lr=0.05)",
        None,
        "torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)",
        clip_norm(1.0),
        True,
    ),
    (
        "torch.optim.Adam(params, lr=0.02)",
        None,
        "torch.nn.utils.clip_grad_norm_(params, 1.0)",
        clip_norm(1.0),
        False,
    ),
    (
        "torch.optim.SGD(params, lr=0.05, weight_decay=0.1, maximize=True)",
        None,
        "torch.nn.utils.clip_grad_norm_(params, 0.5)",
        clip_norm(0.5),
        True,
    ),
    (
        "torch.optim.SGD(params, lr=0.05)",
        None,
        "torch.nn.utils.clip_grad_norm_(params, 1.0, norm_type=float('inf'))",
        clip_norm(1.0, float("inf")),
        True,
    ),
    (
        "torch.optim.SGD(params, lr=0.05, momentum=0.9)",
        None,
        "torch.nn.utils.clip_grad_value_(params, clip_value=0.5)",
        clip_value(0.5),
        False,
    ),
    (
        "torch.optim.SGD(params, lr=0.1, momentum=0.9)",
        "torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=30)",
        "torch.nn.utils.clip_grad_norm_(params, 1.0)",
        clip_norm(1.0),
        True,
    ),
]


@pytest.mark.parametrize(
    "optimizer,scheduler,clip,before_step,exact",
    TRAINING,
    ids=[f"{'exact: ' if t[4] else ''}{t[0]} + {t[1]} + {t[2]}" for t in TRAINING],
)
def test_training_trajectory_matches_torch(
    optimizer: str, scheduler: str | None, clip: str | None, before_step: Any, exact: bool
) -> None:
    rel, translation = measure_training(
        training_module(optimizer, scheduler, clip), before_step=before_step, exact=exact
    )
    assert (
        "sched.step()" not in translation.code
        and "clip_grad" not in translation.code.split("ESCAPE-BEGIN")[0]
    )
    apis = {r.api for r in translation.conversions}
    if clip:
        apis.add("torch.nn.utils." + clip.split("torch.nn.utils.")[1].split("(")[0])
    tolerance = max(map_tolerance(api, exact) for api in apis)
    assert rel < tolerance, f"rel={rel:.3e}\n{translation.code}"


def test_per_epoch_scheduler_translates_with_steps_per_epoch() -> None:
    source = training_module(
        "torch.optim.SGD(params, lr=0.1, momentum=0.9)",
        "torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)",
        per_epoch=True,
    )
    rel, translation = measure_training(source, steps_per_epoch=7, exact=True)
    assert "// (7)" in translation.code
    assert rel < EXACT, translation.code


def test_per_epoch_one_cycle_without_momentum_cycling_translates() -> None:
    source = training_module(
        "torch.optim.Adam(params, lr=0.01)",
        "torch.optim.lr_scheduler.OneCycleLR(opt, 0.05, total_steps=40, cycle_momentum=False)",
        per_epoch=True,
    )
    rel, translation = measure_training(source, steps_per_epoch=7, exact=True)
    assert "// (7)" in translation.code
    assert rel < EXACT, translation.code


def test_per_epoch_scheduler_escapes_without_steps_per_epoch() -> None:
    source = training_module(
        "torch.optim.SGD(params, lr=0.1)",
        "torch.optim.lr_scheduler.StepLR(opt, step_size=2)",
        per_epoch=True,
    )
    translation = translate(source)
    (record,) = [r for r in translation.escapes if "StepLR" in r.api]
    assert "once per epoch" in record.reason
    assert (
        "optax.sgd(learning_rate=0.1)" in translation.code
    )  # the optimizer itself still translates


@pytest.mark.parametrize(
    "scheduler,reason",
    [
        ("torch.optim.lr_scheduler.StepLR(opt, 10, last_epoch=5)", "resumes a schedule"),
        (
            "torch.optim.lr_scheduler.ChainedScheduler([torch.optim.lr_scheduler.ExponentialLR(opt, 0.9)])",
            "ChainedScheduler multiplies",
        ),
        (
            "torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode='max')",
            "mode='max' has no equivalent",
        ),
    ],
)
def test_untranslatable_schedulers_escape(scheduler: str, reason: str) -> None:
    translation = translate(training_module(SGD, scheduler))
    assert any(reason in r.reason for r in translation.escapes), [
        r.reason for r in translation.escapes
    ]


def test_momentum_cycling_needs_an_optimizer_with_momentum() -> None:
    translation = translate(
        training_module(
            "torch.optim.Adagrad(params, lr=0.1, eps=0.0)",
            "torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=10)",
        )
    )
    assert any("OneCycleLR" in r.api for r in translation.escapes)
    assert "optax.adagrad(learning_rate=0.1" in translation.code


def test_norm_of_clip_used_escapes() -> None:
    source = training_module(
        "torch.optim.SGD(params, lr=0.1)", clip="norm = torch.nn.utils.clip_grad_norm_(params, 1.0)"
    )
    translation = translate(source)
    assert "optax.sgd(learning_rate=0.1)" in translation.code


def test_reduce_lr_on_plateau_joins_the_chain_and_matches_with_the_value_protocol() -> None:
    import jax
    import jax.numpy as jnp
    import optax

    from tests.differential.harness import STEPS, execute, float64, linear_problem, rel_error

    source = training_module(
        "torch.optim.Adam(params, lr=0.05)",
        "torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2)",
    ).replace("    sched.step()", "    sched.step(loss)")
    translation = translate(source)
    assert "optax.contrib.reduce_on_plateau(" in translation.code
    (step,) = [r for r in translation.escapes if r.api.endswith("ReduceLROnPlateau.step")]
    assert "value=loss" in step.suggestion
    with float64():
        problem = linear_problem()
        params = {k: torch.tensor(v, requires_grad=True) for k, v in problem.init.items()}
        opt = execute(source, {"params": list(params.values()), "batches": []})
        torch_opt, sched = opt["opt"], opt["sched"]
        torch_traj = []
        for k in range(STEPS):
            torch_opt.zero_grad()
            loss = problem.torch_loss(params, k)
            loss.backward()
            torch_opt.step()
            sched.step(loss.item())
            torch_traj.append({n: p.detach().numpy().copy() for n, p in params.items()})
        tx = execute(translation.code, {"params": [], "batches": []})["opt"]
        jparams = {k: jnp.asarray(v) for k, v in problem.init.items()}
        state = tx.init(jparams)
        previous = jnp.finfo(jnp.float64).max
        optax_traj: dict[str, list[Any]] = {n: [] for n in jparams}
        for k in range(STEPS):
            loss, grads = jax.value_and_grad(problem.jax_loss)(jparams, k)
            updates, state = tx.update(grads, state, jparams, value=previous)
            jparams = optax.apply_updates(jparams, updates)
            previous = loss
            for n in jparams:
                optax_traj[n].append(jparams[n])
        stacked = {n: jnp.stack(v) for n, v in optax_traj.items()}
        assert (
            rel_error(problem, torch_traj, {n: v.__array__() for n, v in stacked.items()}) < EXACT
        )


def test_clip_bound_to_a_name_before_the_optimizer_folds_exactly() -> None:
    # Folded, `max_norm` is read once where the optimizer is built; unchanged since, it is the
    # value torch reads at every step.
    source = training_module(
        "torch.optim.SGD(params, lr=0.1, momentum=0.9)",
        clip="torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm)",
        prelude="max_norm = 0.5\nnorm = 2.0",
    )
    rel, translation = measure_training(source, before_step=clip_norm(0.5), exact=True)
    assert "optax_torch.clip_by_global_norm(max_norm, norm_type=norm)" in translation.code
    assert rel < EXACT, translation.code


def test_clip_bound_after_the_optimizer_is_not_folded() -> None:
    source = training_module(
        "torch.optim.SGD(params, lr=0.1)",
        clip="torch.nn.utils.clip_grad_norm_(params, max_norm)",
        prelude="",
    ).replace("for batch in batches:", "max_norm = 0.5\nfor batch in batches:")
    translation = translate(source)
    assert "clip_by_global_norm" not in translation.code
    assert "torch.nn.utils.clip_grad_norm_(params, max_norm)" in translation.code


PLATEAU_AT_THE_EPS_FLOOR = "torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.1, patience=0)"


def _plateau_lrs_of_the_translation(code: str, steps: int) -> list[float]:
    """The lr the translated plateau transform gives after each update (a metric that never
    improves: a reduction each time patience runs out)."""
    import jax.numpy as jnp

    from tests.differential.harness import execute, float64

    with float64():
        sched = execute(code, {"params": [], "batches": []})["sched"]
        params = {"w": jnp.zeros(2)}
        state = sched.init(params)
        lrs = []
        for _ in range(steps):
            _, state = sched.update(params, state, value=jnp.asarray(1.0))
            lrs.append(0.05 * float(state.scale))
    return lrs


def test_reduce_lr_on_plateau_stops_at_torchs_eps_floor() -> None:
    """torch skips a reduction whose decrement is <= eps (1e-8): it stops at 1e-8, not 1e-9."""
    from tests.differential.harness import execute, float64

    source = training_module("torch.optim.Adam(params, lr=0.05)", PLATEAU_AT_THE_EPS_FLOOR)
    source = source.replace("    sched.step()", "    sched.step(loss)")
    translation = translate(source)
    with float64():
        param = torch.zeros(2, requires_grad=True)
        scope = execute(source, {"params": [param], "batches": []})
        torch_opt, torch_sched = scope["opt"], scope["sched"]
        torch_lrs = []
        for _ in range(30):
            torch_sched.step(1.0)
            torch_lrs.append(torch_opt.param_groups[0]["lr"])
    assert min(torch_lrs) > 4e-9, torch_lrs  # torch stopped above the next reduction
    lrs = _plateau_lrs_of_the_translation(translation.code, 30)
    assert max(abs(a - b) / a for a, b in zip(torch_lrs, lrs, strict=True)) < EXACT  # each lr


def test_the_eps_floor_test_fails_without_the_floor() -> None:
    source = training_module("torch.optim.Adam(params, lr=0.05)", PLATEAU_AT_THE_EPS_FLOOR)
    source = source.replace("    sched.step()", "    sched.step(loss)")
    code = translate(source).code
    floorless = code.replace("min_scale=", "min_scale=0 * ")
    assert floorless != code
    lrs = _plateau_lrs_of_the_translation(floorless, 30)
    assert min(lrs) < 1e-12
