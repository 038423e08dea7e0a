"""Freezes in imported files by what this file may run (s23c), not by what a file names.

A freeze in a file of the import closure counts when this file may run it: this file's text
names its function or class, or code run at import does (module-level code of a file of the
closure, a package's ``__init__.py`` that importing runs, a decorated function a registry may
call), or a function so reached does, to a fixpoint. An import that re-exports it, a word in a
docstring or in ``__all__`` runs nothing. Silent before (the NNX codemod's own output against
torch, float64, 36 updates; the port of the freeze does nothing, JAX has no requires_grad):
0.85 relative off torch for each of the registry, the ``__init__.py`` and the transitive
computed ``setattr`` traps below. They escape now, naming the freeze; the twins convert, exact
in both targets."""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import (
    EXACT,
    execute,
    float64,
    linear_problem,
    rel_error,
    run_optax,
    run_torch,
    translate_package,
)
from tests.differential.nnx_loops import converted, translated_package_runs, worst_rel
from tests.support import importable, write_package

MAIN = """\
import torch

from PACKAGE.IMPORTED import change


def main(model, loader, epochs):
    losses = []
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    change(model)
    for epoch in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses
"""

FREEZE = "def freeze_hidden(m):\n    m.hidden.requires_grad_(False)\n"
RUN_HOOKS = "HOOKS = []\n\n\ndef change(m):\n    for hook in HOOKS:\n        hook(m)\n"


def _package(package: str, imported: str, files: dict[str, str]) -> dict[str, str]:
    """``main.py`` calling ``change`` of ``imported`` (a dotted module under the package)
    after building its optimizer, and ``files``."""
    main = MAIN.replace("PACKAGE", package).replace("IMPORTED", imported)
    return {"main.py": main, **{k: v.replace("PACKAGE", package) for k, v in files.items()}}


TRAPS = {
    "decorated": (
        "helpers",
        {
            "helpers.py": RUN_HOOKS
            + "\n\ndef register(f):\n    HOOKS.append(f)\n    return f\n\n\n@register\n"
            + FREEZE
        },
        "helpers.py:16",
    ),
    "registry": (
        "helpers",
        {"helpers.py": RUN_HOOKS + "\n\n" + FREEZE + "\n\nHOOKS.append(freeze_hidden)\n"},
        "helpers.py:10",
    ),
    "package_init": (
        "tools.hooks",
        {
            "tools/__init__.py": "from PACKAGE.tools.hooks import HOOKS\n\n\n"
            + FREEZE
            + "\n\nHOOKS.append(freeze_hidden)\n",
            "tools/hooks.py": RUN_HOOKS,
        },
        "tools/__init__.py:5",
    ),
    "computed_setattr": (
        "helpers",
        {
            "helpers.py": "from PACKAGE.deep import freeze_hidden\n\n\n"
            "def change(m):\n    freeze_hidden(m, 'requires_grad')\n",
            "deep.py": "def freeze_hidden(m, name):\n    for p in m.hidden.parameters():\n"
            "        setattr(p, name, False)\n",
        },
        "deep.py:3",
    ),
}


@pytest.mark.parametrize("trap", sorted(TRAPS))
def test_a_freeze_this_file_may_run_unnamed_escapes(tmp_path: Path, trap: str) -> None:
    """Run through a registry (a decorator, a list filled at import), a package's
    ``__init__.py`` run by the import, or a computed-name ``setattr`` two files away."""
    imported, files, place = TRAPS[trap]
    package = f"reach_{trap}"
    write_package(tmp_path, _package(package, imported, files), package)
    translated = converted(tmp_path, package)["main.py"]
    assert "opt = nnx.Optimizer" not in translated, translated
    assert f"in `{package}/{place}`)" in translated, translated


MODEL_METHOD = """\
import torch

from PACKAGE.models import Net


def main(loader):
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    model.freeze_hidden()
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
"""

NET = """\
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(3, 4)
        self.out = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x)))

    def freeze_hidden(self):
        self.hidden.requires_grad_(False)
"""


def test_a_freeze_in_a_method_of_the_model_class_escapes(tmp_path: Path) -> None:
    package = "reach_method"
    files = {"main.py": MODEL_METHOD.replace("PACKAGE", package), "models.py": NET}
    write_package(tmp_path, files, package)
    translated = converted(tmp_path, package)["main.py"]
    assert "opt = nnx.Optimizer" not in translated, translated
    assert f"in `{package}/models.py:14`)" in translated, translated


def test_a_freeze_reached_through_a_package_re_export_escapes(tmp_path: Path) -> None:
    """``from pkg.tools import freeze_hidden``: ``tools/__init__.py`` re-exports it."""
    package = "reach_reexport"
    files = _package(
        package,
        "helpers",
        {
            "helpers.py": "from PACKAGE.tools import freeze_hidden\n\n\n"
            "def change(m):\n    freeze_hidden(m)\n",
            "tools/__init__.py": "from PACKAGE.tools.deep import freeze_hidden  # noqa: F401\n",
            "tools/deep.py": FREEZE,
        },
    )
    write_package(tmp_path, files, package)
    translated = converted(tmp_path, package)["main.py"]
    assert f"in `{package}/tools/deep.py:2`)" in translated, translated


# A freezing function the import closure holds but nothing this file runs names: re-exported
# by the package's `__init__.py` (accelerate's `utils/bnb.py`), listed in `__all__`, named in
# a docstring, or called only by another unreached function.
UNREACHED = {
    "tools/__init__.py": '"""Tools: `freeze_hidden` freezes."""\n\n'
    "from PACKAGE.tools.bnb import freeze_hidden, thaw\n"
    "from PACKAGE.tools.hooks import change\n\n"
    "__all__ = ['change', 'freeze_hidden', 'thaw']\n",
    "tools/bnb.py": FREEZE + "\n\ndef thaw(m):\n    freeze_hidden(m)\n",
    "tools/hooks.py": "def change(m):\n    m.hidden.frozen_note = False\n",
}


def test_a_freeze_nothing_this_file_runs_names_keeps_the_exact_nnx_translation(
    tmp_path: Path,
) -> None:
    package = "reach_unused"
    files = _package(package, "tools", UNREACHED)
    tools = {k: v for k, v in files.items() if "/" in k}  # no optimizer: unchanged
    outputs, torch_run, nnx_run = translated_package_runs(
        tmp_path, package, files, lambda outputs: {**outputs, **tools}
    )
    assert BEGIN not in outputs["main.py"], outputs["main.py"]
    assert worst_rel(torch_run, nnx_run) < EXACT


OPTAX_MAIN = """\
import torch
from reach_optax.tools import change
opt = torch.optim.Adam(params, lr=0.01, betas=(0.8, 0.99))
"""


def test_a_freeze_nothing_this_file_runs_names_keeps_the_exact_optax_translation(
    tmp_path: Path,
) -> None:
    files = {"reach_optax/__init__.py": "", "reach_optax/main.py": OPTAX_MAIN}
    files |= {f"reach_optax/{k}": v.replace("PACKAGE", "reach_optax") for k, v in UNREACHED.items()}
    translations = translate_package(tmp_path, files)
    escapes = translations["reach_optax/main.py"].escapes
    assert escapes == [], [r.reason for r in escapes]
    with float64():
        problem = linear_problem()
        with importable(tmp_path / "original", "reach_optax"):
            torch_traj = run_torch(
                problem, lambda plist: execute(OPTAX_MAIN, {"params": plist})["opt"]
            )
        with importable(tmp_path / "translated", "reach_optax"):
            namespace = execute(
                translations["reach_optax/main.py"].code,
                {"params": [jnp.asarray(v) for v in problem.init.values()]},
            )
        optax_traj, _ = run_optax(problem, namespace["opt"])
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel < EXACT, f"rel={rel:.3e}"


def test_a_freeze_called_by_an_unreached_function_of_a_reached_file_keeps_the_translation(
    tmp_path: Path,
) -> None:
    package = "reach_other_function"
    helper = "def change(m):\n    pass\n\n\ndef setup(m):\n    freeze_hidden(m)\n\n\n" + FREEZE
    write_package(tmp_path, _package(package, "helpers", {"helpers.py": helper}), package)
    assert "opt = nnx.Optimizer" in converted(tmp_path, package)["main.py"]


def test_a_lookup_by_a_computed_name_in_a_repository_module_escapes(tmp_path: Path) -> None:
    """``getattr(deep, name)(m)``: any function of ``deep.py`` may run."""
    package = "reach_getattr"
    helper = (
        "from PACKAGE import deep\n\n\ndef change(m, name='freeze' + '_hidden'):\n"
        "    getattr(deep, name)(m)\n"
    )
    files = _package(package, "helpers", {"helpers.py": helper, "deep.py": FREEZE})
    write_package(tmp_path, files, package)
    translated = converted(tmp_path, package)["main.py"]
    # the freeze of deep.py it may run, or (since s31 read, as `freeze` is a word of the map's
    # freezing_calls) the computed `getattr(...)(m)` itself, which may be `requires_grad_`
    places = (f"in `{package}/deep.py:2`)", f"in `{package}/helpers.py:5`)")
    assert any(place in translated for place in places), translated
    assert "opt = nnx.Optimizer" not in translated, translated
