"""Issue 13, a model wrapped by DistributedDataParallel, DataParallel or torch.compile, run: the
torch script as written (a real one-process gloo group for DDP: the all-reduce averages over
one process; DataParallel on CPU runs the model itself; torch.compile with its ``eager``
backend, the same OptimizedModule wrapper, because inductor takes about a minute per graph on
this CPU) against the NNX codemod's own output on an NNX model with the same weights, float64,
36 updates: every recorded loss and the final parameters. The NNX output is run as the user
ports it: each wrapper's escaped statement replaced by the first line of its suggestion
(``model = model``). Left as written, the wrapper line makes the NNX program fail loudly."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest
import torch
import torch.distributed as dist

from tests.differential.harness import EXACT
from tests.differential.nnx_loops import run_nnx_loop, run_torch_loop, translate_nnx, worst_rel

WRAPPED_ON_TWO_BRANCHES = """\
import torch
from torch.nn.parallel import DistributedDataParallel as DDP

DISTRIBUTED = True


def main():
    model = make_model()
    if DISTRIBUTED:
        model = DDP(model)
    else:
        model = torch.nn.DataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(EPOCHS):
        for x, y in loader:
            optimizer.zero_grad()
            out = model(x)
            loss = ((out - y) ** 2).mean()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())


main()
"""

DATA_PARALLEL_UNDER_ANOTHER_NAME = """\
import torch


def main():
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    parallel = torch.nn.DataParallel(model)
    for epoch in range(EPOCHS):
        for x, y in loader:
            out = parallel(x)
            loss = ((out - y) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())


main()
"""

COMPILED_TRAINER = """\
import torch
from torch.nn.parallel import DistributedDataParallel as DDP

COMPILE = True


class Trainer:
    def __init__(self, model):
        self.model = model
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
        if COMPILE:
            self.model = torch.compile(DDP(self.model))

    def step(self, x, y):
        self.optimizer.zero_grad()
        loss = ((self.model(x) - y) ** 2).mean()
        loss.backward()
        self.optimizer.step()
        return loss.item()


trainer = Trainer(make_model())
for epoch in range(EPOCHS):
    for x, y in loader:
        losses.append(trainer.step(x, y))
"""

# The loss calls the wrapped model through the wrapper's attribute that is that model (the
# map's `unwrapped_by`): `DDP(m).module is m`, `torch.compile(m)._orig_mod is m`.
LOSS_THROUGH_DDP_MODULE = """\
import torch
from torch.nn.parallel import DistributedDataParallel as DDP


def main():
    model = make_model()
    model = DDP(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(EPOCHS):
        for x, y in loader:
            optimizer.zero_grad()
            out = model.module(x)
            loss = ((out - y) ** 2).mean()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())


main()
"""

LOSS_THROUGH_DATA_PARALLEL_MODULE = """\
import torch

model = make_model()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
parallel = torch.nn.DataParallel(model)
for epoch in range(EPOCHS):
    for x, y in loader:
        loss = ((parallel.module(x) - y) ** 2).mean() + 0.1 * (parallel(x) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
"""

LOSS_THROUGH_COMPILED_ORIG_MOD = """\
import torch


def train(model):
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    model = torch.compile(model)
    for epoch in range(EPOCHS):
        for x, y in loader:
            optimizer.zero_grad()
            loss = ((model._orig_mod(x) - y) ** 2).mean()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())


train(make_model())
"""

SHAPES = {
    "DDP or DataParallel on two branches": WRAPPED_ON_TWO_BRANCHES,
    "DataParallel under another name": DATA_PARALLEL_UNDER_ANOTHER_NAME,
    "torch.compile of DDP in a trainer": COMPILED_TRAINER,
    "the loss through DDP's module": LOSS_THROUGH_DDP_MODULE,
    "the loss through DataParallel's module": LOSS_THROUGH_DATA_PARALLEL_MODULE,
    "the loss through torch.compile's _orig_mod": LOSS_THROUGH_COMPILED_ORIG_MOD,
}

MARK = "# ml_switcheroo: "
WRAPPERS = ("DistributedDataParallel", "DataParallel", "torch.compile")


def ported(translated: str) -> str:
    """``translated`` with each wrapper's escaped statement replaced by its suggestion's first
    line, without its comment (what the escape tells the user to write); another escape fails
    the test."""
    lines, out, index = translated.splitlines(keepends=True), [], 0
    while index < len(lines):
        line = lines[index]
        if f"{MARK}ESCAPE-BEGIN " not in line:
            out.append(line)
            index += 1
            continue
        indent = line[: line.index("#")]
        apis = line.split("ESCAPE-BEGIN ", 1)[1].strip().split(", ")
        assert all(api.endswith(WRAPPERS) for api in apis), line
        end = lines.index(f"{indent}{MARK}ESCAPE-END\n", index)
        block = lines[index:end]
        suggestion = next(b for b in block if b.startswith(f"{indent}{MARK}|   "))
        code = suggestion.split("|   ", 1)[1].split("#", 1)[0].strip()
        out.append(f"{indent}{code}\n")
        index = end + 1
    return "".join(out)


@pytest.fixture(scope="module", autouse=True)
def one_process_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A gloo process group of one process (DDP's all-reduce averages over it).

    Rendezvous through a file, not a TCP port, so parallel test runs do not collide.
    """
    store = tmp_path_factory.mktemp("gloo") / "store"
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


@pytest.fixture()
def eager_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.compile with the eager backend (dynamo's OptimizedModule, no inductor)."""
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))


@pytest.mark.parametrize("source", SHAPES.values(), ids=SHAPES.keys())
def test_a_wrapped_models_loop_matches_torch(source: str, eager_compile: None) -> None:
    translated = translate_nnx(source)
    assert "nnx.value_and_grad(" in translated and "ESCAPE-BEGIN" in translated, translated
    rel = worst_rel(run_torch_loop(source), run_nnx_loop(source, ported(translated)))
    assert rel < EXACT, (rel, translated)


@pytest.mark.parametrize("source", SHAPES.values(), ids=SHAPES.keys())
def test_the_wrapper_left_in_the_nnx_program_fails_loudly(source: str) -> None:
    translated = translate_nnx(source)
    with pytest.raises((AttributeError, TypeError, ValueError)):
        run_nnx_loop(source, translated)
