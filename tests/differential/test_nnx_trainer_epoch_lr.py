"""A per-epoch StepLR of a trainer class (issue 13, s14e): ``fit()`` builds ``self.opt`` and
``self.sched``, then per epoch calls ``self.train_epoch(loader)`` (one update per batch) and
steps the scheduler. NNX: the lr written after train_epoch() (``self.sched(epoch + 1)``), the
whole loop run on a torch and an NNX model with the same weights (``nnx_loops``), float64,
36 updates over 3 epochs (48 to 72 when fit() or train_epoch() runs more), every recorded
loss and the final parameters. optax with ``--steps-per-epoch 'len(loader)'``: the folded optimizer against torch
running the class as written (``harness``), 60 updates (10 epochs of 6)."""

from __future__ import annotations

from typing import Any

import libcst as cst
import numpy as np
import pytest
import torch
from libcst.codemod import CodemodContext

from ml_switcheroo.codemods.optimizer import TorchToOptax
from ml_switcheroo.rewrite.engine import records_of
from tests.differential.harness import (
    EXACT,
    STEPS,
    execute,
    float64,
    linear_problem,
    rel_error,
    run_optax,
)
from tests.differential.nnx_loops import run_nnx_loop, run_torch_loop, translated_rel, worst_rel
from tests.differential.test_per_epoch_train_function import (
    EPOCHS,
    _Loader,
    _Model,
    tolerance,
)

TRAINER = """\
import torch


class Trainer:
    def __init__(self, model, lr):
        self.model = model
        self.lr = lr

    def train_epoch(self, loader):
        for x, y in loader:
            loss = ((self.model(x) - y) ** 2).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            losses.append(loss.item())

    def fit(self, loader, epochs):
        self.opt = torch.optim.{optimizer}
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=1, gamma=0.5)
        for epoch in range(epochs):
            self.train_epoch(loader)
            self.sched.step()


trainer = Trainer(make_model(), 0.05)
{runs}"""

ONCE = "trainer.fit(loader, EPOCHS)\n"
LOOPS = {
    "adamw": TRAINER.format(optimizer="AdamW(self.model.parameters(), lr=self.lr)", runs=ONCE),
    "sgd_momentum": TRAINER.format(
        optimizer="SGD(self.model.parameters(), lr=self.lr, momentum=0.9)", runs=ONCE
    ),
    # each fit() builds a fresh optimizer and scheduler: the second counts from 0 again
    "adamw_fit_twice": TRAINER.format(
        optimizer="AdamW(self.model.parameters(), lr=self.lr)", runs=ONCE + ONCE
    ),
    # train_epoch() twice an epoch, and a warm-up pass after fit() through another method:
    # the written lr is torch's wherever the updates run
    "train_epoch_twice_an_epoch": TRAINER.format(
        optimizer="AdamW(self.model.parameters(), lr=self.lr)", runs=ONCE
    ).replace(
        "            self.train_epoch(loader)\n",
        "            self.train_epoch(loader)\n            self.train_epoch(loader)\n",
    ),
    "train_epoch_also_from_another_method": TRAINER.format(
        optimizer="SGD(self.model.parameters(), lr=self.lr, momentum=0.9)",
        runs=ONCE + "trainer.extra(loader)\n",
    ).replace(
        "    def fit(self",
        "    def extra(self, loader):\n        self.train_epoch(loader)\n\n    def fit(self",
    ),
}
WRITE = "self.sched(epoch + 1)"


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_the_lr_written_after_train_epoch_matches_torch(name: str) -> None:
    translated, rel = translated_rel(LOOPS[name])
    assert 'hyperparams["learning_rate"][...] = ' + WRITE in translated, translated
    assert "ESCAPE-BEGIN" not in translated, translated
    assert rel < EXACT, f"{name}: rel {rel:.3e}"


def test_a_write_one_epoch_late_would_be_measured_wrong() -> None:
    """``self.sched(epoch)`` is not torch's lr (the whole-loop measure can fail)."""
    source = LOOPS["adamw"]
    translated, _ = translated_rel(source)
    late = translated.replace(WRITE, "self.sched(epoch)")
    assert worst_rel(run_torch_loop(source), run_nnx_loop(source, late)) > 1e-3


# --------------------------------------------------------------------------- optax, flagged

OPTAX_SOURCE = """\
import torch


class Trainer:
    def __init__(self, model, lr):
        self.model = model
        self.lr = lr

    def train_epoch(self, loader):
        for x, y in loader:
            loss = self.model(x)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()

    def fit(self, loader, epochs):
        self.opt = torch.optim.SGD(self.model.parameters(), lr=self.lr, momentum=0.9)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=3, gamma=0.5)
        for epoch in range(epochs):
            self.train_epoch(loader)
            self.sched.step()
"""


class _Captured(Exception):  # noqa: N818 - a signal, not an error
    def __init__(self, optimizer: Any) -> None:
        self.optimizer = optimizer


def translate_optax(exact: bool) -> str:
    """The optax output with --steps-per-epoch 'len(loader)': the StepLR folded, stable."""
    context = CodemodContext(filename="trainer.py")
    command = TorchToOptax(context, steps_per_epoch="len(loader)", exact=exact)
    code = command.transform_module(cst.parse_module(OPTAX_SOURCE)).code
    assert not [r for r in records_of(context) if r.api.endswith("StepLR") and r.kind == "escaped"]
    again = TorchToOptax(
        CodemodContext(filename="trainer.py"), steps_per_epoch="len(loader)", exact=exact
    )
    assert again.transform_module(cst.parse_module(code)).code == code
    return code


def torch_trajectory(problem: Any) -> list[dict[str, np.ndarray]]:
    """Parameters after each update of the torch class's ``fit`` run as written."""
    params = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in problem.init.items()
    }
    out: list[dict[str, np.ndarray]] = []
    loader = _Loader(lambda: out.append({n: p.detach().numpy().copy() for n, p in params.items()}))
    trainer = execute(OPTAX_SOURCE, {})["Trainer"](_Model(problem, params), 0.1)
    trainer.fit(loader, EPOCHS)
    assert len(out) == STEPS
    return out


def translated_optimizer(code: str) -> Any:
    """The optax optimizer the translated ``fit`` builds (caught at its train_epoch())."""
    cls = execute(code, {})["Trainer"]

    def capture(self: Any, loader: Any) -> None:
        raise _Captured(self.opt)

    cls.train_epoch = capture
    with pytest.raises(_Captured) as caught:
        cls(None, 0.1).fit(_Loader(lambda: None), EPOCHS)
    return caught.value.optimizer


@pytest.mark.parametrize("exact", [False, True])
def test_the_optax_fold_of_the_trainer_matches_torch(exact: bool) -> None:
    code = translate_optax(exact)
    assert "count // steps_per_epoch" in code and "self.sched.step()" not in code, code
    with float64():
        problem = linear_problem()
        torch_traj = torch_trajectory(problem)
        optax_traj, _ = run_optax(problem, translated_optimizer(code))
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel < tolerance(exact), f"rel={rel:.3e}\n{code}"
