"""Probe s35N F4: gradient accumulation whose k (or counter) is a module-level name bound once
in the code, which the file rebinds by name: ``exec("K = 3")`` (nanoGPT's configurator shape),
``globals()["K"] = 3``, ``globals().update(...)``, or another file of the repository setting
``main.K = 3``. torch steps every 3 backward passes; the translation baked k = 2 into
``optax.MultiSteps(every_k_schedule=2)`` (0.21 and 0.13 relative off torch, 60 batches,
float64). Now k and the counter must be names no code may rebind by name
(``HookContext.global_shared``, as the micro-step loop's count and the plateau's numbers): the
step escapes. Trap twins: the same loop without the rebinding converts, exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import (
    converted,
    translate_nnx,
    translated_package_runs,
    translated_rel,
    worst_rel,
)
from tests.support import write_package

ENUMERATE = """\
import torch

K = 2
{rebind}
model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for i, (x, y) in enumerate(loader * 5):
    {in_loop}
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    if (i + 1) % K == 0:
        opt.step()
        opt.zero_grad()
    losses.append(loss.item())
"""

COUNTER = """\
import torch

K = 2
exec("K = 3")
model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
step = 0
for epoch in range(5):
    for x, y in loader:
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        step += 1
        if step % K == 0:
            opt.step()
            opt.zero_grad()
        losses.append(loss.item())
"""

CASES = {
    "exec": ENUMERATE.format(rebind='exec("K = 3")', in_loop="pass"),
    "globals_update": ENUMERATE.format(rebind='globals().update({"K": 3})', in_loop="pass"),
    "globals_item_in_loop": ENUMERATE.format(
        rebind="", in_loop='if i == 20:\n        globals()["K"] = 3'
    ),
    "counter": COUNTER,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_count_rebound_by_name_escapes(name: str) -> None:
    translated = translate_nnx(CASES[name])
    assert BEGIN in translated, f"{name}: converted\n{translated}"
    assert "rebind" in translated, translated


@pytest.mark.parametrize("name", ["enumerate", "counter"])
def test_the_same_loop_without_the_rebinding_still_converts_exactly(name: str) -> None:
    source = (
        ENUMERATE.format(rebind="", in_loop="pass")
        if name == "enumerate"
        else COUNTER.replace('exec("K = 3")\n', "")
    )
    translated, rel = translated_rel(source)
    assert BEGIN not in translated and "MultiSteps" in translated, translated
    assert rel < EXACT, f"{name}: rel {rel:.3e}\n{translated}"


PACKAGE_MAIN = """\
import torch

K = 2


def main(model, loader, epochs):
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for i, (x, y) in enumerate(loader * 5):
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        if (i + 1) % K == 0:
            opt.step()
            opt.zero_grad()
        losses.append(loss.item())
    return losses
"""

# another file of the repository sets the module's K before main() runs (0.21 relative off
# torch when it converted)
PACKAGE_INIT = """\
from {package} import main as _main

_main.K = 3
"""


def test_a_count_another_file_rebinds_escapes(tmp_path: Path) -> None:
    package = "rebound_k"
    files = {"main.py": PACKAGE_MAIN, "__init__.py": PACKAGE_INIT.format(package=package)}
    write_package(tmp_path, files, package)
    translated = converted(tmp_path, package)["main.py"]
    assert BEGIN in translated and "rebind" in translated, translated


def test_the_package_without_that_file_still_converts_exactly(tmp_path: Path) -> None:
    _, torch_run, nnx_run = translated_package_runs(
        tmp_path, "plain_k", {"main.py": PACKAGE_MAIN}, lambda outputs: outputs
    )
    assert worst_rel(torch_run, nnx_run) < EXACT
