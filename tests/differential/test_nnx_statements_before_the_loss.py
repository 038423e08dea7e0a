"""A statement torch runs between the forward pass and the loss that does not feed the loss
runs after the loss function in the NNX translation. A call or a store through an attribute
there may change what the loss reads (a global the loss reads, an object it reads under
another name): those steps escape; the same statement after the loss converts and matches
PyTorch when run (float64, 36 updates, ``nnx_loops``)."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.support import renders_a_step

LOOP = """\
import torch

{definitions}

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        out = model(x)
{between}
        loss = ((out - y) ** 2).mean() * {weight}
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""

# `bump()` changes the weight the loss reads, through a global
GLOBAL_WEIGHT = LOOP.format(
    definitions="WEIGHT = [1.0]\n\n\ndef bump():\n    WEIGHT[0] = WEIGHT[0] * 1.01\n",
    between="        bump()",
    weight="WEIGHT[0]",
)

# `c.w` is the loss's `cfg.w` under another name
ALIASED_ATTRIBUTE = LOOP.format(
    definitions="class Config:\n    w = 1.0\n\n\ncfg = Config()",
    between="        c = cfg\n        c.w = c.w * 1.01",
    weight="cfg.w",
)

BEFORE_THE_LOSS = {"a call changing a global": GLOBAL_WEIGHT, "an aliased store": ALIASED_ATTRIBUTE}


@pytest.mark.parametrize("name", sorted(BEFORE_THE_LOSS))
def test_a_statement_torch_runs_before_the_loss_escapes(name: str) -> None:
    output = translate_nnx(BEFORE_THE_LOSS[name])
    assert BEGIN in output and not renders_a_step(output), output
    # the aliased store (`c = cfg; c.w = ...`) escapes first on s23int's shared-memory check
    said = ("may change what the loss reads after it", "shares its memory with a value of the step")
    assert any(reason in output for reason in said), output


def test_the_call_after_the_loss_converts_and_matches_torch() -> None:
    source = GLOBAL_WEIGHT.replace(
        "        bump()\n        loss = ((out - y) ** 2).mean() * WEIGHT[0]\n",
        "        loss = ((out - y) ** 2).mean() * WEIGHT[0]\n        bump()\n",
    )
    translated, rel = translated_rel(source)
    assert renders_a_step(translated), translated
    assert rel < 1e-12, (rel, translated)


IN_A_FUNCTION = """\
import torch

{definitions}

def train(model):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scale = 1.0
{declaration}
    for epoch in range(EPOCHS):
        for x, y in loader:
            opt.zero_grad()
            out = model(x)
            scale = scale * 1.01
            loss = ((out - y) ** 2).mean() + (model(x) ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item() * scale)


train(make_model())
"""

# `scale = ...` rebinds a name the model's forward may read (the second call in the loss)
SHARED_NAMES = {
    "a module global a function of the file reads": LOOP.format(
        definitions="SCALE = 1.0\n\n\ndef scale_now():\n    return SCALE\n",
        between="        SCALE = SCALE * 1.01",
        weight="(model(x) ** 2).mean()",
    ),
    "a module global, in a file that runs exec": LOOP.format(
        definitions="SCALE = 1.0\nexec(SETUP)",
        between="        SCALE = SCALE * 1.01",
        weight="(model(x) ** 2).mean()",
    ),
    # a function reading the global through the module object (1.8e-3 off torch before, with
    # a model's forward reading `sys.modules[__name__].SCALE`)
    "a module global a function reads through sys.modules": LOOP.format(
        definitions="import sys\n\nSCALE = 1.0\n\n\ndef scale_now():\n"
        "    return sys.modules[__name__].SCALE\n",
        between="        SCALE = SCALE * 1.01",
        weight="(model(x) ** 2).mean()",
    ),
    "a module global a function reads through importlib": LOOP.format(
        definitions="import importlib\n\nSCALE = 1.0\n\n\ndef scale_now():\n"
        "    return importlib.import_module(__name__).SCALE\n",
        between="        SCALE = SCALE * 1.01",
        weight="(model(x) ** 2).mean()",
    ),
    "a name declared global": IN_A_FUNCTION.format(
        definitions="scale = 1.0", declaration="    global scale"
    ),
    "a walrus of a name declared global": IN_A_FUNCTION.format(
        definitions="scale = 1.0", declaration="    global scale"
    ).replace("scale = scale * 1.01", "t = (scale := scale * 1.01)"),
    "a local a nested function reads": IN_A_FUNCTION.format(
        definitions="", declaration="    def current():\n        return scale"
    ),
}


@pytest.mark.parametrize("name", sorted(SHARED_NAMES))
def test_a_name_another_scope_reads_rebound_before_the_loss_escapes(name: str) -> None:
    output = translate_nnx(SHARED_NAMES[name])
    assert BEGIN in output and not renders_a_step(output), output
    assert "rebinds `" in output and "which code of another scope may read" in output, output


def test_a_local_rebound_before_the_loss_converts_and_matches_torch() -> None:
    translated, rel = translated_rel(IN_A_FUNCTION.format(definitions="", declaration=""))
    assert renders_a_step(translated), translated
    assert rel < 1e-12, (rel, translated)


def test_a_module_global_only_the_module_reads_converts_and_matches_torch() -> None:
    # no function of the file reads `SCALE`, no other file names it, no `exec`/`globals()`:
    # the model's forward (of another module) cannot see it
    source = LOOP.format(
        definitions="SCALE = 1.0",
        between="        SCALE = SCALE * 1.01",
        weight="(model(x) ** 2).mean()",
    )
    translated, rel = translated_rel(source)
    assert renders_a_step(translated), translated
    assert rel < 1e-12, (rel, translated)
