"""A scheduler built by a factory of another file of the package (issue 12), translated by the
codemod (both files, as libcst's runner does) and run against torch (float64, 60 steps).

``sched.py`` holds ``def get_lr_scheduler(optimizer, warmup_steps, max_steps): return
<scheduler>``; ``train.py`` imports it and calls it once next to its optimizer, stepping it
once per update. The caller's call stands for the factory's scheduler call, its arguments in
the parameters' places, and folds into the optimizer's learning rate; the torch side runs the
original package, the optax side the optimizer the translated ``fit`` builds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.differential.harness import (
    Translation,
    execute,
    float64,
    linear_problem,
    rel_error,
    run_optax,
    translate_package,
)
from tests.differential.test_cross_file import XFILE
from tests.differential.test_facts_across_scopes import fit_trajectory, map_tolerance
from tests.differential.test_scheduler_factories import FUNCTION_CASES, CallerLocals
from tests.support import importable

FACTORY = """\
import torch
{imports}


def get_lr_scheduler(optimizer, warmup_steps, max_steps):
    return {scheduler}
"""

TRAIN = """\
import torch
from xfile_pkg.sched import get_lr_scheduler


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


def package(case: dict[str, str]) -> dict[str, str]:
    return {
        "xfile_pkg/__init__.py": "",
        "xfile_pkg/sched.py": FACTORY.format(**case),
        "xfile_pkg/train.py": TRAIN.format(**case),
    }


def translated_optimizer(translation: Translation, root: Path) -> Any:
    """The optax transformation the translated ``fit`` builds (its package importable)."""
    loader = CallerLocals()
    with importable(root, XFILE):
        execute(translation.code, {})["fit"](object(), loader, 0.05)
    return loader.seen["optimizer"]


@pytest.mark.parametrize("exact", [False, True], ids=["default", "exact"])
@pytest.mark.parametrize("case", list(FUNCTION_CASES), ids=list(FUNCTION_CASES))
def test_a_factory_of_another_file_folds_into_the_caller_optimizer_and_matches_torch(
    case: str, exact: bool, tmp_path: Path
) -> None:
    files = package(FUNCTION_CASES[case])
    translations = translate_package(tmp_path, files, exact=exact)
    train = translations["xfile_pkg/train.py"]
    assert [r.api for r in train.escapes] == ["torch.optim.Optimizer.step"], [
        r.reason for r in train.escapes
    ]
    assert "scheduler.step()" not in train.code
    with float64():
        problem = linear_problem()
        with importable(tmp_path / "original", XFILE):
            torch_traj = fit_trajectory(files["xfile_pkg/train.py"], problem, 0.05)
        optimizer = translated_optimizer(train, tmp_path / "translated")
        optax_traj, _ = run_optax(problem, optimizer)
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel < map_tolerance(train, exact, ""), f"rel={rel:.3e}\n{train.code}"


def test_the_comparison_fails_when_the_factory_reads_another_warmup(tmp_path: Path) -> None:
    """The harness discriminates: the translation run against a torch package whose caller
    passes another warm-up is far off."""
    case = FUNCTION_CASES["lambda_warmup"]
    translations = translate_package(tmp_path, package(case))
    other = package({**case, "warmup": "20"})
    with float64():
        problem = linear_problem()
        with importable(tmp_path / "original", XFILE):
            torch_traj = fit_trajectory(other["xfile_pkg/train.py"], problem, 0.05)
        optimizer = translated_optimizer(
            translations["xfile_pkg/train.py"], tmp_path / "translated"
        )
        optax_traj, _ = run_optax(problem, optimizer)
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel > 1e-4


TRAIN_EVERY_K = """\
import torch
from xfile_pkg.sched import get_lr_scheduler


def fit(model, loader, lr):
    total = {total}
    optimizer = {constructor}
    scheduler = get_lr_scheduler(optimizer, {warmup}, total)
    for i, k in enumerate(loader):
        optimizer.zero_grad()
        loss = model(k)
        loss.backward()
        optimizer.step()
        if (i + 1) % 3 == 0:
            scheduler.step()
"""


@pytest.mark.parametrize("case", ["lambda_warmup", "transformers_cosine_with_warmup"])
def test_a_factory_of_another_file_stepped_every_k_updates_matches_torch(
    case: str, tmp_path: Path
) -> None:
    files = package(FUNCTION_CASES[case])
    files["xfile_pkg/train.py"] = TRAIN_EVERY_K.format(**FUNCTION_CASES[case])
    translations = translate_package(tmp_path, files)
    train = translations["xfile_pkg/train.py"]
    assert [r.api for r in train.escapes] == ["torch.optim.Optimizer.step"], [
        r.reason for r in train.escapes
    ]
    with float64():
        problem = linear_problem()
        with importable(tmp_path / "original", XFILE):
            torch_traj = fit_trajectory(files["xfile_pkg/train.py"], problem, 0.05)
        optimizer = translated_optimizer(train, tmp_path / "translated")
        optax_traj, _ = run_optax(problem, optimizer)
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel < map_tolerance(train, False, ""), f"rel={rel:.3e}\n{train.code}"
