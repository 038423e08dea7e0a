"""The differential harness can fail: known traps, wired through a user map, are caught.

Each trap is the "obvious" optax mapping that the reference measurements show to be wrong.
The codemod emits it (from an overriding map), the harness runs it, and rel must be large.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml_switcheroo.spec.signature import Signature
from ml_switcheroo.targets.catalogue import load_semantic_map
from tests.differential.harness import measure

TRAPS = {
    # optax.adamw's default weight decay is 1e-4, torch's 1e-2
    "adamw default weight decay": (
        "torch.optim.AdamW",
        "params, lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, amsgrad=False, *, maximize=False, foreach=None, capturable=False, differentiable=False, fused=None",
        "optax.adamw(learning_rate={lr})",
        "torch.optim.AdamW(params)",
    ),
    # torch Adam's weight decay is L2 in the gradient, not decoupled
    "adam weight decay as adamw": (
        "torch.optim.Adam",
        "params, lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0, amsgrad=False, *, foreach=None, maximize=False, capturable=False, differentiable=False, fused=None, decoupled_weight_decay=False",
        "optax.adamw(learning_rate={lr}, weight_decay={weight_decay})",
        "torch.optim.Adam(params, lr=0.02, weight_decay=0.1)",
    ),
    # optax.rmsprop: decay 0.9 and eps inside the sqrt by default
    "rmsprop defaults": (
        "torch.optim.RMSprop",
        "params, lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0, momentum=0, centered=False, capturable=False, foreach=None, maximize=False, differentiable=False",
        "optax.rmsprop(learning_rate={lr})",
        "torch.optim.RMSprop(params)",
    ),
    # optax.adagrad starts its accumulator at 0.1
    "adagrad defaults": (
        "torch.optim.Adagrad",
        "params, lr=0.01, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None",
        "optax.adagrad(learning_rate={lr})",
        "torch.optim.Adagrad(params)",
    ),
}


def _lifting_every_escape(api: str) -> str:
    """The trap drops the shipped entry's escapes on purpose: it names them under ``lifts``."""
    rules = load_semantic_map().apis[api].escapes
    lines = ["    lifts:\n"] if rules else []
    for rule in rules:
        condition = {
            k: dict(v)
            for k, v in (("when", rule.condition.when), ("unless", rule.condition.unless))
            if v
        }
        item = {**condition, "mode": rule.mode, "reason": "the trap"}
        lines.append(f"      - {json.dumps(item)}\n")
    return "".join(lines)


@pytest.mark.parametrize("trap", sorted(TRAPS))
def test_known_trap_is_caught(trap: str, tmp_path: Path) -> None:
    api, signature, emit, call = TRAPS[trap]
    unused = [
        name
        for name in Signature.parse(signature).names
        if name != "params" and "{" + name not in emit
    ]
    path = tmp_path / "trap.yaml"
    path.write_text(
        "apis:\n"
        f"  {api}:\n"
        "    hook: optimizer_constructor\n"
        "    returns: torch.optim.Optimizer\n"
        f'    signature: "{signature}"\n'
        f"    ignore: [{', '.join(unused)}]\n"
        "    chain:\n"
        f'      - emit: "{emit}"\n' + _lifting_every_escape(api),
        encoding="utf-8",
    )
    rel, _ = measure(f"import torch\nopt = {call}\n", semantic_map=(str(path),))
    assert rel > 1e-6
