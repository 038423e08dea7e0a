"""What a params value holds is what its binding says only while nothing else reads it (probe
s30 F3/F4/F5): a list filled by ``append``, popped, sliced, aliased or handed to a function, a
generator consumed first, a tensor unpacked from ``model.parameters()``, a module taken by
index or bound by a loop: the optimizer (and a clip over it) stays torch code. Twins: a list
only handed to torch calls, tensors the code makes itself, a model built here."""

from __future__ import annotations

import pytest

from ml_switcheroo.codemods.optimizer import TorchToOptax
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import run_codemod

HEAD = "import torch\nfrom torch import nn\n\nmodel = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))\n"

ESCAPES = {
    "groups_by_append": (
        "groups = []\nfor n, p in model.named_parameters():\n"
        "    groups.append({'params': [p], 'weight_decay': 0.0 if p.ndim < 2 else 0.1})\n",
        "groups",
    ),
    "extend": ("groups = []\ngroups.extend([{'params': [model[0].weight]}])\n", "groups"),
    "pop": ("ps = list(model.parameters())\nps.pop()\n", "ps"),
    "del": ("ps = list(model.parameters())\ndel ps[-1]\n", "ps"),
    "slice_store": ("ps = list(model.parameters())\nps[1:] = []\n", "ps"),
    "alias": ("ps = list(model.parameters())\nqs = ps\nqs.pop()\n", "ps"),
    "function": ("ps = list(model.parameters())\ndrop_last(ps)\n", "ps"),
    "generator_consumed": ("ps = model.parameters()\nnext(ps)\n", "ps"),
    "unpacked": ("w, b, w2, b2 = model.parameters()\n", "[w]"),
    "attribute_tensor": ("w = model[0].weight\n", "[w]"),
    "indexed_module": ("head = model[1]\n", "head.parameters()"),
    "loop_module": ("for m in model.modules():\n    last = m\n", "last.parameters()"),
}


@pytest.mark.parametrize("shape", sorted(ESCAPES))
def test_a_params_value_changed_or_partial_keeps_the_optimizer(shape: str) -> None:
    setup, params = ESCAPES[shape]
    output = run_codemod(HEAD + setup + f"opt = torch.optim.AdamW({params}, lr=1e-3)\n")
    assert "optax.adamw(" not in output.split(BEGIN)[0], output
    assert f"opt = torch.optim.AdamW({params}, lr=1e-3)" in output, output
    assert BEGIN + " torch.optim.AdamW" in output, output


CONVERTS = {
    "list_only_for_torch_calls": (
        "ps = list(model.parameters())\n",
        "ps",
        "for x in batches:\n    model(x).sum().backward()\n"
        "    torch.nn.utils.clip_grad_norm_(ps, 1.0)\n    opt.step()\n",
    ),
    "own_tensors": (
        "w = torch.randn(3, requires_grad=True)\nb = torch.zeros(3, requires_grad=True)\n",
        "[w, b]",
        "",
    ),
    "model_built_here": ("net = nn.Linear(4, 2)\n", "net.parameters()", ""),
}


@pytest.mark.parametrize("shape", sorted(CONVERTS))
def test_a_params_value_only_handed_to_torch_converts(shape: str) -> None:
    setup, params, after = CONVERTS[shape]
    code = HEAD + setup + f"opt = torch.optim.AdamW({params}, lr=1e-3)\n" + after
    output = run_codemod(code, TorchToOptax)
    assert "optax.adamw(learning_rate=1e-3, weight_decay=0.01)" in output, output
    assert "opt = torch.optim" not in output, output


def test_a_clip_over_a_popped_list_stays_out_of_the_chain() -> None:
    code = (
        HEAD
        + "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        + "clipped = list(model.parameters())\nclipped.pop()\n"
        + "for x in batches:\n    opt.zero_grad()\n    model(x).sum().backward()\n"
        + "    torch.nn.utils.clip_grad_norm_(clipped, 0.5)\n    opt.step()\n"
    )
    output = run_codemod(code)
    assert "opt = optax.sgd(learning_rate=0.1)" in output, output
    assert "    torch.nn.utils.clip_grad_norm_(clipped, 0.5)" in output, output
