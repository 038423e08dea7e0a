"""A clip call's escape names the map's transform of that call, written out, where it should
go (``optax.clip(0.5)``, torch's 1-norm formula), not a generic
``optax.clip_by_global_norm(max_norm)`` that is neither its transform nor exact."""

from __future__ import annotations

import pytest

from tests.support import nnx_output, run_codemod

WITHOUT_OPTIMIZER = """\
import torch

def clip(model):
    CLIP
"""
CLIPS = {
    "torch.nn.utils.clip_grad_value_(model.parameters(), 0.5)": "optax.clip(0.5)",
    "torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0, norm_type=1)": (
        "optax.stateless(lambda updates, params, max_norm=2.0: optax.tree.scale(jnp.minimum("
        "max_norm / (optax.tree.norm(updates, ord=1)"
    ),
}


@pytest.mark.parametrize("clip", sorted(CLIPS))
def test_the_optax_escape_names_the_transform_of_the_call(clip: str) -> None:
    output = run_codemod(WITHOUT_OPTIMIZER.replace("CLIP", clip))
    assert "no single translated optimizer is stepped after this call" in output, output
    assert CLIPS[clip] in output and "clip_by_global_norm(max_norm)" not in output, output


@pytest.mark.parametrize("clip", sorted(CLIPS))
def test_the_nnx_escape_names_the_transform_of_the_call(clip: str) -> None:
    code = WITHOUT_OPTIMIZER.replace("CLIP", clip).replace("import torch\n", "")
    output = nnx_output(code, "import torch\n")
    assert f"nnx.Optimizer(model, optax.chain({CLIPS[clip]}" in output, output


def test_a_clip_the_map_escapes_is_named_by_its_call() -> None:
    clip = "torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0, norm_type=3.0)"
    output = run_codemod(WITHOUT_OPTIMIZER.replace("CLIP", clip))
    assert f"the clip transform of `{clip}`" in output, output


NORM_USED = """\
import torch

def clip(model):
    return torch.nn.utils.clip_grad_norm_(model.parameters(), 0.3, norm_type=float("inf"))
"""


def test_a_used_norm_is_suggested_as_the_maps_value_of_the_call() -> None:
    """The inf-norm torch returns is ``optax.tree.norm(grads, ord=jnp.inf)``, not the 2-norm."""
    output = run_codemod(NORM_USED)
    assert "norm = optax.tree.norm(grads, ord=jnp.inf)  # the same norm" in output, output
