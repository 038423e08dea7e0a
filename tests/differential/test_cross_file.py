"""An optimizer built in one file and stepped by a function of another file of the package,
translated by the codemod (both files) and run against torch (float64, 60 steps).

The torch side runs the original package: ``fit`` hands the optimizer to ``train_one_epoch``
of ``engine.py``, which zeroes, back-propagates and steps once per batch. The optax side takes
the optimizer the translated ``main.py`` builds (importing the translated ``engine.py``, whose
``zero_grad()`` is gone and whose ``step()`` waits in its escape hatch) and applies one update
per batch, as the hatch says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax.numpy as jnp
import pytest
import torch

from tests.differential.harness import (
    EXACT,
    STEPS,
    execute,
    float64,
    linear_problem,
    rel_error,
    run_optax,
    translate_package,
)
from tests.support import importable

XFILE = "xfile_pkg"  # the package the tests write (imported, then forgotten)
ENGINE = """\
def train_one_epoch(model, optimizer, loader):
    for batch in loader:
        optimizer.zero_grad()
        loss = model(batch)
        loss.backward()
        optimizer.step()
"""

MAIN = """\
import torch
from xfile_pkg.engine import train_one_epoch
opt = {constructor}
def fit(model, loader):
    train_one_epoch(model, opt, loader)
"""

CONSTRUCTORS = [
    "torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)",
    "torch.optim.AdamW(params, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)",
]


def torch_trajectory(source: str, root: Path) -> list[dict[str, Any]]:
    """Parameters after each update of the original package's ``fit``."""
    problem = linear_problem()
    params = {k: torch.tensor(v, requires_grad=True) for k, v in problem.init.items()}
    seen: list[dict[str, Any]] = []

    def model(k: int) -> torch.Tensor:
        seen.append({n: p.detach().numpy().copy() for n, p in params.items()})
        return problem.torch_loss(params, k)

    with importable(root, XFILE):
        execute(source, {"params": list(params.values())})["fit"](model, range(STEPS))
    seen.append({n: p.detach().numpy().copy() for n, p in params.items()})
    return seen[1:]


@pytest.mark.parametrize("constructor", CONSTRUCTORS)
def test_the_package_translated_in_both_files_reproduces_torch(
    constructor: str, tmp_path: Path
) -> None:
    main = MAIN.format(constructor=constructor)
    files = {"xfile_pkg/__init__.py": "", "xfile_pkg/engine.py": ENGINE, "xfile_pkg/main.py": main}
    translations = translate_package(tmp_path, files)
    assert [r.api for r in translations["xfile_pkg/main.py"].escapes] == []
    assert "zero_grad" not in translations["xfile_pkg/engine.py"].code
    with float64():
        problem = linear_problem()
        torch_traj = torch_trajectory(main, tmp_path / "original")
        with importable(tmp_path / "translated", XFILE):
            namespace = execute(
                translations["xfile_pkg/main.py"].code,
                {"params": [jnp.asarray(v) for v in problem.init.values()]},
            )
        optax_traj, _ = run_optax(problem, namespace["opt"])
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel < EXACT, f"rel={rel:.3e}\n{translations['xfile_pkg/main.py'].code}"


BUILDERS = """\
import torch

def build_optimizer(params, lr):
    return {constructor}
"""

FIT = """\
from xfile_pkg.builders import build_optimizer
opt = build_optimizer(params, 0.02)
def fit(model, loader):
    for batch in loader:
        opt.zero_grad()
        loss = model(batch)
        loss.backward()
        opt.step()
"""

BUILT = [
    "torch.optim.SGD(params, lr=lr, momentum=0.9, dampening=0.0, weight_decay=0.01)",
    "torch.optim.Adam(params, lr=lr, betas=(0.85, 0.995), eps=1e-6)",
]


@pytest.mark.parametrize("constructor", BUILT)
def test_a_builder_of_another_file_translated_reproduces_torch(
    constructor: str, tmp_path: Path
) -> None:
    files = {
        "xfile_pkg/__init__.py": "",
        "xfile_pkg/builders.py": BUILDERS.format(constructor=constructor),
        "xfile_pkg/fit.py": FIT,
    }
    translations = translate_package(tmp_path, files)
    assert translations["xfile_pkg/builders.py"].escapes == []
    assert "zero_grad" not in translations["xfile_pkg/fit.py"].code
    with float64():
        problem = linear_problem()
        torch_traj = torch_trajectory(FIT, tmp_path / "original")
        with importable(tmp_path / "translated", XFILE):
            namespace = execute(
                translations["xfile_pkg/fit.py"].code,
                {"params": [jnp.asarray(v) for v in problem.init.values()]},
            )
        optax_traj, _ = run_optax(problem, namespace["opt"])
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel < EXACT, f"rel={rel:.3e}\n{translations['xfile_pkg/builders.py'].code}"


ENGINE_TWO_HOPS = (
    ENGINE
    + """

def fit_epochs(model, optimizer, loader, epochs):
    for _ in range(epochs):
        train_one_epoch(model, optimizer, loader)
"""
)

MAIN_TWO_HOPS = """\
import torch
from xfile_pkg.engine import fit_epochs
opt = {constructor}
def fit(model, loader):
    fit_epochs(model, opt, loader, 1)
"""


@pytest.mark.parametrize("constructor", CONSTRUCTORS)
def test_an_optimizer_passed_through_two_functions_of_another_file_reproduces_torch(
    constructor: str, tmp_path: Path
) -> None:
    main = MAIN_TWO_HOPS.format(constructor=constructor)
    files = {
        "xfile_pkg/__init__.py": "",
        "xfile_pkg/engine.py": ENGINE_TWO_HOPS,
        "xfile_pkg/main.py": main,
    }
    translations = translate_package(tmp_path, files)
    assert [r.api for r in translations["xfile_pkg/main.py"].escapes] == []
    assert "zero_grad" not in translations["xfile_pkg/engine.py"].code
    with float64():
        problem = linear_problem()
        torch_traj = torch_trajectory(main, tmp_path / "original")
        with importable(tmp_path / "translated", XFILE):
            namespace = execute(
                translations["xfile_pkg/main.py"].code,
                {"params": [jnp.asarray(v) for v in problem.init.values()]},
            )
        optax_traj, _ = run_optax(problem, namespace["opt"])
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel < EXACT, f"rel={rel:.3e}\n{translations['xfile_pkg/main.py'].code}"
