"""A scheduler's ``verbose``, which torch 2.13 removed (the map's ``removed: [verbose]``).

Older torch took ``verbose`` on every scheduler but ChainedScheduler and SWALR, and it only
printed the lr; torch 2.13 raises TypeError on it. The codemod drops it when it is given by
keyword with a literal or a plain name: its own output for the call with ``verbose`` is the
output for the call without it, and gives, update by update, the lr torch 2.13 gives for the
call without it (float64; rel < 1e-9, or the entry's tolerance in the stock output). Given by
position, or with a value that may run code (``verbose=f()``, ``verbose=cfg.verbose``), the
call escapes with the reason: dropping it would lose the value or what computing it does.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

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

SGD = "torch.optim.SGD(params, lr=0.1)"
STEPS = 300  # updates compared: past every milestone, cycle and restart below
S = "torch.optim.lr_scheduler."

# each call with `{verbose}` where older code passes it
SCHEDULERS: list[str] = [
    f"{S}StepLR(opt, 7, gamma=0.5{{verbose}})",
    f"{S}MultiStepLR(opt, milestones=[30, 80, 80], gamma=0.3{{verbose}})",
    f"{S}ConstantLR(opt, factor=0.5, total_iters=10{{verbose}})",
    f"{S}LinearLR(opt, start_factor=0.1, end_factor=0.5, total_iters=20{{verbose}})",
    f"{S}ExponentialLR(opt, gamma=0.98{{verbose}})",
    f"{S}PolynomialLR(opt, total_iters=150, power=2.0{{verbose}})",
    f"{S}CosineAnnealingLR(opt, T_max=40, eta_min=1e-3{{verbose}})",
    f"{S}CosineAnnealingWarmRestarts(opt, T_0=10, T_mult=2, eta_min=1e-3{{verbose}})",
    f"{S}LambdaLR(opt, lambda k: 0.99 ** k{{verbose}})",
    f"{S}MultiplicativeLR(opt, lr_lambda=lambda k: 0.995{{verbose}})",
    f"{S}OneCycleLR(opt, max_lr=0.1, total_steps={STEPS}{{verbose}})",
    f"{S}CyclicLR(opt, 0.01, 0.1, step_size_up=7, step_size_down=13, mode='triangular2'{{verbose}})",
    # verbose on the sequence and on each part
    f"{S}SequentialLR(opt, [{S}LinearLR(opt, start_factor=0.01, total_iters=10{{verbose}}), "
    f"{S}CosineAnnealingLR(opt, T_max=90{{verbose}})], milestones=[10]{{verbose}})",
]

# the values older code passes: literals (torch 2.2-2.12's default was "deprecated") and a
# plain name, whose evaluation runs no code
VERBOSE: list[tuple[str, dict[str, Any]]] = [
    (", verbose=True", {}),
    (", verbose=False", {}),
    (", verbose='deprecated'", {}),
    (", verbose=show", {"show": True}),
]


def _name(scheduler: str) -> str:
    return scheduler.removeprefix(S).partition("(")[0]


def _tolerance(translation: Any, exact: bool) -> float:
    """The bar of the loosest scheduler converted (a sequence and its parts)."""
    apis = {r.api for r in translation.conversions if r.api.startswith(S)}
    return max(map_tolerance(api, exact) for api in apis)


@pytest.mark.parametrize("exact", [False, True], ids=["stock", "exact"])
@pytest.mark.parametrize("verbose,env", VERBOSE, ids=[v.strip(", ") for v, _ in VERBOSE])
@pytest.mark.parametrize("scheduler", SCHEDULERS, ids=_name)
def test_verbose_is_dropped_and_the_lrs_are_torch_2_13s_without_it(
    scheduler: str, verbose: str, env: dict[str, Any], exact: bool
) -> None:
    with_verbose = training_module(SGD, scheduler.format(verbose=verbose))
    without = training_module(SGD, scheduler.format(verbose=""))
    translation = translate(with_verbose, exact=exact)
    unexpected = [r.reason for r in translation.escapes if r.api != "torch.optim.Optimizer.step"]
    assert not unexpected
    assert "verbose" not in translation.code and "sched.step()" not in translation.code
    # the same output as for the call torch 2.13 takes
    assert translation.code == translate(without, exact=exact).code
    expected = torch_lrs(without, env, steps=STEPS)["lr"]  # torch 2.13, without verbose
    actual = optax_lrs(translation.code, env, steps=STEPS)
    assert relative(expected, actual) < _tolerance(translation, exact), translation.code


def test_torch_2_13_has_no_verbose() -> None:
    """The premise: torch 2.13 refuses the call with ``verbose``, so the lrs to match are the
    ones of the call without it."""
    with float64(), pytest.raises(TypeError, match="verbose"):
        opt = torch.optim.SGD([torch.zeros(3, requires_grad=True)], lr=0.1)
        torch.optim.lr_scheduler.StepLR(opt, 7, verbose=True)


PLATEAU = f"{S}ReduceLROnPlateau(opt, factor=0.5, patience=2, threshold=0.01{{verbose}})"


def _plateau_source(verbose: str) -> str:
    source = training_module("torch.optim.Adam(params, lr=0.05)", PLATEAU.format(verbose=verbose))
    return source.replace("    sched.step()", "    sched.step(loss)")


@pytest.mark.parametrize("verbose,env", VERBOSE, ids=[v.strip(", ") for v, _ in VERBOSE])
def test_reduce_lr_on_plateau_drops_verbose(verbose: str, env: dict[str, Any]) -> None:
    """The plateau transform's lr after each update equals torch 2.13's (no verbose) for a
    metric that improves, stalls and improves again."""
    import jax.numpy as jnp

    from tests.differential.harness import execute

    translation = translate(_plateau_source(verbose))
    assert "optax.contrib.reduce_on_plateau(" in translation.code
    assert "verbose" not in translation.code
    assert translation.code == translate(_plateau_source("")).code
    metrics = [1.0 / (1 + k) if k % 40 < 15 else 0.5 for k in range(STEPS)]
    with float64():
        param = torch.zeros(2, requires_grad=True)
        scope = execute(_plateau_source(""), {**env, "params": [param], "batches": []})
        torch_opt, torch_sched = scope["opt"], scope["sched"]
        expected = []
        for metric in metrics:
            torch_sched.step(metric)
            expected.append(float(torch_opt.param_groups[0]["lr"]))
        sched = execute(translation.code, {**env, "params": [], "batches": []})["sched"]
        params = {"w": jnp.zeros(2)}
        state = sched.init(params)
        actual = []
        for metric in metrics:
            _, state = sched.update(params, state, value=jnp.asarray(metric))
            actual.append(0.05 * float(state.scale))
    assert min(expected) < 0.05 / 4  # the metric made torch reduce the lr a few times
    assert relative(expected, actual) < EXACT


# ----------------------------------------------------------------------------- traps


def _scheduler_escape(source: str) -> Any:
    translation = translate(source)
    (record,) = [r for r in translation.escapes if r.api.startswith(S)]
    assert "learning_rate=sched" not in translation.code
    return translation, record


@pytest.mark.parametrize(
    "verbose",
    ["verbose=f()", "verbose=cfg.verbose", "verbose=flags['verbose']", "verbose=(n := True)"],
)
def test_a_value_that_may_run_code_escapes(verbose: str) -> None:
    source = training_module(SGD, f"{S}StepLR(opt, 7, gamma=0.5, {verbose})")
    translation, record = _scheduler_escape(source)
    assert "argument `verbose` was removed in torch 2.13" in record.reason
    assert "would lose the value" in record.reason
    assert f"StepLR(opt, 7, gamma=0.5, {verbose})" in translation.code  # kept as written


def test_a_call_in_verbose_of_a_sequence_part_escapes_the_sequence() -> None:
    part = f"{S}LinearLR(opt, start_factor=0.1, total_iters=10, verbose=f())"
    source = training_module(
        SGD, f"{S}SequentialLR(opt, [{part}, {S}ExponentialLR(opt, 0.9)], milestones=[10])"
    )
    translation = translate(source)
    assert "learning_rate=sched" not in translation.code
    assert "verbose=f()" in translation.code
    reasons = [r.reason for r in translation.escapes if r.api.startswith(S)]
    assert any("argument `verbose` was removed" in r for r in reasons), reasons


@pytest.mark.parametrize(
    "call",
    [
        f"{S}StepLR(opt, 7, 0.5, -1, True)",
        f"{S}ExponentialLR(opt, 0.9, -1, False)",
        f"{S}LambdaLR(opt, lambda k: 0.9 ** k, -1, show)",
    ],
)
def test_verbose_given_by_position_escapes(call: str) -> None:
    translation, record = _scheduler_escape(training_module(SGD, call))
    assert "too many positional arguments" in record.reason
    assert "older torch took `verbose` there" in record.reason
    assert "dropped only when given by keyword" in record.reason
    assert call in translation.code


def test_an_unknown_argument_still_escapes() -> None:
    source = training_module(SGD, f"{S}StepLR(opt, 7, gamma=0.5, verbos=True)")
    _, record = _scheduler_escape(source)
    assert "unknown argument `verbos`" in record.reason


@pytest.mark.parametrize(
    "scheduler",
    [
        # ChainedScheduler and SWALR never took verbose
        f"{S}ChainedScheduler([{S}ExponentialLR(opt, 0.9)], verbose=True)",
        "torch.optim.swa_utils.SWALR(opt, swa_lr=0.05, verbose=True)",
    ],
)
def test_a_scheduler_that_never_had_verbose_escapes_on_it(scheduler: str) -> None:
    translation = translate(training_module(SGD, scheduler))
    reasons = [r.reason for r in translation.escapes if r.api.startswith("torch.optim.")]
    assert any("unknown argument `verbose`" in r for r in reasons), reasons


def test_the_dropped_keyword_leaves_no_trace_in_a_multi_line_call() -> None:
    call = f"{S}StepLR(\n    opt,\n    7,  # every 7 updates\n    verbose=True,\n    gamma=0.5,\n)"
    translation = translate(training_module(SGD, call))
    assert not [r for r in translation.escapes if r.api.startswith(S)]
    assert "verbose" not in translation.code


# ----------------------------------------------------------------------------- NNX


NNX_LOOPS = {
    "plateau_per_epoch": (
        "ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.05{verbose})",
        "SGD(model.parameters(), lr=0.1, momentum=0.9)",
        "        opt.step()\n        losses.append(loss.item())\n    sched.step(loss.item())\n",
    ),
    "step_lr_per_update": (
        "StepLR(opt, 5, gamma=0.5{verbose})",
        "Adam(model.parameters(), lr=0.05)",
        "        opt.step()\n        sched.step()\n        losses.append(loss.item())\n",
    ),
}
NNX_LOOP = """\
import torch

model = make_model()
opt = torch.optim.{optimizer}
sched = torch.optim.lr_scheduler.{scheduler}
for epoch in range(EPOCHS * 4):
    for i, (x, y) in enumerate(loader):
        if i >= 3:
            break
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
{step}"""


@pytest.mark.parametrize("exact", [False, True], ids=["stock", "exact"])
@pytest.mark.parametrize("name", sorted(NNX_LOOPS))
def test_the_nnx_target_drops_verbose(name: str, exact: bool) -> None:
    """The NNX translation with ``verbose=True`` is the one without, and run it matches torch
    2.13 without verbose (losses and final weights, float64; the stock StepLR within its
    entry's tolerance)."""
    from ml_switcheroo.spec.escape_hatch import BEGIN
    from tests.differential.nnx_loops import translate_nnx, translated_rel

    scheduler, optimizer, step = NNX_LOOPS[name]

    def loop(verbose: str) -> str:
        return NNX_LOOP.format(
            optimizer=optimizer, scheduler=scheduler.format(verbose=verbose), step=step
        )

    translated = translate_nnx(loop(", verbose=True"), exact=exact)
    assert BEGIN not in translated and "verbose" not in translated, translated
    without, rel = translated_rel(loop(""), exact=exact)
    assert translated == without
    tolerance = map_tolerance(S + scheduler.partition("(")[0], exact)  # StepLR: float32 count
    assert rel < tolerance, f"{name}: rel {rel:.3e}"
