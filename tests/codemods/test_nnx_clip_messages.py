"""The clip escapes of the NNX target speak of the NNX program (the nnx.Optimizer's tx, its
update), not of the optax target's chain and update (issue 13)."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec import findings as f
from ml_switcheroo.spec.escape_hatch import BEGIN
from ml_switcheroo.targets.nnx.messages import MESSAGES
from tests.support import SGD_MODEL, nnx_output

CLIP_KINDS = [
    f.CLIP_NORM_USED,
    f.CLIP_WITHOUT_OPTIMIZER,
    f.CLIP_SEVERAL_OPTIMIZERS,
    f.CLIP_SCALED_GRADIENTS,
    f.CLIP_UNDER_OTHER_CONTROL,
    f.CLIP_VALUE_VARIES,
    f.CLIP_SUBSET,
]

OPTAX_WORDS = ("in optax", "optax chain", "optimizer's chain", "optax clips")


@pytest.mark.parametrize("kind", CLIP_KINDS)
def test_a_clip_finding_names_the_nnx_optimizer_not_optax_chains(kind: str) -> None:
    reason, suggestion = MESSAGES[kind]
    text = f"{reason} {suggestion or ''}"
    assert "nnx.Optimizer" in text and not any(w in text for w in OPTAX_WORDS), text


def test_a_returned_norm_is_worded_for_the_nnx_step() -> None:
    output = nnx_output(
        """
        def rescale(model, max_norm):
            return torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        """,
        SGD_MODEL,
    )
    assert BEGIN in output, output
    assert "the nnx.Optimizer clips inside its tx" in output, output
    assert "in optax the clipping" not in output, output


def test_a_clip_with_no_optimizer_after_it_suggests_the_nnx_optimizer_tx() -> None:
    output = nnx_output(
        """
        def clip(model):
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        """,
        "import torch\n",
    )
    assert "no single optimizer translated to an nnx.Optimizer" in output, output
    assert "nnx.Optimizer(model, optax.chain(optax.stateless(lambda updates" in output, output
    assert "optimizer's chain" not in output, output
