"""The imagenet shape (pytorch/examples): a StepLR stepped once per epoch after
``train(train_loader, model, criterion, optimizer, epoch, device, args)``, which steps the
optimizer once per batch, with a resume branch not taken and ``range(args.start_epoch,
args.epochs)``. With ``--steps-per-epoch 'len(train_loader)'`` the optax target folds the
schedule as ``schedule(count // steps_per_epoch)``: torch running the source as written
against optax running the translated optimizer, float64, 60 updates (10 epochs of 6), from
epoch 0 and from a later ``start_epoch`` (a fresh StepLR counts from 0 either way). Also
with train() in another file of the package (detr's ``engine.train_one_epoch``)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import libcst as cst
import numpy as np
import pytest
import torch
from libcst.codemod import CodemodContext

from ml_switcheroo.codemods.optimizer import TorchToOptax
from ml_switcheroo.rewrite.engine import records_of
from ml_switcheroo.targets.catalogue import load_semantic_map
from tests.differential.harness import (
    EXACT,
    STEPS,
    Problem,
    execute,
    float64,
    linear_problem,
    rel_error,
    run_optax,
)
from tests.support import write_package

PER_EPOCH = 6
EPOCHS = STEPS // PER_EPOCH
FLAG = "len(train_loader)"

MAIN = """\
import torch
from torch.optim.lr_scheduler import StepLR
{import_train}

def main_worker(args, model, criterion, train_loader, device):
    optimizer = torch.optim.SGD(model.parameters(), args.lr,
                                momentum=args.momentum,
                                weight_decay=args.weight_decay)
    scheduler = StepLR(optimizer, step_size=3, gamma=0.5)
    if args.resume:
        checkpoint = torch.load(args.resume)
        args.start_epoch = checkpoint['epoch']
        optimizer.load_state_dict(checkpoint['optimizer'])
        scheduler.load_state_dict(checkpoint['scheduler'])
    for epoch in range(args.start_epoch, args.epochs):
        if args.distributed:
            train_sampler.set_epoch(epoch)
        train(train_loader, model, criterion, optimizer, epoch, device, args)
        acc1 = validate(model, args)
        scheduler.step()
        if args.save:
            save_checkpoint({{
                'epoch': epoch + 1,
                'optimizer': optimizer.state_dict(),
                'scheduler': scheduler.state_dict(),
            }})


def validate(model, args):
    model.eval()
    return args.print_freq

{train}"""

TRAIN = """\
def train(train_loader, model, criterion, optimizer, epoch, device, args):
    model.train()
    for i, (images, target) in enumerate(train_loader):
        output = model(images)
        loss = criterion(output, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i % args.print_freq == 0:
            pass
"""

SAME_FILE = MAIN.format(import_train="", train="\n" + TRAIN)


class _Captured(Exception):  # noqa: N818 - a signal, not an error
    """Raised by the stand-in of train() with the optimizer the translated code built."""

    def __init__(self, optimizer: Any) -> None:
        self.optimizer = optimizer


class _Model:
    """What train() and validate() use of a model: parameters(), train(), eval(), a call."""

    def __init__(self, problem: Problem, params: dict[str, torch.Tensor]) -> None:
        self.problem, self.params = problem, params

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def train(self) -> None:
        pass

    def eval(self) -> None:
        pass

    def __call__(self, k: int) -> torch.Tensor:
        return self.problem.torch_loss(self.params, k)


class _Loader:
    """PER_EPOCH batches an epoch, each the index of its update; records the parameters after
    each update (when the next batch is asked for, and at the end of the epoch)."""

    def __init__(self, snapshot: Any) -> None:
        self.snapshot, self.epoch = snapshot, 0

    def __len__(self) -> int:
        return PER_EPOCH

    def __iter__(self) -> Iterator[tuple[int, None]]:
        for i in range(PER_EPOCH):
            if i:
                self.snapshot()
            yield self.epoch * PER_EPOCH + i, None
        self.snapshot()
        self.epoch += 1


def _args(start: int) -> SimpleNamespace:
    return SimpleNamespace(
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-3,
        resume="",
        start_epoch=start,
        epochs=start + EPOCHS,
        distributed=False,
        save=False,
        print_freq=2,
    )


def torch_trajectory(problem: Problem, main_worker: Any, start: int) -> list[dict[str, np.ndarray]]:
    """Parameters after each update of the torch source's ``main_worker`` run as written."""
    params = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in problem.init.items()
    }
    out: list[dict[str, np.ndarray]] = []
    loader = _Loader(lambda: out.append({n: p.detach().numpy().copy() for n, p in params.items()}))
    main_worker(_args(start), _Model(problem, params), lambda output, target: output, loader, None)
    assert len(out) == STEPS
    return out


def translated_optimizer(namespace: dict[str, Any], start: int) -> Any:
    """The optax optimizer the translated ``main_worker`` builds (caught at its train())."""

    def capture(train_loader: Any, model: Any, criterion: Any, optimizer: Any, *rest: Any) -> None:
        raise _Captured(optimizer)

    namespace["train"] = capture
    with pytest.raises(_Captured) as caught:
        namespace["main_worker"](_args(start), None, None, _Loader(lambda: None), None)
    return caught.value.optimizer


def translate(source: str, filename: str = "main.py", exact: bool = False) -> str:
    context = CodemodContext(filename=filename)
    command = TorchToOptax(context, steps_per_epoch=FLAG, exact=exact)
    code = command.transform_module(cst.parse_module(source)).code
    assert not [r for r in records_of(context) if r.api.endswith("StepLR") and r.kind == "escaped"]
    again = TorchToOptax(CodemodContext(filename=filename), steps_per_epoch=FLAG, exact=exact)
    assert again.transform_module(cst.parse_module(code)).code == code
    return code


def tolerance(exact: bool) -> float:
    """The map's tolerance of StepLR's stock output (optax evaluates it in float32); exact
    with --exact."""
    entry = load_semantic_map().apis["torch.optim.lr_scheduler.StepLR"]
    assert entry.tolerance is not None
    return EXACT if exact else entry.tolerance


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("start", [0, 4])
def test_the_same_file_fold_matches_torch(start: int, exact: bool) -> None:
    code = translate(SAME_FILE, exact=exact)
    assert "count // steps_per_epoch" in code
    with float64():
        problem = linear_problem()
        torch_traj = torch_trajectory(problem, execute(SAME_FILE, {})["main_worker"], start)
        tx = translated_optimizer(execute(code, {}), start)
        optax_traj, _ = run_optax(problem, tx)
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel < tolerance(exact), f"rel={rel:.3e}\n{code}"


def test_a_fold_by_updates_would_be_measured_wrong() -> None:
    """The measure sees a schedule that advanced every update (the harness can fail)."""
    code = translate(SAME_FILE).replace("count // steps_per_epoch", "count")
    with float64():
        problem = linear_problem()
        torch_traj = torch_trajectory(problem, execute(SAME_FILE, {})["main_worker"], 0)
        tx = translated_optimizer(execute(code, {}), 0)
        optax_traj, _ = run_optax(problem, tx)
        assert rel_error(problem, torch_traj, optax_traj) > 1e-3


# --------------------------------------------------------------------------- across files

ENGINE = """\
def train_one_epoch(model, criterion, data_loader, optimizer, device, epoch, max_norm=0):
    model.train()
    for samples, targets in data_loader:
        outputs = model(samples)
        losses = criterion(outputs, targets)
        optimizer.zero_grad()
        losses.backward()
        optimizer.step()
    return {}
"""

ACROSS = MAIN.replace(
    "        train(train_loader, model, criterion, optimizer, epoch, device, args)\n",
    "        train_stats = train_one_epoch(model, criterion, train_loader, optimizer, device,"
    " epoch, args.clip_max_norm)\n",
)


def write_across(root: Path, package: str, engine: str) -> None:
    """``package`` under ``root``: ``engine.py`` and ``main.py`` calling its train_one_epoch."""
    main = ACROSS.format(import_train=f"from {package}.engine import train_one_epoch", train="")
    write_package(root, {"engine.py": engine, "main.py": main}, package)


@pytest.mark.parametrize("exact", [False, True])
def test_the_fold_through_a_function_of_another_file_matches_torch(
    tmp_path: Path, exact: bool
) -> None:
    package = f"pkg_imagenet_across_{exact}"
    write_across(tmp_path, package, ENGINE)
    main = tmp_path / package / "main.py"
    code = translate(main.read_text(encoding="utf-8"), str(main), exact=exact)
    assert "count // steps_per_epoch" in code
    sys.path.insert(0, str(tmp_path))
    try:
        engine = importlib.import_module(f"{package}.engine")
        torch_main = execute(main.read_text(encoding="utf-8"), {})
        with float64():
            problem = linear_problem()
            args = _args(0)
            args.clip_max_norm = 0.0
            params = {
                k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
                for k, v in problem.init.items()
            }
            out: list[dict[str, np.ndarray]] = []
            loader = _Loader(
                lambda: out.append({n: p.detach().numpy().copy() for n, p in params.items()})
            )
            model = _Model(problem, params)
            torch_main["main_worker"](args, model, lambda o, t: o, loader, None)
            assert len(out) == STEPS and engine.train_one_epoch is torch_main["train_one_epoch"]
            translated = execute(code, {})
            translated["train"] = None
            captured: list[Any] = []

            def capture(
                model: Any, criterion: Any, loader: Any, optimizer: Any, *rest: Any
            ) -> None:
                captured.append(optimizer)
                raise _Captured(optimizer)

            translated["train_one_epoch"] = capture
            with pytest.raises(_Captured):
                translated["main_worker"](args, None, None, _Loader(lambda: None), None)
            optax_traj, _ = run_optax(problem, captured[0])
            rel = rel_error(problem, out, optax_traj)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith(package)]:
            del sys.modules[name]
    assert rel < tolerance(exact), f"rel={rel:.3e}\n{code}"


@pytest.mark.parametrize(
    ("name", "engine", "said"),
    [
        (
            "break_out_of_the_batch_loop",
            ENGINE.replace(
                "    for samples, targets in data_loader:\n",
                "    for i, (samples, targets) in enumerate(data_loader):\n"
                "        if i >= max_norm:\n            break\n",
            ),
            "can leave or skip its batch loop early",
        ),
        (
            "two_steps_per_batch",
            ENGINE.replace("        optimizer.step()\n", "        optimizer.step()\n" * 2),
            "steps the optimizer in 2 places",
        ),
        (
            "another_loader",
            ENGINE.replace("in data_loader:", "in model.loader:"),
            "iterates `model.loader`",
        ),
    ],
)
def test_a_function_of_another_file_that_may_not_step_once_per_batch_escapes(
    tmp_path: Path, name: str, engine: str, said: str
) -> None:
    package = f"pkg_trap_{name}"
    write_across(tmp_path, package, engine)
    main = tmp_path / package / "main.py"
    context = CodemodContext(filename=str(main))
    command = TorchToOptax(context, steps_per_epoch=FLAG)
    command.transform_module(cst.parse_module(main.read_text(encoding="utf-8")))
    (record,) = [r for r in records_of(context) if r.api.endswith("StepLR")]
    assert record.kind == "escaped" and said in record.reason, record.reason
    assert "engine.py:1" in record.reason, record.reason
