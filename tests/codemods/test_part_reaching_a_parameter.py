"""An optimizer over ``m.parameters()`` where what reaches ``m`` is part of a model (probe s31
G2): through a function's parameter (``make(model.head, lr)``, ``make(model[2], lr)``, a
keyword, ``model.get_submodule(...)``) or one of several bindings (``m = m[2]`` in a loop)
escapes: torch trains that part only, optax every leaf it is given (1.31 relative off torch
over 40 SGD updates before). Twins that still convert: a whole model through the parameter,
``self.model`` of a plain class, a DDP wrapper's ``.module``, a function no call shows."""

from __future__ import annotations

import pytest

from tests.support import run_codemod

MAKE = "import torch\n\n\ndef make(m, lr):\n    return torch.optim.SGD(m.parameters(), lr, momentum=0.9)\n\n\n"
TRANSLATED = "return optax.sgd(learning_rate=lr, momentum=0.9)"
SAID = "are trained here; an optax transformation applies to the whole params tree"

ESCAPING = {
    "attribute": MAKE + "model = Net()\nopt = make(model.head, 0.05)\n",
    "index": MAKE + "model = Net()\nopt = make(model[2], 0.05)\n",
    "keyword": MAKE + "model = Net()\nopt = make(lr=0.05, m=model[0])\n",
    "submodule": MAKE + 'model = Net()\nopt = make(model.get_submodule("fc"), 0.05)\n',
    "one_caller_of_two": MAKE
    + "model = Net()\nfirst = make(model, 0.1)\nsecond = make(model[2], 0.05)\n",
    "walked_in_a_loop": "import torch\nmodel = Net()\nm = model\nfor _ in range(1):\n"
    "    m = m[2]\nopt = torch.optim.SGD(m.parameters(), lr=0.05)\n",
}
CONVERTING = {
    "whole_model": MAKE + "model = Net()\nopt = make(model, 0.05)\n",
    "no_call_seen": "import torch\n\n\ndef train(m, batches):\n"
    "    opt = torch.optim.SGD(m.parameters(), lr, momentum=0.9)\n"
    "    for b in batches:\n        b.backward()\n        opt.step()\n",
    "ddp_module": MAKE + "model = Net()\nddp = DDP(model)\nopt = make(ddp.module, 0.05)\n",
    "self_model_of_a_plain_class": MAKE
    + "class Trainer:\n    def __init__(self, model):\n        self.model = model\n"
    "        self.opt = make(self.model, 0.05)\n",
}


@pytest.mark.parametrize("name", sorted(ESCAPING))
def test_a_part_reaching_the_receiver_escapes(name: str) -> None:
    output = run_codemod(ESCAPING[name])
    assert SAID in output and "'s parameters (reaching `m` from" in output, output
    assert "= optax.sgd(" not in output and TRANSLATED not in output, output


@pytest.mark.parametrize("name", sorted(CONVERTING))
def test_a_whole_model_reaching_it_converts(name: str) -> None:
    output = run_codemod(CONVERTING[name])
    assert TRANSLATED.replace("return", "") in output and SAID not in output, output


DUPLICATES = {
    "chain": "itertools.chain(model.parameters(), model.parameters())",
    "starred": "[*model.parameters(), *model.parameters()]",
    "sum_of_lists": "list(model.parameters()) + list(model.parameters())",
}


@pytest.mark.parametrize("name", sorted(DUPLICATES))
def test_parameters_listed_twice_escape(name: str) -> None:
    """Probe s31 G5: torch updates a parameter listed twice once per listing (0.58 relative
    off torch over 40 SGD updates before); optax once."""
    params = DUPLICATES[name]
    output = run_codemod(
        f"import itertools, torch\nmodel = Net()\nopt = torch.optim.SGD({params}, lr=0.1)\n"
    )
    assert "some of them more than once" in output and "= optax.sgd(" not in output, output


def test_two_models_chained_still_convert() -> None:
    output = run_codemod(
        "import itertools, torch\ng = Net()\nd = Net()\n"
        "opt = torch.optim.SGD(itertools.chain(g.parameters(), d.parameters()), lr=0.1)\n"
    )
    assert "opt = optax.sgd(learning_rate=0.1)" in output, output
