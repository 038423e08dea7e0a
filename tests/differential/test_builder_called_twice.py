"""One optimizer builder called twice (a GAN trainer's ``opt_g = build(params_g, lr_g)``,
``opt_d = build(params_d, lr_d)``), in the callers' file or in another file of the package:
translated by the codemod and run against torch (float64, 60 steps).

The torch side runs the original ``fit`` (both optimizers zeroed, one backward pass, both
stepped, each over its own parameters); the optax side takes the two translated optimizers the
translated module builds and updates each one's parameters with its own state, as the step's
escape hatch says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from tests.differential.harness import (
    EXACT,
    STEPS,
    Problem,
    execute,
    float64,
    linear_problem,
    rel_error,
    translate_package,
)
from tests.differential.test_cross_file import XFILE
from tests.support import importable

BUILDER = """\
def build_optimizer(params, lr):
    return {constructor}
"""

FIT = """\
opt_g = build_optimizer(params_g, 0.02)
opt_d = build_optimizer(params_d, 0.05)


def fit(model, loader):
    for batch in loader:
        opt_d.zero_grad()
        opt_g.zero_grad()
        loss = model(batch)
        loss.backward()
        opt_d.step()
        opt_g.step()
"""

CONSTRUCTORS = [
    "torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=0.01)",
    "torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999), eps=1e-6)",
]


def package(constructor: str, same_file: bool) -> tuple[dict[str, str], str]:
    """The package's files and the name of the file holding ``fit``."""
    builder = BUILDER.format(constructor=constructor)
    if same_file:
        return {
            "xfile_pkg/__init__.py": "",
            "xfile_pkg/gan.py": f"import torch\n\n\n{builder}\n\n{FIT}",
        }, ("xfile_pkg/gan.py")
    return {
        "xfile_pkg/__init__.py": "",
        "xfile_pkg/builders.py": f"import torch\n\n\n{builder}",
        "xfile_pkg/gan.py": f"from xfile_pkg.builders import build_optimizer\n\n{FIT}",
    }, "xfile_pkg/gan.py"


def torch_trajectory(source: str, problem: Problem, root: Path) -> list[dict[str, Any]]:
    params = {k: torch.tensor(v, requires_grad=True) for k, v in problem.init.items()}
    seen: list[dict[str, Any]] = []

    def model(k: int) -> torch.Tensor:
        return problem.torch_loss(params, k)

    with importable(root, XFILE):
        namespace = execute(source, {"params_g": [params["w"]], "params_d": [params["b"]]})
    for k in range(STEPS):
        namespace["fit"](model, [k])
        seen.append({n: p.detach().numpy().copy() for n, p in params.items()})
    return seen


def optax_trajectory(source: str, problem: Problem, root: Path) -> dict[str, np.ndarray]:
    """``opt_g`` updates ``w``, ``opt_d`` updates ``b``, each with its own state."""
    with importable(root, XFILE):
        namespace = execute(source, {"params_g": None, "params_d": None})
    opt_g: optax.GradientTransformation = namespace["opt_g"]
    opt_d: optax.GradientTransformation = namespace["opt_d"]
    p = {k: jnp.asarray(v) for k, v in problem.init.items()}
    state_g, state_d = opt_g.init({"w": p["w"]}), opt_d.init({"b": p["b"]})
    out: dict[str, list[np.ndarray]] = {"w": [], "b": []}
    for k in range(STEPS):
        grads = jax.grad(problem.jax_loss)(p, jnp.asarray(k))
        u_g, state_g = opt_g.update({"w": grads["w"]}, state_g, {"w": p["w"]})
        u_d, state_d = opt_d.update({"b": grads["b"]}, state_d, {"b": p["b"]})
        p = {"w": p["w"] + u_g["w"], "b": p["b"] + u_d["b"]}
        for name in out:
            out[name].append(np.asarray(p[name]))
    return {name: np.stack(values) for name, values in out.items()}


@pytest.mark.parametrize("same_file", [True, False], ids=["same_file", "other_file"])
@pytest.mark.parametrize("constructor", CONSTRUCTORS, ids=[c.split("(")[0] for c in CONSTRUCTORS])
def test_a_builder_called_twice_reproduces_both_torch_optimizers(
    constructor: str, same_file: bool, tmp_path: Path
) -> None:
    files, main = package(constructor, same_file)
    translations = translate_package(tmp_path, files)
    assert [r.api for r in translations[main].escapes] == ["torch.optim.Optimizer.step"] * 2
    assert "zero_grad" not in translations[main].code
    with float64():
        problem = linear_problem()
        torch_traj = torch_trajectory(files[main], problem, tmp_path / "original")
        optax_traj = optax_trajectory(translations[main].code, problem, tmp_path / "translated")
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel < EXACT, f"rel={rel:.3e}\n{translations[main].code}"


def test_the_comparison_fails_when_the_two_learning_rates_are_swapped(tmp_path: Path) -> None:
    """The harness discriminates: the translation against torch with ``lr_g`` and ``lr_d``
    swapped is far off."""
    files, main = package(CONSTRUCTORS[0], same_file=True)
    translations = translate_package(tmp_path, files)
    swapped = (
        files[main].replace("0.02)", "0.0X)").replace("0.05)", "0.02)").replace("0.0X)", "0.05)")
    )
    with float64():
        problem = linear_problem()
        torch_traj = torch_trajectory(swapped, problem, tmp_path / "original")
        optax_traj = optax_trajectory(translations[main].code, problem, tmp_path / "translated")
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel > 1e-4
