"""A scheduler handed per update to a function of its file (``_handed_per_update``) in a
repository whose other files name ``scheduler``: a local variable of ``main()`` is out of
their reach and folds (matching torch, float64, 60 updates); a module global of that name
may be read or rebound from there (``import main; main.scheduler.step()``) and keeps its
escape."""

from __future__ import annotations

from pathlib import Path

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

MAIN = """\
import torch


def train_epoch(loader, optimizer, scheduler):
    for batch in loader:
        optimizer.zero_grad()
        loss = batch()
        loss.backward()
        optimizer.step()
        scheduler.step()


def main(params, batches):
    global opt  # the harness runs the translated module's `opt`
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=100)
    train_epoch(batches, opt, scheduler)


main(params, batches)
"""

OTHER = 'scheduler = "cosine"\n'

GLOBAL = """\
import torch


def train_epoch(loader, optimizer, scheduler):
    for batch in loader:
        optimizer.zero_grad()
        loss = batch()
        loss.backward()
        optimizer.step()
        scheduler.step()


opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
scheduler = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=100)
train_epoch(batches, opt, scheduler)
"""


def test_a_local_scheduler_folds_though_another_file_names_it(tmp_path: Path) -> None:
    translations = translate_package(tmp_path, {"main.py": MAIN, "other.py": OTHER})
    code = translations["main.py"].code
    assert not [r for r in translations["main.py"].escapes if "lr_scheduler" in r.api], code
    assert "learning_rate=scheduler" in code
    with float64():
        problem = linear_problem()
        torch_traj = run_torch_loop(problem, MAIN, {})
        params = [v for v in problem.init.values()]
        tx = execute(code, {"params": params, "batches": []})["opt"]
        optax_traj, _ = run_optax(problem, tx)
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel < EXACT, f"rel={rel:.3e}\n{code}"


def test_a_module_global_scheduler_another_file_reads_keeps_its_escape(tmp_path: Path) -> None:
    importing = "import main\n\nmain.scheduler.step()\n"
    translations = translate_package(tmp_path, {"main.py": GLOBAL, "other.py": importing})
    escapes = [r for r in translations["main.py"].escapes if "lr_scheduler" in r.api]
    assert escapes, translations["main.py"].code
    assert "learning_rate=scheduler" not in translations["main.py"].code


def test_a_module_global_scheduler_another_file_only_names_folds(tmp_path: Path) -> None:
    """``scheduler = "cosine"`` in a file that does not import this one is its own variable:
    it cannot reach this module's global (s30: sharper ``global_shared``)."""
    translations = translate_package(tmp_path, {"main.py": GLOBAL, "other.py": OTHER})
    assert "learning_rate=scheduler" in translations["main.py"].code
