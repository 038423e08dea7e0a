"""Param groups split by rank (decay / no decay), run against torch.

The model has a 2-D weight ``w`` and a 1-D bias ``b``: torch decays only the group that holds
``w``; the translation's mask (``p.ndim >= 2`` on the params pytree) must do the same. The
codemod's own output is executed; the leftover torch statements (the group lists) run on torch
tensors and are not used by the optax transformation.
"""

from __future__ import annotations

import re
from typing import Any

import jax.numpy as jnp
import pytest
import torch

from tests.differential.harness import (
    EXACT,
    Translation,
    execute,
    float64,
    linear_problem,
    measure_training,
    rel_error,
    run_optax,
    run_torch,
    training_module,
    translate,
)
from tests.support import gpt_groups


class Model:
    """Named parameters ``w`` (5x3) and ``b`` (3,) in ``linear_problem``'s order."""

    def __init__(self, tensors: list[Any]) -> None:
        self.tensors = tensors

    def named_parameters(self) -> list[tuple[str, Any]]:
        return list(zip(["w", "b"], self.tensors, strict=True))

    def parameters(self) -> list[Any]:
        return list(self.tensors)


# `params` is a variable of the cases, so the mask's parameter is renamed (`params_1`).
MASK = re.compile(r"mask=lambda (params_1): jax\.tree_util\.tree_map\(lambda p: p\.ndim >= 2, \1\)")
PRELUDE = "import torch\nmodel = Model(params)\nweight_decay = 0.3\n"

GPT_STYLE = (
    "\n"
    + gpt_groups("model", "weight_decay")
    + "print(len(decay_params), sum(p.numel() for p in nodecay_params))\n"
)

CASES = {
    "adamw_gpt_style": GPT_STYLE
    + "opt = torch.optim.AdamW(optim_groups, lr=0.02, betas=(0.9, 0.95))\n",
    "adam_coupled_decay_split": """
opt = torch.optim.Adam(
    [
        {"params": [p for p in model.parameters() if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in model.parameters() if p.ndim < 2], "weight_decay": 0},
    ],
    lr=0.02,
)
""",
    "sgd_momentum_split": """
decay = [p for p in model.parameters() if len(p.shape) > 1]
no_decay = [p for p in model.parameters() if len(p.shape) <= 1]
opt = torch.optim.SGD(
    [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": 0.2}],
    lr=0.05,
    momentum=0.9,
)
""",
    "dim_list_comprehension_inline": """
opt = torch.optim.AdamW(
    [
        {"params": [p for n, p in model.named_parameters() if p.dim() >= 2], "weight_decay": 0.5},
        {"params": [p for n, p in model.named_parameters() if p.dim() < 2], "weight_decay": 0.0},
    ],
    lr=0.01,
)
""",
    "adamw_group_without_decay_takes_the_default": """
decay = [p for p in model.parameters() if p.dim() >= 2]
rest = [p for p in model.parameters() if p.dim() <= 1]
opt = torch.optim.AdamW([{"params": decay}, {"params": rest, "weight_decay": 0}], lr=0.05)
""",
    "extra_args_conditional": GPT_STYLE
    + """use_fused = False
extra_args = dict(fused=True) if use_fused else dict()
opt = torch.optim.AdamW(optim_groups, lr=0.02, **extra_args)
""",
}


def measure_groups(
    source: str, *, unmasked: bool = False, exact: bool = False
) -> tuple[float, Translation]:
    """rel between torch running ``source`` and optax running its translation (with the
    mask dropped when ``unmasked``: to show that the mask matters)."""
    translation = translate(source, exact=exact)
    assert not translation.escapes, [r.reason for r in translation.escapes]
    code = translation.code
    if unmasked:
        code = MASK.sub("mask=None", code)
    with float64():
        problem = linear_problem()
        torch_traj = run_torch(
            problem, lambda plist: execute(source, {"Model": Model, "params": plist})["opt"]
        )
        leftovers = [torch.tensor(v) for v in problem.init.values()]
        tx = execute(code, {"Model": Model, "params": leftovers})["opt"]
        optax_traj, _ = run_optax(problem, tx)
        return rel_error(problem, torch_traj, optax_traj), translation


@pytest.mark.parametrize("name", sorted(CASES))
def test_rank_split_groups_translate_to_a_mask_that_reproduces_torch(name: str) -> None:
    rel, translation = measure_groups(PRELUDE + CASES[name])
    assert MASK.search(translation.code), translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"


EXACT_CASES = {
    "sgd_dampened_momentum": CASES["sgd_momentum_split"].replace(
        "momentum=0.9,", "momentum=0.9, dampening=0.3,"
    ),
    "adamw_amsgrad": CASES["adamw_gpt_style"].replace("betas=(0.9, 0.95)", "amsgrad=True"),
}


@pytest.mark.parametrize("name", sorted(EXACT_CASES))
def test_rank_split_groups_under_exact_reproduce_torch(name: str) -> None:
    rel, translation = measure_groups(PRELUDE + EXACT_CASES[name], exact=True)
    assert "optax_torch." in translation.code and MASK.search(translation.code)
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"


def test_dropping_the_mask_changes_the_trajectory() -> None:
    rel, translation = measure_groups(PRELUDE + CASES["adamw_gpt_style"], unmasked=True)
    assert rel > 1e-4, (
        f"rel={rel:.3e}: the bias decays or not, the test cannot tell\n{translation.code}"
    )


def test_mask_is_a_function_of_the_params_pytree() -> None:
    translation = translate(PRELUDE + CASES["adam_coupled_decay_split"])
    with float64():
        tx = execute(translation.code, {"Model": Model, "params": []})["opt"]
        params = {"w": jnp.ones((5, 3)), "b": jnp.ones(3)}
        updates, _ = tx.update({"w": jnp.zeros((5, 3)), "b": jnp.zeros(3)}, tx.init(params), params)
        assert float(jnp.abs(updates["b"]).max()) == 0.0
        assert float(jnp.abs(updates["w"]).max()) > 0.0


def test_name_based_suggestion_masks_the_leaves_torch_would_decay() -> None:
    """The escape's suggested mask, evaluated on a params pytree whose paths spell the torch
    names, selects the parameters of the decay group."""
    translation = translate(
        "import torch\n"
        'no_decay = ["bias", "LayerNorm.weight"]\n'
        "grouped = [\n"
        '    {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in '
        'no_decay)], "weight_decay": 0.01},\n'
        '    {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in '
        'no_decay)], "weight_decay": 0.0},\n'
        "]\n"
        "opt = torch.optim.AdamW(grouped, lr=5e-5)\n"
    )
    (record,) = translation.escapes
    assert record.suggestion is not None
    suggested = record.suggestion.split("  # ")[0]
    namespace = execute(
        f"import jax\nimport optax\nno_decay = ['bias', 'LayerNorm.weight']\nopt = {suggested}\n",
        {},
    )
    params = {
        "fc": {"weight": jnp.ones((3, 2)), "bias": jnp.ones(2)},
        "LayerNorm": {"weight": jnp.ones(2)},
    }
    mask = re.search(r"mask=(lambda params: .*), params\)\)$", suggested)
    assert mask is not None, suggested
    chosen = execute(
        f"import jax\nno_decay = ['bias', 'LayerNorm.weight']\nf = {mask.group(1)}, params)\n", {}
    )["f"](params)
    assert chosen == {"fc": {"weight": True, "bias": False}, "LayerNorm": {"weight": False}}
    assert namespace["opt"].init(params) is not None


def test_masked_groups_with_a_scheduler_reproduce_torch() -> None:
    """The schedule becomes the learning rate of the masked optimizer; torch scales both
    groups' lr alike (the predicates use ``p.ndim``, which JAX arrays have too, so the
    leftover statements run under JAX)."""
    prelude = (
        "model = Model(params)\n"
        "decay = [p for p in model.parameters() if p.ndim >= 2]\n"
        "no_decay = [p for p in model.parameters() if p.ndim < 2]\n"
        'groups = [{"params": decay, "weight_decay": 0.2}, {"params": no_decay, "weight_decay": 0.0}]'
    )
    source = training_module(
        "torch.optim.AdamW(groups, lr=0.05)",
        "torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=30)",
        prelude=prelude,
    )
    rel, translation = measure_training(source, env={"Model": Model})
    assert [r.api for r in translation.escapes] == ["torch.optim.Optimizer.step"]
    assert "learning_rate=sched" in translation.code and "mask=" in translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"
