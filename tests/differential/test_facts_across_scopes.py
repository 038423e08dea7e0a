"""Facts across the methods of a class, translated by the codemod and run against torch
(float64, 60 steps).

A trainer keeps its model as ``self.model = model`` and builds its optimizer over
``model.parameters()`` in ``__init__``; its training step clips ``self.model.parameters()``
before ``self.opt.step()``. The two are one model object (the program stores ``.model`` once),
so the clip folds into the optimizer's chain. The torch side runs the original class's
``train_step``; the optax side takes the translated class's ``opt`` and applies one update per
step, as the training step's escape hatch says.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ml_switcheroo.targets.catalogue import load_semantic_map
from tests.differential.harness import (
    EXACT,
    STEPS,
    Problem,
    Translation,
    execute,
    float64,
    linear_problem,
    rel_error,
    run_optax,
    translate,
)

TRAINER = """\
import torch


class Trainer:
    def __init__(self, model, lr):
        self.model = model
        self.opt = {constructor}

    def train_step(self, k):
        self.opt.zero_grad()
        loss = self.model(k)
        loss.backward()
        {clip}
        self.opt.step()
"""

CASES = [
    (
        "torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=0.01)",
        "torch.nn.utils.clip_grad_norm_(self.model.parameters(), 0.5)",
    ),
    (
        "torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.8, 0.99), weight_decay=0.1)",
        "torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=0.3)",
    ),
    (
        "torch.optim.Adam(model.parameters(), lr=lr)",
        "torch.nn.utils.clip_grad_value_(self.model.parameters(), 0.05)",
    ),
]


class TorchModel:
    """A model object: its parameters, and the step's loss when called."""

    def __init__(self, problem: Problem, params: dict[str, torch.Tensor]) -> None:
        self.problem, self.params = problem, params

    def parameters(self) -> Any:
        return iter(self.params.values())

    def __call__(self, k: int) -> torch.Tensor:
        return self.problem.torch_loss(self.params, k)


def torch_trajectory(source: str, problem: Problem, lr: float) -> list[dict[str, Any]]:
    """Parameters after each of the original trainer's ``train_step`` calls."""
    params = {k: torch.tensor(v, requires_grad=True) for k, v in problem.init.items()}
    trainer = execute(source, {})["Trainer"](TorchModel(problem, params), lr)
    out = []
    for k in range(STEPS):
        trainer.train_step(k)
        out.append({n: p.detach().numpy().copy() for n, p in params.items()})
    return out


SEMANTIC_MAP = load_semantic_map()


def map_tolerance(translation: Translation, exact: bool, clip: str) -> float:
    """The largest tolerance the map gives the converted entries and the clip folded into
    the chain (``EXACT`` when all are exact): clip_grad_norm_'s 1e-6 (torch's + 1e-6 in the
    norm), a schedule's float32 evaluation; both exact under ``--exact``."""
    apis = {record.api for record in translation.conversions}
    if clip.startswith("torch.nn.utils."):
        apis.add(clip.split("(")[0])
    tolerances = [EXACT]
    for api in apis:
        entry = SEMANTIC_MAP.apis.get(api)
        if entry is not None and entry.status_for(exact) == "approximate" and entry.tolerance:
            tolerances.append(entry.tolerance)
    return max(tolerances)


@pytest.mark.parametrize("exact", [False, True], ids=["default", "exact"])
@pytest.mark.parametrize("constructor,clip", CASES, ids=[c for _, c in CASES])
def test_a_clip_of_self_model_folds_into_the_optimizer_over_model(
    constructor: str, clip: str, exact: bool
) -> None:
    source = TRAINER.format(constructor=constructor, clip=clip)
    translation = translate(source, exact=exact)
    assert "self.opt = optax.chain(" in translation.code, translation.code
    assert [r.reason for r in translation.escapes if "clip" in r.api] == []
    with float64():
        problem = linear_problem()
        torch_traj = torch_trajectory(source, problem, 0.05)
        trainer = execute(translation.code, {})["Trainer"](object(), 0.05)
        optax_traj, _ = run_optax(problem, trainer.opt)
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel < map_tolerance(translation, exact, clip), f"rel={rel:.3e}\n{translation.code}"


def test_the_clip_binds_so_the_comparison_can_fail() -> None:
    """The trainer translated without its clip is far from torch with it: the clip binds."""
    constructor, clip = CASES[0]
    source = TRAINER.format(constructor=constructor, clip=clip)
    unclipped = translate(TRAINER.format(constructor=constructor, clip="pass"))
    assert "clip" not in unclipped.code
    with float64():
        problem = linear_problem()
        torch_traj = torch_trajectory(source, problem, 0.05)
        trainer = execute(unclipped.code, {})["Trainer"](object(), 0.05)
        optax_traj, _ = run_optax(problem, trainer.opt)
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel > 1e-3, f"rel={rel:.3e}"


# ----------------------------------------------------------------------------- builders

BUILDER = """\
import torch


def build(net, lr):
    opt = {constructor}
    sched = {scheduler}
    return opt, sched


def fit(model, loader, lr):
    opt, sched = build(model, lr)
    for k in loader:
        opt.zero_grad()
        loss = model(k)
        loss.backward()
        {clip}
        opt.step()
        sched.step()
"""

BUILDER_CASES = [
    (
        "torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True)",
        "torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.5)",
        "pass",
    ),
    (
        "torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.1)",
        "torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=40, eta_min=1e-4)",
        "torch.nn.utils.clip_grad_value_(model.parameters(), 0.05)",
    ),
    (
        "torch.optim.Adam(net.parameters(), lr=lr, betas=(0.8, 0.99))",
        "torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.97)",
        "torch.nn.utils.clip_grad_norm_(model.parameters(), 0.4)",
    ),
]


class RecordingModel(TorchModel):
    """A model object that keeps the parameters it is called with (those before an update)."""

    def __init__(self, problem: Problem, params: dict[str, torch.Tensor]) -> None:
        super().__init__(problem, params)
        self.seen: list[dict[str, Any]] = []

    def __call__(self, k: int) -> torch.Tensor:
        self.seen.append({n: p.detach().numpy().copy() for n, p in self.params.items()})
        return super().__call__(k)


def fit_trajectory(source: str, problem: Problem, lr: float) -> list[dict[str, Any]]:
    """Parameters after each update of the original module's ``fit``."""
    params = {k: torch.tensor(v, requires_grad=True) for k, v in problem.init.items()}
    model = RecordingModel(problem, params)
    execute(source, {})["fit"](model, range(STEPS), lr)
    return [*model.seen[1:], {n: p.detach().numpy().copy() for n, p in params.items()}]


@pytest.mark.parametrize("exact", [False, True], ids=["default", "exact"])
@pytest.mark.parametrize(
    "constructor,scheduler,clip", BUILDER_CASES, ids=[c.split("(")[0] for c, _, _ in BUILDER_CASES]
)
def test_a_builder_returning_optimizer_and_scheduler_reproduces_torch(
    constructor: str, scheduler: str, clip: str, exact: bool
) -> None:
    source = BUILDER.format(constructor=constructor, scheduler=scheduler, clip=clip)
    translation = translate(source, exact=exact)
    assert translation.escapes == [] or all(
        r.api == "torch.optim.Optimizer.step" for r in translation.escapes
    ), [r.reason for r in translation.escapes]
    assert "sched.step()" not in translation.code
    with float64():
        problem = linear_problem()
        torch_traj = fit_trajectory(source, problem, 0.05)
        opt, _ = execute(translation.code, {})["build"](object(), 0.05)
        optax_traj, _ = run_optax(problem, opt)
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel < map_tolerance(translation, exact, clip), f"rel={rel:.3e}\n{translation.code}"


# ----------------------------------------------------------------------------- subclasses

FAMILY = """\
import torch


class Base:
    def __init__(self, model, lr):
        self.model = model
        self.opt = {constructor}
        self.sched = {scheduler}


class Child(Base):
    def train_step(self, k):
        self.opt.zero_grad()
        loss = self.model(k)
        loss.backward()
        torch.nn.utils.clip_grad_value_(self.model.parameters(), 0.05)
        self.opt.step()
        self.sched.step()
"""

FAMILY_CASES = [
    (
        "torch.optim.SGD(model.parameters(), lr=lr, momentum=0.8, weight_decay=0.01)",
        "torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=50)",
    ),
    (
        "torch.optim.Adam(model.parameters(), lr=lr, betas=(0.85, 0.99), weight_decay=0.01)",
        "torch.optim.lr_scheduler.LinearLR(self.opt, start_factor=0.2, total_iters=20)",
    ),
]


@pytest.mark.parametrize("exact", [False, True], ids=["default", "exact"])
@pytest.mark.parametrize(
    "constructor,scheduler", FAMILY_CASES, ids=[c.split("(")[0] for c, _ in FAMILY_CASES]
)
def test_a_subclass_stepping_the_base_optimizer_reproduces_torch(
    constructor: str, scheduler: str, exact: bool
) -> None:
    source = FAMILY.format(constructor=constructor, scheduler=scheduler)
    translation = translate(source, exact=exact)
    assert "self.sched.step()" not in translation.code
    assert "clip_grad_value_" not in translation.code.split("class Child")[0]
    with float64():
        problem = linear_problem()
        params = {k: torch.tensor(v, requires_grad=True) for k, v in problem.init.items()}
        child = execute(source, {})["Child"](TorchModel(problem, params), 0.05)
        torch_traj = []
        for k in range(STEPS):
            child.train_step(k)
            torch_traj.append({n: p.detach().numpy().copy() for n, p in params.items()})
        translated = execute(translation.code, {})["Child"](object(), 0.05)
        optax_traj, _ = run_optax(problem, translated.opt)
        rel = rel_error(problem, torch_traj, optax_traj)
    clip = "torch.nn.utils.clip_grad_value_("
    assert rel < map_tolerance(translation, exact, clip), f"rel={rel:.3e}\n{translation.code}"
