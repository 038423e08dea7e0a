"""A scheduler stepped once per epoch after a call of a function or method that loops over the
epoch's batches and steps the optimizer: with ``--steps-per-epoch`` it folds as
``schedule(count // steps)`` (torch running the source's own epochs against optax running the
translated optimizer, float64, 60 updates); without it, it escapes naming the call."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jax.numpy as jnp
import libcst as cst
import numpy as np
import torch
from libcst.codemod import CodemodContext

from ml_switcheroo.codemods.optimizer import TorchToOptax
from ml_switcheroo.rewrite.engine import records_of
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
)

PER_EPOCH = 6
EPOCHS = STEPS // PER_EPOCH

METHOD = """\
import torch


class Trainer:
    def __init__(self, model):
        self.opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=2, gamma=0.5)

    def train_one_epoch(self, loader):
        for batch in loader:
            self.opt.zero_grad()
            loss = batch()
            loss.backward()
            self.opt.step()

    def fit(self, loaders):
        for loader in loaders:
            self.train_one_epoch(loader)
            self.sched.step()
"""

FUNCTION = """\
import torch


def train_one_epoch(opt, loader):
    for batch in loader:
        opt.zero_grad()
        loss = batch()
        loss.backward()
        opt.step()


class Trainer:
    def __init__(self, model):
        self.opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        self.sched = torch.optim.lr_scheduler.ExponentialLR(self.opt, gamma=0.8)

    def fit(self, loaders):
        for loader in loaders:
            train_one_epoch(self.opt, loader)
            self.sched.step()
"""


def _translate(source: str, steps_per_epoch: str | None) -> Translation:
    options: dict[str, Any] = {"exact": True}
    if steps_per_epoch is not None:
        options["steps_per_epoch"] = steps_per_epoch
    context = CodemodContext(filename="trainer.py")
    code = TorchToOptax(context, **options).transform_module(cst.parse_module(source)).code
    compile(code, "trainer.py", "exec")
    again = TorchToOptax(CodemodContext(), **options).transform_module(cst.parse_module(code)).code
    assert again == code, "a second run changed the output"
    return Translation(source, code, records_of(context))


def _torch_epochs(problem: Problem, source: str) -> list[dict[str, np.ndarray]]:
    """Parameters after each update of ``Trainer(params).fit(loaders)`` in torch."""
    params = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in problem.init.items()
    }
    out: list[dict[str, np.ndarray]] = []

    def snapshot() -> None:
        out.append({n: p.detach().numpy().copy() for n, p in params.items()})

    def loader(epoch: int) -> Iterator[Callable[[], torch.Tensor]]:
        for i in range(PER_EPOCH):
            if i:
                snapshot()
            k = epoch * PER_EPOCH + i
            yield lambda k=k: problem.torch_loss(params, k)
        snapshot()

    trainer = execute(source, {})["Trainer"](_Model(list(params.values())))
    trainer.fit(loader(epoch) for epoch in range(EPOCHS))
    assert len(out) == STEPS
    return out


class _Model:
    """What the trainers are given: ``parameters()`` returns the problem's tensors."""

    def __init__(self, tensors: list[Any]) -> None:
        self.tensors = tensors

    def parameters(self) -> list[Any]:
        return self.tensors


def _measure(source: str) -> tuple[float, Translation]:
    translation = _translate(source, str(PER_EPOCH))
    assert not [r for r in translation.escapes if "lr_scheduler" in r.api], translation.escapes
    with float64():
        problem = linear_problem()
        torch_traj = _torch_epochs(problem, source)
        jax_params = [jnp.asarray(v) for v in problem.init.values()]
        tx = execute(translation.code, {})["Trainer"](_Model(jax_params)).opt
        optax_traj, _ = run_optax(problem, tx)
        return rel_error(problem, torch_traj, optax_traj), translation


def test_method_called_once_per_epoch_matches_torch_with_steps_per_epoch() -> None:
    rel, translation = _measure(METHOD)
    assert f"count // ({PER_EPOCH})" in translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"


def test_function_called_once_per_epoch_matches_torch_with_steps_per_epoch() -> None:
    rel, translation = _measure(FUNCTION)
    assert f"count // ({PER_EPOCH})" in translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"


def _scheduler_reason(source: str, steps_per_epoch: str | None = None) -> str:
    translation = _translate(source, steps_per_epoch)
    (record,) = [r for r in translation.escapes if "lr_scheduler" in r.api]
    assert "learning_rate=self.sched" not in translation.code
    return record.reason


def test_method_called_once_per_epoch_escapes_naming_the_call() -> None:
    reason = _scheduler_reason(METHOD)
    assert "trainer.py:18 fit() calls train_one_epoch()" in reason
    assert "--steps-per-epoch" in reason


def test_function_called_once_per_epoch_escapes_naming_the_call() -> None:
    reason = _scheduler_reason(FUNCTION)
    assert "trainer.py:19 fit() calls train_one_epoch()" in reason


def test_method_of_another_object_is_not_a_per_epoch_call() -> None:
    # `other.train_one_epoch(...)` is not this trainer's method: how often it steps is unknown
    source = METHOD.replace("self.train_one_epoch(loader)", "other.train_one_epoch(loader)")
    reason = _scheduler_reason(source, str(PER_EPOCH))
    assert "cannot tell whether step() runs once per optimizer update" in reason


def test_method_called_under_a_condition_is_not_once_per_epoch() -> None:
    source = METHOD.replace(
        "            self.train_one_epoch(loader)\n",
        "            if loader:\n                self.train_one_epoch(loader)\n",
    )
    reason = _scheduler_reason(source, str(PER_EPOCH))
    assert "cannot tell whether step() runs once per optimizer update" in reason


def test_method_called_after_the_scheduler_step_is_not_per_epoch() -> None:
    source = METHOD.replace(
        "            self.train_one_epoch(loader)\n            self.sched.step()\n",
        "            self.sched.step()\n            self.train_one_epoch(loader)\n",
    )
    reason = _scheduler_reason(source, str(PER_EPOCH))
    assert "cannot tell whether step() runs once per optimizer update" in reason


def test_function_called_under_a_condition_is_not_once_per_epoch() -> None:
    source = FUNCTION.replace(
        "            train_one_epoch(self.opt, loader)\n",
        "            if loader:\n                train_one_epoch(self.opt, loader)\n",
    )
    reason = _scheduler_reason(source, str(PER_EPOCH))
    assert "cannot tell whether step() runs once per optimizer update" in reason


def test_method_also_called_elsewhere_is_not_once_per_epoch() -> None:
    # the optimizer also steps in finetune(), where the scheduler does not
    source = METHOD + "\n    def finetune(self, loader):\n        self.train_one_epoch(loader)\n"
    reason = _scheduler_reason(source, str(PER_EPOCH))
    assert "cannot tell whether step() runs once per optimizer update" in reason
