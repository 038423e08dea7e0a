"""Changes to the model after its optimizer took its parameters that the analysis did not see
(s26a, an expert probe): a method of a model whose class no file of the repository defines
(``model = make_model(); model.prune()``), a method of a part (``model.out.renew()``), stores
through ``vars(model)`` and ``object.__setattr__``, parts reached through bindings (a list, a
tuple, ``zip``, a dict's values, ``getattr``, a walrus) and items (``model.blocks[0].fc =
...``), ``model.load_state_dict(sd, assign=True)``. Measured at main on the NNX codemod's own
output against torch (float64, 36 updates): 0.875 to 2.4 off. Each now escapes the optimizer
on both targets; the escaped program's translation with the change moved before the optimizer
(what a converted optimizer trains) is measured off torch; the uses that keep the parameters
(``model.eval()``, ``model.train()``, ``load_state_dict(sd)`` copying in place, a method of a
class of the file that only reads) convert and run as torch does."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT, float64
from tests.differential.nnx_loops import (
    SIZES,
    LoopRun,
    nnx_batches,
    run_script,
    torch_batches,
    translate_nnx,
    worst_rel,
)
from tests.differential.test_nnx_model_changed import REASON
from tests.support import run_codemod

FRESH_SEED = 7  # the weights a replaced or renewed head starts from


class TorchHead(torch.nn.Linear):
    """A head that can renew its weight (a new Parameter)."""

    def renew(self) -> None:
        self.weight = torch.nn.Parameter(torch_fresh().blocks[0].fc.weight.detach().clone())


class TorchBlock(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = TorchHead(SIZES[1], SIZES[2])


class TorchSurgeon(torch.nn.Module):
    """Linear, tanh, ``blocks[0].fc`` (also named ``out``), with methods changing it."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(SIZES[0], SIZES[1])
        self.blocks = torch.nn.ModuleList([TorchBlock()])
        self.out = self.blocks[0].fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks[0].fc(torch.tanh(self.hidden(x)))

    def prune(self) -> None:
        self.blocks[0].fc = self.out = torch_fresh().blocks[0].fc


def torch_fresh(seed: int = FRESH_SEED) -> TorchSurgeon:
    torch.manual_seed(seed)
    return TorchSurgeon()


def _kernel(layer: torch.nn.Linear) -> Any:
    return jnp.asarray(layer.weight.detach().numpy().T)


class NnxHead(nnx.Linear):
    def renew(self) -> None:
        self.kernel = nnx.Param(_kernel(torch_fresh().blocks[0].fc))


class NnxBlock(nnx.Module):
    def __init__(self, fc: NnxHead) -> None:
        self.fc = fc


class NnxSurgeon(nnx.Module):
    """``TorchSurgeon`` ported by hand, with the weights of a torch one."""

    def __init__(self, model: TorchSurgeon) -> None:
        self.hidden = _nnx_linear(model.hidden, nnx.Linear)
        self.blocks = nnx.List([NnxBlock(_nnx_linear(model.blocks[0].fc, NnxHead))])
        self.out = self.blocks[0].fc

    def __call__(self, x: Any) -> Any:
        return self.blocks[0].fc(jnp.tanh(self.hidden(x)))

    def prune(self) -> None:
        self.blocks[0].fc = self.out = _nnx_linear(torch_fresh().blocks[0].fc, NnxHead)

    def get_submodule(self, target: str) -> Any:
        return getattr(self, target)

    def load_state_dict(
        self, sd: dict[str, Any], strict: bool = True, assign: bool = False
    ) -> None:
        """torch's: the arrays copied in place, or (``assign``) made the parameters."""
        for layer, name in ((self.hidden, "hidden"), (self.blocks[0].fc, "blocks.0.fc")):
            for attribute, key in (("kernel", "weight"), ("bias", "bias")):
                value = sd[f"{name}.{key}"]
                if assign:
                    setattr(layer, attribute, nnx.Param(value))
                else:
                    getattr(layer, attribute)[...] = value
        self.out = self.blocks[0].fc


def _nnx_linear(layer: torch.nn.Linear, cls: type[nnx.Linear]) -> Any:
    out = cls(layer.in_features, layer.out_features, rngs=nnx.Rngs(0), param_dtype=jnp.float64)
    out.kernel[...] = _kernel(layer)
    out.bias[...] = jnp.asarray(layer.bias.detach().numpy())
    return out


def _torch_weights(model: TorchSurgeon) -> list[np.ndarray]:
    layers = (model.hidden, model.blocks[0].fc)
    return [a.detach().numpy().T for layer in layers for a in (layer.weight, layer.bias)]


def _nnx_weights(model: NnxSurgeon) -> list[np.ndarray]:
    layers = (model.hidden, model.blocks[0].fc)
    return [np.asarray(a[...]) for layer in layers for a in (layer.kernel, layer.bias)]


def _torch_names() -> dict[str, Any]:
    state = torch_fresh().state_dict()
    return {
        "make_head": lambda: torch_fresh().blocks[0].fc,
        "make_blocks": lambda: torch_fresh().blocks,
        "sd": {k: v.clone() for k, v in state.items()},
    }


def _nnx_names() -> dict[str, Any]:
    state = torch_fresh().state_dict()
    sd = {
        k: jnp.asarray(v.numpy().T if k.endswith("weight") else v.numpy()) for k, v in state.items()
    }
    return {
        "make_head": lambda: NnxSurgeon(torch_fresh()).blocks[0].fc,
        "make_blocks": lambda: NnxSurgeon(torch_fresh()).blocks,
        "sd": sd,
    }


def _torch_run(source: str) -> LoopRun:
    with float64():
        model = torch_fresh(0)
        scope = run_script(source, model, torch_batches(), "<torch loop>", _torch_names())
        return LoopRun([float(v) for v in scope["losses"]], _torch_weights(model))


def _nnx_run(translated: str) -> LoopRun:
    with float64():
        model = NnxSurgeon(torch_fresh(0))
        scope = run_script(translated, model, nnx_batches(), "<nnx loop>", _nnx_names())
        return LoopRun([float(v) for v in scope["losses"]], _nnx_weights(model))


LOOP = """\
import torch

model = make_model()
BEFORE
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
AFTER
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""


def _loop(before: str = "", after: str = "") -> str:
    return LOOP.replace("BEFORE\n", before + "\n" if before else "").replace(
        "AFTER\n", after + "\n" if after else ""
    )


UNKNOWN = "a method no class of the repository defines, not one of the map's `keeping_methods"

# change after the optimizer -> what the escape names
CHANGES = {
    "a method of a model of a class not known": ("model.prune()", f"model.prune()`, {UNKNOWN}"),
    "a method of a part": ("model.out.renew()", f"model.out.renew()`, {UNKNOWN}"),
    "vars(model)": ('vars(model)["blocks"] = make_blocks()', None),
    "object.__setattr__": ('object.__setattr__(model, "blocks", make_blocks())', None),
    "a list of parts": ("heads = [model.out]\nheads[0].renew()", None),
    "a list holding the model": ("nets = [model]\nnets[0].blocks = make_blocks()", None),
    "a tuple holding the model": ("nets = (model, 1)\nnets[0].blocks = make_blocks()", None),
    "zip": ("for net, n in zip([model], [1]):\n    net.blocks = make_blocks()", None),
    "a dict's values": (
        'nets = {"m": model}\nfor net in nets.values():\n    net.blocks = make_blocks()',
        None,
    ),
    "getattr": ('getattr(model, "out").renew()', None),
    "a walrus": ("if (net := model) is not None:\n    net.blocks = make_blocks()", None),
    "an item's attribute": ("model.blocks[0].fc = make_head()", None),
    "a loop over a part": ("for block in model.blocks:\n    block.fc.renew()", None),
    "get_submodule": ('model.get_submodule("blocks")[0].fc = make_head()', None),
    "load_state_dict(assign=True)": ("model.load_state_dict(sd, assign=True)", None),
}


@pytest.mark.parametrize("case", list(CHANGES), ids=list(CHANGES))
def test_a_change_the_analysis_did_not_see_escapes_both_targets(case: str) -> None:
    change, said = CHANGES[case]
    source = _loop(after=change)
    for output in (translate_nnx(source), run_codemod(source)):
        assert "opt = nnx.Optimizer" not in output and "opt = optax" not in output, output
        shown = said if said is not None else change.splitlines()[-1].strip()
        assert REASON.format(change=shown)[: -2 if said is None else None] in output, output


@pytest.mark.parametrize("case", list(CHANGES), ids=list(CHANGES))
def test_the_escaped_change_trains_other_parameters_when_translated(case: str) -> None:
    """The escape is not for nothing: the translation of the program making the change before
    the optimizer (what a converted optimizer trains), run where torch makes it after,
    differs from torch (at main each converted silently: 0.875 to 2.4 off)."""
    change, _ = CHANGES[case]
    moved = translate_nnx(_loop(before=change))
    assert "opt = nnx.Optimizer" in moved, moved
    assert worst_rel(_torch_run(_loop(after=change)), _nnx_run(moved)) > 0.1


KEEPING = [
    "model.eval()",
    "model.train()",
    "model.eval()\nmodel.train()",
    "model.load_state_dict(sd)",
    "model.load_state_dict(sd, assign=False)",
    "heads = [model.out]\nn = len(heads)",
    "for net, n in zip([model], [1]):\n    net.train()",
    "for block in model.blocks:\n    block.train()",
]


@pytest.mark.parametrize("kept", KEEPING)
def test_a_use_keeping_the_parameters_converts_and_runs_as_torch(kept: str) -> None:
    source = _loop(after=kept)
    translated = translate_nnx(source)
    assert BEGIN not in translated, translated
    assert "opt = optax.sgd" in run_codemod(source)
    torch_run = _torch_run(source)
    assert len(torch_run.losses) == 36
    assert worst_rel(torch_run, _nnx_run(translated)) < EXACT


LOCAL = """\
import torch


class Net(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.hidden = inner.hidden
        self.blocks = inner.blocks

    def forward(self, x):
        return self.blocks[0].fc(torch.tanh(self.hidden(x)))

    def head(self):
        return self.blocks[0].fc

    def prune(self):
        self.blocks[0].fc = make_head()


net = Net(make_model())
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
CALL
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        loss = ((net(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""


def test_a_method_of_a_class_of_the_file_is_read_not_guessed() -> None:
    """``net.head()`` of a class of the file reads the model: converted (the class is known,
    its method analysed); ``net.prune()`` of the same class changes it: escaped, naming the
    call alone (the method's store is in the file)."""
    read = LOCAL.replace("CALL", "h = net.head()")
    assert "opt = nnx.Optimizer" in translate_nnx(read)
    assert "opt = optax.sgd" in run_codemod(read)
    changed = LOCAL.replace("CALL", "net.prune()")
    for output in (translate_nnx(changed), run_codemod(changed)):
        assert REASON.format(change="net.prune()") in output, output


def test_a_method_of_a_class_of_the_file_calling_a_part_is_a_forward() -> None:
    """``net.hidden(x)``: ``hidden`` is an attribute the class stores, a part called."""
    source = LOCAL.replace("CALL", "h = net.hidden(loader[0][0])")
    assert "opt = nnx.Optimizer" in translate_nnx(source)
