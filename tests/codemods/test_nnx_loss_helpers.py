"""A loss calling a function of the same file (issue 13, ``analysis/loss_helpers.py``): it
runs unchanged inside the NNX loss function only when it provably reads nothing but its
arguments and torch, and changes nothing; each nearby shape escapes with its reason."""

from __future__ import annotations

import pytest

from tests.support import nnx_output, renders_a_step, step_escaped_with

HEADER = """\
import torch
import torch.nn.functional as F

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
"""

LOOP = """
for x, y in loader:
    opt.zero_grad()
    out = model(x)
    loss = loss_function(out, y)
    loss.backward()
    opt.step()
"""

PURE = """
def loss_function(recon, target, weight=0.5):
    rec = F.mse_loss(recon, target.reshape(-1, 2))
    return rec + weight * torch.sum(recon ** 2)
"""


def converts(helpers: str) -> str:
    output = nnx_output(helpers + LOOP, HEADER)
    assert renders_a_step(output), output
    return output


def test_a_pure_function_of_the_file_runs_inside_the_loss() -> None:
    output = converts(PURE)
    assert "        loss = loss_function(out, y)\n        return loss\n" in output
    assert PURE in output  # the function itself is left as written


def test_a_pure_function_calling_another_pure_one_converts() -> None:
    converts(
        "def square(v):\n    return v * v\n\n"
        "def loss_function(a, b):\n    return torch.mean(square(a - b))\n"
    )


def test_a_lambda_bound_once_at_module_level_converts() -> None:
    converts("loss_function = lambda a, b: ((a - b) ** 2).mean()\n")


def test_a_lambda_calling_a_torch_function_escapes() -> None:
    """(s37) ``F.l1_loss`` raises on the loss function's traced arrays: port it first."""
    step_escaped_with(
        "loss_function = lambda a, b: F.l1_loss(a, b)\n" + LOOP,
        "`F.l1_loss(...)`, a torch function that raises on the traced JAX arrays",
        HEADER,
    )


TRAPS = {
    "reads a module-level model": (
        "def loss_function(a, b):\n    return F.mse_loss(model(a), b)\n",
        "reads `model`, a value of the module",
    ),
    "reads a module-level list": (
        "history = []\ndef loss_function(a, b):\n    return F.mse_loss(a, b) + len(history)\n",
        "reads `history`, a value of the module",
    ),
    "appends to a global list": (
        "def loss_function(a, b):\n    l = F.mse_loss(a, b)\n    losses.append(l)\n    return l\n",
        "`losses.append(l)`, evaluated for its effect",
    ),
    "changes an argument in place": (
        "def loss_function(a, b):\n    c = a.clamp_(0, 1)\n    return F.mse_loss(c, b)\n",
        "which changes its tensor in place",
    ),
    "passes inplace=True": (
        "def loss_function(a, b):\n    return F.mse_loss(F.relu(a, inplace=True), b)\n",
        "which may write into a tensor",
    ),
    "stores into an argument": (
        "def loss_function(a, b):\n    a[0] = 0.0\n    return F.mse_loss(a, b)\n",
        "a store into an attribute or a subscript",
    ),
    "adds in place": (
        "def loss_function(a, b):\n    a += 1\n    return F.mse_loss(a, b)\n",
        "an augmented assignment",
    ),
    "declares a global": (
        "def loss_function(a, b):\n    global scale\n    scale = 2\n    return F.mse_loss(a, b)\n",
        "a `global` statement",
    ),
    "is defined twice": (PURE + PURE, "`loss_function` is not bound once in this file"),
    "is rebound later": (
        PURE + "loss_function = F.mse_loss\n",
        "`loss_function` is not bound once in this file",
    ),
    "is rebound through global": (
        PURE + "def reset():\n    global loss_function\n    loss_function = None\n",
        "`loss_function` is not bound once in this file",
    ),
    "is imported from another file": (
        "from losses import loss_function\n",
        "`loss_function` is not a module-level function of this file",
    ),
    "defaults to a module value": (
        "def loss_function(a, b, net=model):\n    return F.mse_loss(net(a), b)\n",
        "has a default that is not a literal",
    ),
    "is a lambda reading the model": (
        "loss_function = lambda a, b: F.mse_loss(model(a), b)\n",
        "reads `model`, a value of the module",
    ),
    "calls an impure helper": (
        "def inner(a):\n    return model(a)\n\n"
        "def loss_function(a, b):\n    return F.mse_loss(inner(a), b)\n",
        "`loss_function` calls `inner` reads `model`",
    ),
    "calls an unknown import": (
        "import mylib\ndef loss_function(a, b):\n    return mylib.distance(a, b)\n",
        "reads `mylib`, an import of code that may reach a model",
    ),
    "is decorated": (
        "@cache\ndef loss_function(a, b):\n    return F.mse_loss(a, b)\n",
        "is decorated or asynchronous",
    ),
    "calls a builtin that changes objects": (
        "def loss_function(a, b):\n    return F.mse_loss(a, next(b))\n",
        "calls the builtin `next`",
    ),
    "is recursive": (
        "def loss_function(a, b, n=0):\n    return loss_function(a, b, 1) if n == 0 else a\n",
        "calls itself",
    ),
}


@pytest.mark.parametrize("name", sorted(TRAPS))
def test_a_function_not_proven_escapes_with_its_reason(name: str) -> None:
    helpers, reason = TRAPS[name]
    step_escaped_with(helpers + LOOP, reason, HEADER)
