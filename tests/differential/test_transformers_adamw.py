"""transformers.AdamW (transformers 4.x; transformers 5 removed it) is neither torch's nor optax's
AdamW. The codemod's own optax output, run against transformers' algorithm
(``TransformersAdamW``, the step of transformers 4.x's ``optimization.AdamW``), float64,
60 updates: constant lr, transformers' linear-warmup schedule, clip_grad_norm_ and
correct_bias=False; the trap twins escape.

``TransformersAdamW`` (tests/differential/transformers_adamw.py) was checked against
transformers 4.46.3 itself."""

from __future__ import annotations

import jax.numpy as jnp
import optax
import pytest
import torch
import transformers

from tests.differential.harness import (
    EXACT,
    execute,
    float64,
    linear_problem,
    map_tolerance,
    measure_training,
    rel_error,
    run_optax,
    run_torch,
    training_module,
    translate,
)
from tests.differential.transformers_adamw import TransformersAdamW, patched


@pytest.fixture(autouse=True)
def transformers_4(monkeypatch: pytest.MonkeyPatch) -> None:
    """The torch side runs ``transformers.AdamW`` as transformers 4.x steps it."""
    patched(monkeypatch)


FROM = "from transformers import AdamW, get_linear_schedule_with_warmup"
CASES = {  # the constructor's arguments after params
    "defaults": "lr=0.05",
    "weight_decay": "lr=0.05, weight_decay=0.3, eps=0.1",
    "no_bias_correction": "lr=0.05, betas=(0.8, 0.9), eps=0.01, correct_bias=False",
    "no_bias_correction_decay": "lr=0.05, weight_decay=0.2, correct_bias=False",
    "positional": "0.05, (0.8, 0.95), 1e-3, 0.25",
    "no_deprecation_warning": "lr=0.05, weight_decay=0.1, no_deprecation_warning=True",
    "decay_of_a_name": "lr=0.05, weight_decay=wd",
    "negative_decay": "lr=0.05, weight_decay=-0.3",  # transformers decays only when > 0
    # names the template's lambdas would capture (`rate`, `decay`) or defer (`b2`, `e`)
    "names": "lr=rate, betas=(0.8, b2), eps=e, weight_decay=decay",
}
NAMES = {"wd": 0.3, "rate": 0.05, "b2": 0.95, "e": 0.01, "decay": 0.2}
LINEAR = "get_linear_schedule_with_warmup(opt, num_warmup_steps=6, num_training_steps=60)"
CLIP = "torch.nn.utils.clip_grad_norm_(params, 0.5)"


def clip(plist: list[torch.Tensor]) -> None:
    torch.nn.utils.clip_grad_norm_(plist, 0.5)


def measured(
    arguments: str, scheduler: str | None = None, clipped: bool = False, exact: bool = False
) -> float:
    """rel between transformers 4.x and the translated training of ``AdamW(params, ...)``."""
    source = training_module(
        f"AdamW(params, {arguments})", scheduler, CLIP if clipped else None, prelude=FROM
    )
    rel, translation = measure_training(
        source, before_step=clip if clipped else None, env=NAMES, exact=exact
    )
    others = [r.reason for r in translation.escapes if r.api != "torch.optim.Optimizer.step"]
    assert not others, others  # the optax step is always an escape
    assert "transformers.AdamW" in {r.api for r in translation.conversions}
    return rel


@pytest.mark.parametrize("name", sorted(CASES))
def test_constant_lr_matches_transformers_adamw(name: str) -> None:
    rel = measured(CASES[name])
    assert rel < EXACT, f"rel {rel:.3e}"


@pytest.mark.parametrize(
    "name", ["weight_decay", "no_bias_correction_decay", "decay_of_a_name", "names"]
)
def test_linear_warmup_matches_transformers_adamw(name: str) -> None:
    rel = measured(CASES[name], LINEAR)
    assert rel < EXACT, f"rel {rel:.3e}"


@pytest.mark.parametrize("name", ["weight_decay", "no_bias_correction_decay"])
def test_clipped_linear_warmup_matches_transformers_adamw(name: str) -> None:
    rel = measured(CASES[name], LINEAR, clipped=True)
    assert rel < EXACT, f"rel {rel:.3e}"


@pytest.mark.parametrize(
    "scheduler",
    [
        "torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20)",
        "torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.5)",
    ],
)
def test_a_torch_scheduler_matches_transformers_adamw(scheduler: str) -> None:
    """Within the scheduler's own bar (StepLR: optax's float32 staircase, the map's 1e-6)."""
    rel = measured(CASES["weight_decay"], scheduler)
    bar = map_tolerance(scheduler.partition("(")[0], exact=False)
    assert rel < bar, f"rel {rel:.3e}"


def test_exact_mode_evaluates_step_lr_in_float64() -> None:
    """--exact: the same chain, StepLR on a float64 count (optax_torch.float64_count)."""
    rel = measured(
        CASES["weight_decay"], "torch.optim.lr_scheduler.StepLR(opt, 7, 0.5)", exact=True
    )
    assert rel < EXACT, f"rel {rel:.3e}"


def test_the_decay_takes_the_scheduled_lr() -> None:
    """Discriminates: the same chain decaying with the base lr instead of the scheduled one is
    far from transformers (its decay is p * (1 - lr_t * wd))."""
    schedule = optax.join_schedules(
        [optax.linear_schedule(0.0, 0.05, 6), optax.linear_schedule(0.05, 0.0, 54)], [6]
    )
    tx = optax.chain(
        optax.inject_hyperparams(optax.scale_by_adam)(
            b1=0.9, b2=0.999, eps=lambda count: 0.1 / jnp.sqrt(1 - 0.999 ** (count + 1))
        ),
        optax.scale(1 - 0.05 * 0.3),
        optax.add_decayed_weights(0.3),
        optax.scale_by_learning_rate(schedule),
    )
    with float64():
        problem = linear_problem()
        torch_traj = run_torch(
            problem,
            lambda plist: TransformersAdamW(plist, lr=0.05, weight_decay=0.3, eps=0.1),
            make_sched=lambda opt: transformers.get_linear_schedule_with_warmup(opt, 6, 60),
        )
        optax_traj, _ = run_optax(problem, tx)
        assert rel_error(problem, torch_traj, optax_traj) > 1e-6


def test_optax_adamw_is_not_transformers_adamw() -> None:
    """Why it has a chain of its own: optax.adamw with the same numbers is far off."""
    with float64():
        problem = linear_problem()
        torch_traj = run_torch(
            problem, lambda plist: TransformersAdamW(plist, lr=0.05, weight_decay=0.3, eps=0.1)
        )
        tx = optax.adamw(learning_rate=0.05, eps=0.1, weight_decay=0.3)
        optax_traj, _ = run_optax(problem, tx)
        assert rel_error(problem, torch_traj, optax_traj) > 1e-3


def test_a_module_attribute_translates() -> None:
    source = "import torch\nimport transformers\n\nopt = transformers.AdamW(params, lr=0.05)\n"
    translation = translate(source)
    assert not translation.escapes and "optax.chain(" in translation.code, translation.code
    with float64():
        problem = linear_problem()
        torch_traj = run_torch(problem, lambda plist: TransformersAdamW(plist, lr=0.05))
        jax_params = [jnp.asarray(v) for v in problem.init.values()]
        tx = execute(translation.code, {"params": jax_params})["opt"]
        optax_traj, _ = run_optax(problem, tx)
        assert rel_error(problem, torch_traj, optax_traj) < EXACT


# ------------------------------------------------------------------------------ trap twins


def escaped(source: str) -> list[str]:
    """The reasons of the escapes of ``transformers.AdamW`` in ``source``'s translation."""
    return [r.reason for r in translate(source).escapes if r.api == "transformers.AdamW"]


def test_an_unknown_keyword_escapes() -> None:
    (reason,) = escaped(f"{FROM}\n\nopt = AdamW(params, lr=0.05, amsgrad=True)\n")
    assert "unknown argument `amsgrad`" in reason, reason


def test_a_correct_bias_that_is_not_a_literal_escapes() -> None:
    (reason,) = escaped(f"{FROM}\n\nopt = AdamW(params, lr=0.05, correct_bias=flag)\n")
    assert "`correct_bias`" in reason, reason


@pytest.mark.parametrize("value", ["0", "None", '""', "1"])
def test_a_correct_bias_literal_that_is_no_bool_escapes(value: str) -> None:
    """transformers tests `if group["correct_bias"]:`: 0, None and "" are False (probe p40b:
    0 was taken for True, 1.07 off)."""
    (reason,) = escaped(f"{FROM}\n\nopt = AdamW(params, lr=0.05, correct_bias={value})\n")
    assert f"`correct_bias={value}` is no bool" in reason


def test_betas_of_a_list_changed_after_the_construction_escape() -> None:
    """transformers keeps the betas object and unpacks it at every step (probe p40b: a list
    changed per epoch was read once, 0.28 off)."""
    source = f"{FROM}\n\nbt = [0.9, 0.99]\nopt = AdamW(params, lr=0.05, betas=bt)\nbt[1] = 0.5\n"
    (reason,) = escaped(source)
    assert "`betas=bt` is no literal" in reason


def test_a_star_import_is_not_resolved_to_transformers() -> None:
    source = "from transformers import *\nfrom torch.optim import *\n\nopt = AdamW(params)\n"
    translation = translate(source)
    assert translation.code == source and not translation.conversions, translation.code


def test_a_shadowing_function_is_not_transformers_adamw() -> None:
    source = (
        f"{FROM}\n\n\ndef AdamW(params, lr):\n    return torch.optim.SGD(params, lr=lr)\n\n\n"
        "opt = AdamW(params, lr=0.05)\n"
    )
    translation = translate(source)
    assert "transformers.AdamW" not in {r.api for r in translation.records}, translation.code
    assert "opt = AdamW(params, lr=0.05)" in translation.code


def test_a_name_imported_from_both_escapes() -> None:
    source = f"{FROM}\nfrom torch.optim import AdamW\n\nopt = AdamW(params, lr=0.05)\n"
    translation = translate(source)
    assert not translation.conversions, translation.code
    (record,) = translation.escapes
    assert "also imported from transformers" in record.reason, record.reason


def test_groups_split_by_name_escape_with_a_mask_suggestion() -> None:
    source = f"""{FROM}

no_decay = ["bias", "LayerNorm.weight"]
groups = [
    {{"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)], "weight_decay": 0.01}},
    {{"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)], "weight_decay": 0.0}},
]
opt = AdamW(groups, lr=5e-5, eps=1e-8)
"""
    (record,) = [r for r in translate(source).escapes if r.api == "transformers.AdamW"]
    assert "split by parameter names" in record.reason, record.reason
    assert "mask=" in (record.suggestion or ""), record.suggestion


def test_groups_split_by_rank_escape() -> None:
    """torch.optim.AdamW's rank split becomes a mask on optax.adamw; transformers.AdamW's
    decay is not such a call."""
    source = f"""{FROM}

groups = [
    {{"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": 0.1}},
    {{"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0}},
]
opt = AdamW(groups, lr=5e-5)
"""
    (reason,) = escaped(source)
    assert "outside a transformation that takes a mask" in reason, reason


def test_a_plateau_scheduler_is_not_folded() -> None:
    """ReduceLROnPlateau scales the whole update; transformers' update has an lr * lr term."""
    source = training_module(
        "AdamW(params, lr=0.05, weight_decay=0.1)",
        "torch.optim.lr_scheduler.ReduceLROnPlateau(opt)",
        prelude=FROM,
    )
    (reason,) = escaped(source)
    assert "not proportional to its learning rate" in reason, reason
