"""A scheduler stepped once per epoch after a batch loop over a DataLoader built once in the
file, over a map-style dataset (``TensorDataset``), with no --steps-per-epoch: the optax target
proves ``len(loader)`` is the number of updates each epoch (``analysis/loader_length.py``) and
folds ``schedule(count // len(loader))``. Torch runs the source as written (a real DataLoader,
``drop_last=True``: 32 items in batches of 5 are 6 batches) against optax running the
translated optimizer, float64, 60 updates (10 epochs of 6), with the batch loop inline and in a
function the epoch loop calls. Trap twins keep the scheduler escaped: a ``continue``/``break``
in the batch loop, the optimizer stepped under a condition, the loader rebound, given a
sampler, over an unknown dataset, used otherwise, or built after the scheduler, the dataset
changed, the optimizer rebuilt on one branch, a scheduler step under a condition, a shadowed
``len``; the dataset's tensor resized, its ``.data`` replaced, aliased, handed on, or an
expression (probe s37 L1: ``xs.resize_(20)`` after the loader is built made torch's epochs
4 batches where the fold divides by 6, 0.23 relative off; ``sized_by_arguments`` in the map).
A twin reading the tensor (``len(xs)``, ``xs[0] * 2``, ``xs.shape``) folds."""

from __future__ import annotations

import sys
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
    map_tolerance,
    rel_error,
    run_optax,
)

STEP_LR = "torch.optim.lr_scheduler.StepLR"
EPOCHS = 10  # 6 batches an epoch (32 items, batch_size=5, drop_last=True): 60 updates

INLINE = """\
import torch
from torch.utils.data import DataLoader, TensorDataset


def main(model, criterion, xs, epochs, flag):
    dataset = TensorDataset(xs)
    loader = DataLoader(dataset, batch_size=5, drop_last=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
    for epoch in range(epochs):
        for i, (x,) in enumerate(loader):
            loss = criterion(model(x))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
"""

FUNCTION = """\
import torch
from torch.utils.data import DataLoader, TensorDataset


def train(model, criterion, train_loader, optimizer, epoch):
    for i, (x,) in enumerate(train_loader):
        loss = criterion(model(x))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i % 4 == 0:
            print(epoch, i, len(train_loader), len(train_loader.dataset))


def main(model, criterion, xs, epochs, flag):
    train_set = TensorDataset(xs)
    train_loader = DataLoader(train_set, 5, False, drop_last=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
    for epoch in range(epochs):
        train(model, criterion, train_loader, optimizer, epoch)
        scheduler.step()
"""


# the dataset's tensor read in ways that keep its size (probe s37 L1's twin): folds
READS = INLINE.replace(
    "        scheduler.step()\n",
    "        scheduler.step()\n        print(len(xs), xs[0] * 2, xs.shape, -xs[:1], xs > 3)\n",
)
assert READS != INLINE


class _Model:
    """The problem's loss at the update's index (one call per update), recording the
    parameters before each call after the first (the result of the previous update)."""

    def __init__(self, problem: Any, params: dict[str, torch.Tensor] | None) -> None:
        self.problem, self.params, self.calls = problem, params, 0
        self.out: list[dict[str, np.ndarray]] = []

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values()) if self.params else []

    def snapshot(self) -> None:
        assert self.params is not None
        self.out.append({n: p.detach().numpy().copy() for n, p in self.params.items()})

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.params is None:  # the translated code: the optimizer it built, then stop
            raise _Captured(sys._getframe(1).f_locals["optimizer"])
        if self.calls:
            self.snapshot()
        self.calls += 1
        return self.problem.torch_loss(self.params, self.calls - 1)


class _Captured(Exception):  # noqa: N818 - a signal, not an error
    def __init__(self, optimizer: Any) -> None:
        self.optimizer = optimizer


def translate(source: str, exact: bool = False) -> tuple[str, list[Any]]:
    context = CodemodContext(filename="main.py")
    code = TorchToOptax(context, exact=exact).transform_module(cst.parse_module(source)).code
    again = TorchToOptax(CodemodContext(filename="main.py"), exact=exact).transform_module(
        cst.parse_module(code)
    )
    assert again.code == code
    return code, records_of(context)


def _scheduler_escapes(records: list[Any]) -> list[Any]:
    return [r for r in records if r.api.endswith("StepLR") and r.kind == "escaped"]


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize(
    "source", [INLINE, FUNCTION, READS], ids=["inline", "function", "tensor read"]
)
def test_the_inferred_length_fold_matches_torch(source: str, exact: bool) -> None:
    code, records = translate(source, exact)
    assert not _scheduler_escapes(records), code
    assert "count // steps_per_epoch" in code and "len(" in code
    xs = torch.arange(32)
    with float64():
        problem = linear_problem()
        params = {
            k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
            for k, v in problem.init.items()
        }
        model = _Model(problem, params)
        execute(source, {})["main"](model, lambda out: out, xs, EPOCHS, None)
        model.snapshot()
        assert len(model.out) == STEPS
        with pytest.raises(_Captured) as caught:
            execute(code, {})["main"](_Model(problem, None), lambda out: out, xs, EPOCHS, None)
        optax_traj, _ = run_optax(problem, caught.value.optimizer)
        rel = rel_error(problem, model.out, optax_traj)
    # StepLR's stock optax schedule is float32 (the map's tolerance); --exact: float64
    assert rel < (EXACT if exact else map_tolerance(STEP_LR, False)), f"rel={rel:.3e}\n{code}"


def test_a_fold_by_updates_would_be_measured_wrong() -> None:
    """The measure sees a schedule that advanced every update (the harness can fail)."""
    code, _ = translate(INLINE)
    code = code.replace("count // steps_per_epoch", "count")
    xs = torch.arange(32)
    with float64():
        problem = linear_problem()
        params = {
            k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
            for k, v in problem.init.items()
        }
        model = _Model(problem, params)
        execute(INLINE, {})["main"](model, lambda out: out, xs, EPOCHS, None)
        model.snapshot()
        with pytest.raises(_Captured) as caught:
            execute(code, {})["main"](_Model(problem, None), lambda out: out, xs, EPOCHS, None)
        optax_traj, _ = run_optax(problem, caught.value.optimizer)
        assert rel_error(problem, model.out, optax_traj) > 1e-3


def _twin(source: str, old: str, new: str) -> str:
    assert old in source
    return source.replace(old, new, 1)


TRAPS = {
    "continue": _twin(
        INLINE,
        "            loss = criterion",
        "            if flag(i):\n                continue\n            loss = criterion",
    ),
    "break": _twin(
        INLINE,
        "            optimizer.step()\n",
        "            optimizer.step()\n            if flag(i):\n                break\n",
    ),
    "accumulation": _twin(
        INLINE,
        "            optimizer.step()\n",
        "            if (i + 1) % 2 == 0:\n                optimizer.step()\n",
    ),
    "loader rebound per epoch": _twin(
        INLINE,
        "    for epoch in range(epochs):\n",
        "    for epoch in range(epochs):\n        loader = DataLoader(dataset, batch_size=epoch + 1)\n",
    ),
    "loader rebound on a branch": _twin(
        INLINE,
        "    optimizer = torch",
        "    if flag(0):\n        loader = DataLoader(dataset, batch_size=2)\n    optimizer = torch",
    ),
    "sampler": _twin(INLINE, "batch_size=5, drop_last=True", "batch_size=5, sampler=flag"),
    "positional sampler": _twin(INLINE, "batch_size=5, drop_last=True", "5, False, flag"),
    "unpacked arguments": _twin(INLINE, "batch_size=5, drop_last=True", "**flag"),
    "unknown dataset": _twin(INLINE, "TensorDataset(xs)", "flag(xs)"),
    "dataset changed": _twin(
        INLINE,
        "    for epoch in range(epochs):\n",
        "    for epoch in range(epochs):\n        dataset.tensors = (xs[: epoch + 6],)\n",
    ),
    "loader handed on": _twin(
        INLINE, "        scheduler.step()\n", "        scheduler.step()\n        flag(loader)\n"
    ),
    "loader built after the scheduler": _twin(
        _twin(INLINE, "    loader = DataLoader(dataset, batch_size=5, drop_last=True)\n", ""),
        "    for epoch",
        "    loader = DataLoader(dataset, batch_size=5, drop_last=True)\n    for epoch",
    ),
    "optimizer rebuilt on a branch": _twin(
        INLINE,
        "    scheduler = torch",
        "    if flag(1):\n        optimizer = torch.optim.Adam(model.parameters())\n"
        "    scheduler = torch",
    ),
    "scheduler under a condition that is not the epoch": _twin(
        INLINE,
        "        scheduler.step()\n",
        "        if flag(epoch):\n            scheduler.step()\n",
    ),
    "len shadowed": _twin(INLINE, "def main(", "len = max\n\n\ndef main("),
    # probe s37 L1: TensorDataset's len() is its tensor's size when asked (0.23 rel off)
    "dataset tensor resized": _twin(
        INLINE,
        "    for epoch in range(epochs):\n",
        "    xs.resize_(20)\n    for epoch in range(epochs):\n",
    ),
    "dataset tensor data replaced": _twin(
        INLINE,
        "    for epoch in range(epochs):\n",
        "    xs.data = xs.data[:20]\n    for epoch in range(epochs):\n",
    ),
    "dataset tensor aliased": _twin(
        INLINE,
        "    for epoch in range(epochs):\n",
        "    ys = xs\n    for epoch in range(epochs):\n",
    ),
    "dataset tensor handed on": _twin(
        INLINE, "        scheduler.step()\n", "        scheduler.step()\n        flag(xs)\n"
    ),
    "dataset of an expression": _twin(INLINE, "TensorDataset(xs)", "TensorDataset(xs.view(-1))"),
    "zip of loaders": _twin(INLINE, "enumerate(loader)", "enumerate(zip(loader, loader))"),
    "function: break": _twin(
        FUNCTION,
        "            print(epoch, i, len(train_loader), len(train_loader.dataset))\n",
        "            break\n",
    ),
    "function: loader parameter rebound": _twin(
        FUNCTION,
        "    for i, (x,) in",
        "    train_loader = list(train_loader)[:3]\n    for i, (x,) in",
    ),
    "function: loader parameter handed on": _twin(
        FUNCTION, "criterion(model(x))", "criterion(model(x), train_loader)"
    ),
    "function: called twice an epoch": _twin(
        FUNCTION,
        "        scheduler.step()\n",
        "        train(model, criterion, train_loader, optimizer, epoch)\n        scheduler.step()\n",
    ),
    "function: another iterable": _twin(
        FUNCTION, ", train_loader, optimizer, epoch)\n", ", [train_loader], optimizer, epoch)\n"
    ),
    "function: optimizer handed elsewhere": _twin(
        FUNCTION,
        "        scheduler.step()\n",
        "        flag(optimizer)\n        scheduler.step()\n",
    ),
}


@pytest.mark.parametrize("name", sorted(TRAPS))
def test_trap_twins_keep_the_scheduler_escaped(name: str) -> None:
    code, records = translate(TRAPS[name])
    assert _scheduler_escapes(records), f"{name}\n{code}"
    assert "scheduler = torch.optim.lr_scheduler.StepLR(" in code
