"""A scheduler stepped once per update in a function of another file (issue 12,
``analysis/stepped_together.py``), run: both files converted as the runner converts them,
against torch running the files as written, float64. NNX: the two translated files imported
together and trained on an NNX copy of the network (36 updates, every loss and the final
parameters < 1e-9 relative). Optax: the optimizer the translated ``main.py`` hands the
translated ``engine.py`` (with the schedule folded into it), run for 60 updates against torch
running ``main.py`` with ``engine.py`` as written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import libcst as cst
from libcst.codemod import CodemodContext

from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import (
    EXACT,
    execute,
    float64,
    linear_problem,
    rel_error,
    run_optax,
    run_torch_loop,
    translate_package,
)
from tests.differential.nnx_loops import run_packages, worst_rel
from tests.support import importable, write_package

NNX_ENGINE = """\
def train_one_epoch(model, loader, optimizer, scheduler):
    losses = []
    for x, y in loader:
        loss = ((model(x) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return losses
"""

NNX_MAIN = """\
import torch
from {package}.engine import train_one_epoch


def main(model, loader, epochs):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.7)
    losses = []
    for epoch in range(epochs):
        losses.extend(train_one_epoch(model, loader, optimizer, scheduler))
    return losses
"""

OPTAX_ENGINE = """\
def train_epoch(loader, optimizer, scheduler):
    for batch in loader:
        optimizer.zero_grad()
        loss = batch()
        loss.backward()
        optimizer.step()
        scheduler.step()
"""

OPTAX_MAIN = """\
import torch

from pkg_together.engine import train_epoch


def main(params, batches):
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.5)
    train_epoch(batches, opt, scheduler)


main(params, batches)
"""

IMPORT = "from pkg_together.engine import train_epoch\n"


def nnx_rel(tmp_path: Path, edit: Any = lambda main: main) -> tuple[dict[str, str], float]:
    """The NNX translation (``--exact``: optax's schedules on a float64 count) of the package,
    each file converted as libcst's runner calls it, and its worst relative difference from
    torch (``edit``: applied to the translated ``main.py`` before it runs)."""
    package = "pkg_together_nnx"
    files = {"engine.py": NNX_ENGINE, "main.py": NNX_MAIN.format(package=package)}
    write_package(tmp_path / "torch", files, package)
    outputs = {}
    for name in sorted(files):
        path = tmp_path / "torch" / package / name
        command = TorchToNNX(CodemodContext(filename=str(path)), exact=True)
        outputs[name] = command.transform_module(cst.parse_module(files[name])).code
    ported = {**outputs, "main.py": edit(outputs["main.py"])}
    write_package(tmp_path / "nnx", ported, package)
    torch_run, nnx_run = run_packages(tmp_path / "torch", tmp_path / "nnx", package)
    return outputs, worst_rel(torch_run, nnx_run)


def test_the_nnx_package_matches_torch(tmp_path: Path) -> None:
    outputs, rel = nnx_rel(tmp_path)
    assert all(BEGIN not in text for text in outputs.values()), outputs
    assert "        scheduler.step()\n" not in outputs["engine.py"]
    assert rel < EXACT, f"rel {rel:.3e}"


def test_the_nnx_runner_sees_a_schedule_left_out(tmp_path: Path) -> None:
    """The same runner, the schedule replaced by its first value: a difference."""
    outputs, _ = nnx_rel(tmp_path / "as-is")
    assert "learning_rate=scheduler" in outputs["main.py"]
    _, rel = nnx_rel(
        tmp_path, lambda main: main.replace("learning_rate=scheduler", "learning_rate=0.05")
    )
    assert rel > 1e-6


def test_the_optax_optimizer_handed_to_the_engine_matches_torch(tmp_path: Path) -> None:
    files = {
        "pkg_together/__init__.py": "",
        "pkg_together/engine.py": OPTAX_ENGINE,
        "pkg_together/main.py": OPTAX_MAIN,
    }
    translations = translate_package(tmp_path, files, exact=True)
    engine, code = (
        translations["pkg_together/engine.py"].code,
        translations["pkg_together/main.py"].code,
    )
    assert "        scheduler.step()\n" not in engine and "learning_rate=scheduler" in code
    assert not translations["pkg_together/main.py"].escapes, code
    handed: dict[str, Any] = {}

    def train_epoch(loader: Any, optimizer: Any, scheduler: Any) -> None:
        handed["tx"] = optimizer  # what the translated main hands the translated engine

    with float64():
        problem = linear_problem()
        with importable(tmp_path / "original", "pkg_together"):
            torch_traj = run_torch_loop(problem, OPTAX_MAIN, {})
        params = list(problem.init.values())
        execute(
            code.replace(IMPORT, ""), {"params": params, "batches": [], "train_epoch": train_epoch}
        )
        optax_traj, _ = run_optax(problem, handed["tx"])
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel < EXACT, f"rel={rel:.3e}\n{code}"
