"""Schedulers built by a factory that receives the optimizer as a parameter, translated by the
codemod and run against torch (float64, 60 steps).

``sched = get_lr_scheduler(opt, ...)`` next to ``opt = AdamW(...)``, stepped once per update:
the schedule folds into the constructor with the factory's parameters replaced by what the
call passes (``analysis/factories.py``). The torch side runs the original ``fit`` (or the
trainer's ``train_step``); the optax side takes the translated optimizer as the caller builds
it and applies one update per step, as the training step's escape hatch says.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
import torch

from tests.differential.harness import (
    STEPS,
    Translation,
    execute,
    float64,
    linear_problem,
    rel_error,
    run_optax,
    translate,
)
from tests.differential.test_facts_across_scopes import (
    RecordingModel,
    TorchModel,
    fit_trajectory,
    map_tolerance,
)

FIT = """\
import torch
{imports}


def get_lr_scheduler(optimizer, warmup_steps, max_steps):
    return {scheduler}


def fit(model, loader, lr):
    total = {total}
    optimizer = {constructor}
    scheduler = get_lr_scheduler(optimizer, {warmup}, total)
    for k in loader:
        optimizer.zero_grad()
        loss = model(k)
        loss.backward()
        optimizer.step()
        scheduler.step()
"""

FUNCTION_CASES = {
    "lambda_warmup": {
        "imports": "",
        "scheduler": "torch.optim.lr_scheduler.LambdaLR(optimizer, "
        "lambda s: 1.0 / (1.0 + s / warmup_steps))",
        "constructor": "torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)",
        "warmup": "10",
        "total": "60",
    },
    "cosine_of_caller_name": {
        "imports": "",
        "scheduler": "torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, "
        "T_max=max_steps - warmup_steps, eta_min=1e-3)",
        "constructor": "torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)",
        "warmup": "5",
        "total": "len(loader)",
    },
    "transformers_cosine_with_warmup": {
        "imports": "from transformers import get_cosine_schedule_with_warmup",
        "scheduler": "get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=warmup_steps, "
        "num_training_steps=max_steps)",
        "constructor": "torch.optim.Adam(model.parameters(), lr=0.05, betas=(0.8, 0.99))",
        "warmup": "total // 6",
        "total": "50",
    },
    "one_cycle_momentum": {
        "imports": "",
        "scheduler": "torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.2, "
        "total_steps=max_steps, pct_start=warmup_steps / max_steps)",
        "constructor": "torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)",
        "warmup": "15",
        "total": "60",
    },
}


class CallerLocals:
    """A loader that records the locals of the function iterating it, and yields nothing:
    the translated ``fit`` builds its optimizer and stops before the (escaped) step."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}

    def __iter__(self) -> Any:
        self.seen = dict(sys._getframe(1).f_locals)
        return iter(())

    def __len__(self) -> int:
        return STEPS


def translated_optimizer(translation: Translation) -> Any:
    """The optax transformation the translated ``fit`` builds."""
    loader = CallerLocals()
    execute(translation.code, {})["fit"](object(), loader, 0.05)
    return loader.seen["optimizer"]


def torch_fit_trajectory(source: str) -> tuple[Any, list[dict[str, Any]]]:
    """The problem and the parameters after each update of the original ``fit``."""
    problem = linear_problem()
    return problem, fit_trajectory(source, problem, 0.05)


def fit_rel(source: str, translation: Translation) -> float:
    """rel between torch running ``source``'s ``fit`` and optax running the optimizer the
    translated ``fit`` builds (float64)."""
    with float64():
        problem, torch_traj = torch_fit_trajectory(source)
        optax_traj, _ = run_optax(problem, translated_optimizer(translation))
        return rel_error(problem, torch_traj, optax_traj)


@pytest.mark.parametrize("exact", [False, True], ids=["default", "exact"])
@pytest.mark.parametrize("case", list(FUNCTION_CASES), ids=list(FUNCTION_CASES))
def test_a_function_factory_schedule_folds_into_the_caller_optimizer_and_matches_torch(
    case: str, exact: bool
) -> None:
    source = FIT.format(**FUNCTION_CASES[case])
    translation = translate(source, exact=exact)
    assert [r.api for r in translation.escapes] == ["torch.optim.Optimizer.step"], [
        r.reason for r in translation.escapes
    ]
    assert "scheduler.step()" not in translation.code
    rel = fit_rel(source, translation)
    assert rel < map_tolerance(translation, exact, ""), f"rel={rel:.3e}\n{translation.code}"


def test_the_factory_comparison_fails_when_the_caller_passes_other_values() -> None:
    """The harness discriminates: the same translation run against torch with another
    warm-up than the one the call passes is far off."""
    case = FUNCTION_CASES["lambda_warmup"]
    translation = translate(FIT.format(**case))
    other = FIT.format(**{**case, "warmup": "20"})
    with float64():
        problem, torch_traj = torch_fit_trajectory(other)
        optax_traj, _ = run_optax(problem, translated_optimizer(translation))
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel > 1e-4


TRAINER = """\
import torch


class Trainer:
    def __init__(self, model, total):
        self.model = model
        self.optimizer = {constructor}
        self.scheduler = self.build_scheduler(self.optimizer, total)

    def build_scheduler(self, optimizer, total):
        return {scheduler}

    def train_step(self, k):
        self.optimizer.zero_grad()
        self.model(k).backward()
        self.optimizer.step()
        self.scheduler.step()
"""

METHOD_CASES = [
    (
        "torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)",
        "torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=1e-3)",
    ),
    (
        "torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.01)",
        "torch.optim.lr_scheduler.StepLR(optimizer, step_size=total // 6, gamma=0.5)",
    ),
]


def trainer_trajectory(source: str, problem: Any) -> list[dict[str, Any]]:
    """Parameters after each of the original trainer's ``train_step`` calls."""
    params = {k: torch.tensor(v, requires_grad=True) for k, v in problem.init.items()}
    trainer = execute(source, {})["Trainer"](TorchModel(problem, params), STEPS)
    out = []
    for k in range(STEPS):
        trainer.train_step(k)
        out.append({n: p.detach().numpy().copy() for n, p in params.items()})
    return out


@pytest.mark.parametrize("exact", [False, True], ids=["default", "exact"])
@pytest.mark.parametrize(
    "constructor,scheduler", METHOD_CASES, ids=[s.split("(")[0] for _, s in METHOD_CASES]
)
def test_a_method_factory_schedule_folds_into_self_optimizer_and_matches_torch(
    constructor: str, scheduler: str, exact: bool
) -> None:
    source = TRAINER.format(constructor=constructor, scheduler=scheduler)
    translation = translate(source, exact=exact)
    assert [r.api for r in translation.escapes] == ["torch.optim.Optimizer.step"], [
        r.reason for r in translation.escapes
    ]
    with float64():
        problem = linear_problem()
        torch_traj = trainer_trajectory(source, problem)
        model = RecordingModel(problem, {})
        optimizer = execute(translation.code, {})["Trainer"](model, STEPS).optimizer
        optax_traj, _ = run_optax(problem, optimizer)
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel < map_tolerance(translation, exact, ""), f"rel={rel:.3e}\n{translation.code}"


EVERY_K = """\
import torch


def get_lr_scheduler(optimizer, size):
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=size, gamma=0.5)


def fit(model, loader, lr):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = get_lr_scheduler(optimizer, 2)
    step = 0
    for k in loader:
        optimizer.zero_grad()
        loss = model(k)
        loss.backward()
        optimizer.step()
        step += 1
        if step % 3 == 0:
            scheduler.step()
"""


@pytest.mark.parametrize("exact", [False, True], ids=["default", "exact"])
def test_a_factory_schedule_stepped_every_k_updates_in_the_caller_matches_torch(
    exact: bool,
) -> None:
    translation = translate(EVERY_K, exact=exact)
    assert [r.api for r in translation.escapes] == ["torch.optim.Optimizer.step"], [
        r.reason for r in translation.escapes
    ]
    assert "// 3" in translation.code
    with float64():
        problem, torch_traj = torch_fit_trajectory(EVERY_K)
        optax_traj, _ = run_optax(problem, translated_optimizer(translation))
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel < map_tolerance(translation, exact, ""), f"rel={rel:.3e}\n{translation.code}"
