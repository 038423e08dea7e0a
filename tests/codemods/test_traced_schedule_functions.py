"""MultiplicativeLR's function is called with a traced counter (the lr at update k is lr *
f(1) * ... * f(k), computed in ``jax.lax.fori_loop``): a Python branch on its value raised
TracerBoolConversionError when the translated schedule first ran (s41 finding, on main). Such
a function now escapes the scheduler with the reason; a function JAX can trace still
translates (the map's ``traced``)."""

from __future__ import annotations

import pytest

from tests.support import converts_in_both_targets, escapes_in_both_targets

HEAD = "import math\n\nimport torch\n\n"
LOOP = """\
model = torch.nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scheduler = torch.optim.lr_scheduler.MultiplicativeLR(optimizer, lr_lambda={function})
for x, y in loader:
    optimizer.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    optimizer.step()
    scheduler.step()
"""
API = "torch.optim.lr_scheduler.MultiplicativeLR"
DEF = "def factor(epoch):\n{body}\n\n\n"

BRANCHING = {
    "if_statement": (
        DEF.format(body="    if epoch < 3:\n        return 0.5\n    return 0.9"),
        "factor",
    ),
    "conditional_expression": ("", "lambda epoch: 0.5 if epoch < 3 else 0.9"),
    "boolean_operator": ("", "lambda epoch: (epoch > 3 and 0.9) or 0.5"),
    "builtin_min": ("", "lambda epoch: 0.9 ** min(epoch, 3)"),
    "math_function": ("", "lambda epoch: 0.9 + 0.05 * math.cos(epoch)"),
    "a_def_it_calls": (
        DEF.format(body="    return 0.9 if epoch < 3 else 1.0")
        + "def outer(epoch):\n    return factor(epoch) * 0.99\n\n\n",
        "outer",
    ),
}
TRACEABLE = {
    "constant": ("", "lambda epoch: 0.95"),
    "arithmetic": ("", "lambda epoch: 1.0 - 0.01 * (epoch % 5)"),
    "comparison_as_a_number": ("", "lambda epoch: 0.9 ** (epoch > 3)"),
}


@pytest.mark.parametrize("name", sorted(BRANCHING))
def test_a_branching_function_escapes_the_scheduler(name: str) -> None:
    before, function = BRANCHING[name]
    source = HEAD + before + LOOP.format(function=function)
    escapes_in_both_targets(source, API, "traced value")


@pytest.mark.parametrize("name", sorted(TRACEABLE))
def test_a_traceable_function_translates(name: str) -> None:
    before, function = TRACEABLE[name]
    converts_in_both_targets(HEAD + before + LOOP.format(function=function), API)
