"""Freezes spelled otherwise (s26a, an expert probe): ``p.__setattr__("requires_grad",
False)`` (the map's ``setter_methods``), ``getattr(p, "requires_grad_")(False)`` (its
``getter_functions``) and ``object.__setattr__(p, "requires_grad", False)`` (its
``freeze_setters``) each freeze ``p`` as ``p.requires_grad = False`` does: torch never updates
it, the optax transformation the codemod wrote for the optimizer did. Each now escapes the
optimizer, in the file and in a file of the repository it imports; the optax transformation
written without the freeze, run where torch freezes, is measured off torch; the same spellings
setting requires_grad to True, or reading another attribute, keep the exact translation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.differential.harness import (
    EXACT,
    execute,
    float64,
    linear_problem,
    rel_error,
    run_optax,
    run_torch,
    translate,
)
from tests.differential.nnx_loops import converted_helper_main

OPTIMIZER = "opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)\n"

FREEZES = {
    "__setattr__": 'params[0].__setattr__("requires_grad", False)',
    "getattr requires_grad_": 'getattr(params[0], "requires_grad_")(False)',
    "getattr detach_": 'getattr(params[0], "detach_")()',
    "object.__setattr__": 'object.__setattr__(params[0], "requires_grad", False)',
    # s40 (s40freeze's report): an annotated assignment was no freeze for the planner
    "annotated assignment": "params[0].requires_grad: bool = False",
}


@pytest.mark.parametrize("case", list(FREEZES), ids=list(FREEZES))
def test_a_freeze_spelled_otherwise_escapes_the_optimizer(case: str) -> None:
    freeze = FREEZES[case]
    translation = translate("import torch\n" + freeze + "\n" + OPTIMIZER)
    assert translation.escapes and not translation.conversions, translation.code
    said = f"this file freezes parameters (`{freeze}`)"
    assert said in translation.escapes[0].reason, translation.escapes[0].reason


@pytest.mark.parametrize("case", list(FREEZES), ids=list(FREEZES))
def test_the_transformation_written_without_the_freeze_trains_the_frozen_parameter(
    case: str,
) -> None:
    """What a converted optimizer runs (the translation of the file without the freeze) off
    torch, which skips the frozen parameter."""
    source = "import torch\n" + FREEZES[case] + "\n" + OPTIMIZER
    plain = translate("import torch\n" + OPTIMIZER)
    assert not plain.escapes, plain.code
    with float64():
        problem = linear_problem()
        torch_traj = run_torch(problem, lambda plist: execute(source, {"params": plist})["opt"])
        jax_params = list(problem.init.values())
        tx = execute(plain.code, {"params": jax_params})["opt"]
        optax_traj, _ = run_optax(problem, tx)
        assert rel_error(problem, torch_traj, optax_traj) > 0.1


@pytest.mark.parametrize(
    "kept",
    [
        'params[0].__setattr__("requires_grad", True)',
        'getattr(params[0], "requires_grad_")(True)',
        'n = getattr(params[0], "numel")()',
        'object.__setattr__(params[0], "requires_grad", True)',
    ],
)
def test_the_same_spellings_freezing_nothing_keep_the_exact_translation(kept: str) -> None:
    """The translation keeps the line (torch code on a torch tensor, left as written) and
    converts the optimizer; run with that line as a no-op on the JAX side, it is exact."""
    source = "import torch\n" + kept + "\n" + OPTIMIZER
    translation = translate(source)
    assert "opt = optax.sgd(learning_rate=0.05, momentum=0.9)" in translation.code
    assert kept in translation.code, translation.code
    with float64():
        problem = linear_problem()
        torch_traj = run_torch(problem, lambda plist: execute(source, {"params": plist})["opt"])
        code = translation.code.replace(kept, "pass")
        tx = execute(code, {"params": list(problem.init.values())})["opt"]
        optax_traj, _ = run_optax(problem, tx)
        rel = rel_error(problem, torch_traj, optax_traj)
    assert rel < EXACT, f"rel {rel:.3e}"


@pytest.mark.parametrize(
    "freeze",
    [  # as ``ast.unparse`` writes them: the escape names the freeze that way
        "p.__setattr__('requires_grad', False)",
        "getattr(p, 'requires_grad_')(False)",
        "object.__setattr__(p, 'requires_grad', False)",
    ],
)
def test_a_freeze_spelled_otherwise_in_an_imported_file_escapes(
    tmp_path: Path, freeze: str
) -> None:
    """The ``ast`` twin (``cross_file._freezes``) reads the same spellings."""
    helper = f"def change(m):\n    for p in m.hidden.parameters():\n        {freeze}\n"
    translated = converted_helper_main(tmp_path, "frozen_otherwise", helper)
    assert "opt = nnx.Optimizer" not in translated, translated
    assert f"(`{freeze}` in `frozen_otherwise/helpers.py:3`)" in translated, translated
