"""Freezes a caller makes before running this file's code (s24g): ``training.py`` builds its
optimizer over the model ``train(model, ...)`` is handed; ``main.py``, which imports it, freezes
``model.hidden`` first (itself, or through a helper of a third file). torch never moves the frozen
layer (no gradient: no update, no weight decay, no momentum); the translation (JAX has no
requires_grad; the port of the freeze does nothing) trains it. Silent before: the NNX codemod's
own output 0.82 relative off torch over 36 updates (float64; SGD, momentum 0.9, weight decay
0.01). A file that a file of the repository importing it (to any depth) may freeze before it
escapes its optimizers, naming the freeze; a caller freezing nothing keeps the exact
translation."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT, translate_package
from tests.differential.nnx_loops import converted, translated_package_runs, worst_rel
from tests.support import write_package

TRAIN = """\
import torch


def train(model, loader, epochs):
    losses = []
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=0.01)
    for epoch in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses
"""

MAIN = """\
from PACKAGE.training import train


def main(model, loader, epochs):
    FREEZE
    return train(model, loader, epochs)
"""

OWN = "model.hidden.requires_grad_(False)"
HELPED = "freeze_hidden(model)"
HELPER = (
    "def freeze_hidden(m):\n    for p in m.hidden.parameters():\n        p.requires_grad = False\n"
)

CALLERS = {
    # main.py freezes itself
    "own": ({}, OWN, "main.py:5"),
    # main.py runs a freeze of a file it imports (training.py does not)
    "helper": ({"helpers.py": HELPER}, HELPED, "helpers.py:3"),
    # a file importing main.py (which imports training.py) freezes
    "outer": (
        {
            "run.py": "from PACKAGE.main import main\n\n\ndef go(m, d):\n    OWN\n    main(m, d, 3)\n"
        },
        "pass",
        "run.py:5",
    ),
}


def _files(package: str, caller: str) -> dict[str, str]:
    others, freeze, _ = CALLERS[caller]
    main = MAIN.replace("FREEZE", freeze)
    if caller == "helper":
        main = "from PACKAGE.helpers import freeze_hidden\n" + main
    files = {"training.py": TRAIN, "main.py": main, **others}
    return {k: v.replace("PACKAGE", package).replace("OWN", OWN) for k, v in files.items()}


@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_a_freeze_by_a_file_importing_the_trainer_escapes_in_nnx(
    tmp_path: Path, caller: str
) -> None:
    package = f"callers_{caller}"
    write_package(tmp_path, _files(package, caller), package)
    translated = converted(tmp_path, package)["training.py"]
    assert "opt = nnx.Optimizer" not in translated, translated
    place = CALLERS[caller][2]
    said = "a file of the repository importing this file may freeze parameters"
    assert said in translated, translated
    assert f"in `{package}/{place}`)" in translated, translated


@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_a_freeze_by_a_file_importing_the_trainer_escapes_in_optax(
    tmp_path: Path, caller: str
) -> None:
    package = f"callers_optax_{caller}"
    files = {f"{package}/{k}": v for k, v in _files(package, caller).items()}
    translations = translate_package(tmp_path, {f"{package}/__init__.py": "", **files})
    escapes = translations[f"{package}/training.py"].escapes
    (record,) = [r for r in escapes if r.api == "torch.optim.SGD"]
    assert record.reason.startswith("a file of the repository importing this file"), record.reason
    assert f"in `{package}/{CALLERS[caller][2]}`)" in record.reason, record.reason


def test_a_caller_freezing_nothing_keeps_the_exact_translation(tmp_path: Path) -> None:
    """The twin: ``main.py`` runs ``change`` of a helper file that also defines a freeze
    nothing ``main.py`` runs names."""
    package = "callers_none"
    files = _files(package, "helper")
    files["main.py"] = files["main.py"].replace("freeze_hidden", "change")
    files["helpers.py"] = "def change(m):\n    pass\n\n\n" + HELPER
    outputs, torch_run, nnx_run = translated_package_runs(
        tmp_path, package, files, lambda outputs: outputs
    )
    assert BEGIN not in outputs["training.py"], outputs["training.py"]
    assert "opt = nnx.Optimizer" in outputs["training.py"], outputs["training.py"]
    assert worst_rel(torch_run, nnx_run) < EXACT


def test_the_measured_silent_wrong_of_the_old_translation(tmp_path: Path) -> None:
    """What the escape prevents: the NNX translation ``training.py`` had with the freeze in
    ``main.py`` (written here as the codemod wrote it), run against torch."""
    package = "callers_measured"
    files = _files(package, "own")
    port = {"main.py": files["main.py"].replace(OWN, "pass")}
    write_package(tmp_path / "twin", {**files, "main.py": port["main.py"]}, package)
    nnx_training = converted(tmp_path / "twin", package)["training.py"]
    assert "opt = nnx.Optimizer" in nnx_training, nnx_training

    def ported(outputs: dict[str, str]) -> dict[str, str]:
        return {**outputs, "training.py": nnx_training, **port}

    _, torch_run, nnx_run = translated_package_runs(tmp_path, package, files, ported)
    assert worst_rel(torch_run, nnx_run) > 0.5
