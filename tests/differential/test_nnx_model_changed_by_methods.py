"""A model changed after its optimizer took its parameters by a method of an object holding it
(s22a): ``surgeon = Surgeon(model)`` stores the model in ``self.model``; after the optimizer,
``surgeon.replace_head()`` assigns ``self.model.out``. torch's optimizer keeps the old head's
tensors, the NNX optimizer trains the new head: measured at main, 1.19 relative off torch over
36 NNX updates (the class of the file; 1.28 for a class of another file whose method stores
``copy.deepcopy`` of the head, and for a function re-exported by a package's ``__init__.py``).
Such a call escapes the optimizer; a method that only reads the model, one called before the
optimizer, and ``Trainer(model, opt).fit()`` that steps keep the translation, exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import (
    converted,
    helper_package,
    run_nnx_loop,
    run_torch_loop,
    translate_nnx,
    translated_package_runs,
    worst_rel,
)
from tests.differential.test_nnx_model_changed import REASON, _nnx_head, _torch_head
from tests.support import run_codemod, write_package

SURGEON = """\
import torch


class Surgeon:
    def __init__(self, model, scale=1.0):
        self.model = model
        self.scale = scale

    def replace_head(self):
        self.model.out = make_head()

    def replace_through_helper(self):
        self._swap()

    def _swap(self):
        head = make_head()
        self.model.out = head

    def replace_handed(self, net):
        net.out = make_head()

    def read_head(self):
        return self.model.out, self.scale


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

NAMES = ({"make_head": _torch_head}, {"make_head": _nnx_head})


def _surgeon(before: str = "", after: str = "") -> str:
    return SURGEON.replace("BEFORE\n", before + "\n" if before else "").replace(
        "AFTER\n", after + "\n" if after else ""
    )


def _rel(source: str, translated: str) -> float:
    """The worst relative difference of the translation run (with the NNX head) from torch."""
    torch_run = run_torch_loop(source, names=NAMES[0])
    return worst_rel(torch_run, run_nnx_loop(source, translated, names=NAMES[1]))


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("surgeon = Surgeon(model)", "surgeon.replace_head()"),
        ("", "Surgeon(model).replace_head()"),
        ("surgeon = Surgeon(model, scale=2.0)", "surgeon.replace_through_helper()"),
        ("surgeon = Surgeon(model.hidden)", "surgeon.replace_head()"),
        ("surgeon = Surgeon(None)", "surgeon.replace_handed(model)"),
    ],
)
def test_a_method_changing_a_held_model_after_the_optimizer_escapes_it(
    before: str, after: str
) -> None:
    """Measured at main (the optimizer converted): 1.19 relative off torch over 36 updates;
    ``Surgeon(model.hidden)`` changes ``model.hidden.out``, an attribute the model's forward
    never reads, but it is a change of the parameters as much as any (escaped)."""
    translated = translate_nnx(_surgeon(before, after))
    assert "opt = nnx.Optimizer" not in translated, translated
    assert REASON.format(change=after) in translated, translated


def test_the_escaped_method_call_trains_another_head_when_translated() -> None:
    """The escape is not for nothing: the optimizer built before the change, as main wrote
    it, trains the head torch leaves alone."""
    source = _surgeon("surgeon = Surgeon(model)", "surgeon.replace_head()")
    translated = translate_nnx(_surgeon("surgeon = Surgeon(model)\nsurgeon.replace_head()"))
    assert _rel(source, translated) > 0.1


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("surgeon = Surgeon(model)\nsurgeon.replace_head()", ""),
        ("surgeon = Surgeon(model)", "head = surgeon.read_head()"),
        ("surgeon = Surgeon(None)", "surgeon.replace_handed(torch.nn.Sequential())"),
    ],
)
def test_a_method_changing_it_before_or_only_reading_it_keeps_the_exact_translation(
    before: str, after: str
) -> None:
    source = _surgeon(before, after)
    translated = translate_nnx(source)
    assert BEGIN not in translated, translated
    assert _rel(source, translated) < EXACT


def test_the_optax_target_escapes_a_method_changing_a_held_model() -> None:
    output = run_codemod(_surgeon("surgeon = Surgeon(model)", "surgeon.replace_head()"))
    assert "opt = optax" not in output, output
    assert REASON.format(change="surgeon.replace_head()") in output, output


TRAINER = """\
import torch


class Trainer:
    def __init__(self, model, opt):
        self.model = model
        self.opt = opt

    def fit(self):
        CHANGE
        for epoch in range(EPOCHS):
            for x, y in loader:
                self.opt.zero_grad()
                loss = ((self.model(x) - y) ** 2).mean()
                loss.backward()
                self.opt.step()
                losses.append(loss.item())


model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
Trainer(model, opt).fit()
"""


def test_a_trainer_holding_the_model_that_steps_keeps_the_exact_translation() -> None:
    source = TRAINER.replace("        CHANGE\n", "")
    translated = translate_nnx(source)
    assert BEGIN not in translated, translated
    assert "self.opt.update(self.model, grads)" in translated, translated
    assert _rel(source, translated) < EXACT


def test_a_trainer_changing_the_model_before_it_steps_escapes() -> None:
    translated = translate_nnx(TRAINER.replace("CHANGE", "self.model.out = make_head()"))
    assert "opt = nnx.Optimizer" not in translated, translated
    assert REASON.format(change="Trainer(model, opt).fit()") in translated, translated


SURGERY = """\
import copy


class Surgeon:
    def __init__(self, model):
        self.model = model

    def change(self):
        self.model.out = copy.deepcopy(self.model.out)

    def read(self):
        return self.model.out
"""

SURGERY_MAIN = """\
import torch

from PACKAGE.surgery import Surgeon


def main(model, loader, epochs):
    losses = []
    surgeon = Surgeon(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    surgeon.METHOD()
    for epoch in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses
"""


def _surgery(package: str, method: str) -> dict[str, str]:
    main = SURGERY_MAIN.replace("PACKAGE", package).replace("METHOD", method)
    return {"main.py": main, "surgery.py": SURGERY}


def test_a_method_of_another_files_class_changing_the_model_escapes(tmp_path: Path) -> None:
    """Measured at main (the optimizer converted, ``copy.deepcopy`` ported as ``nnx.clone``):
    1.28 relative off torch over 36 updates."""
    write_package(tmp_path, _surgery("surgery_pkg", "change"), "surgery_pkg")
    translated = converted(tmp_path, "surgery_pkg")["main.py"]
    assert "opt = nnx.Optimizer" not in translated, translated
    said = (
        "(`surgeon.change()`, which runs `self.model.out = copy.deepcopy(self.model.out)` "
        "in `surgery_pkg/surgery.py:9`)"
    )
    assert said in translated, translated


def test_a_method_of_another_files_class_reading_the_model_keeps_the_exact_translation(
    tmp_path: Path,
) -> None:
    outputs, torch_run, nnx_run = translated_package_runs(
        tmp_path, "reads_pkg", _surgery("reads_pkg", "read"), lambda outputs: outputs
    )
    assert BEGIN not in outputs["main.py"], outputs["main.py"]
    assert len(torch_run.losses) == 36
    assert worst_rel(torch_run, nnx_run) < EXACT


REPLACES = "import copy\n\n\ndef change(m):\n    m.out = copy.deepcopy(m.out)\n"
READS = "def change(m):\n    return m.out\n"
REEXPORT = "from .helpers import change\n"


def _reexported(package: str, helper: str) -> dict[str, str]:
    """``helper_package`` whose ``main.py`` imports ``change`` from the package, whose
    ``__init__.py`` re-exports it from ``helpers.py``."""
    files = helper_package(package, helper)
    main = files["main.py"].replace(f"from {package}.helpers import", f"from {package} import")
    return {**files, "main.py": main}


def _write_reexporting(root: Path, package: str, files: dict[str, str]) -> None:
    write_package(root, files, package)
    (root / package / "__init__.py").write_text(REEXPORT, encoding="utf-8")


def test_a_function_re_exported_by_a_package_changing_the_model_escapes(tmp_path: Path) -> None:
    """Measured at main (the optimizer converted): 1.28 relative off torch over 36 updates."""
    _write_reexporting(tmp_path, "reexports", _reexported("reexports", REPLACES))
    translated = converted(tmp_path, "reexports")["main.py"]
    assert "opt = nnx.Optimizer" not in translated, translated
    said = (
        "(`change(model)`, which runs `m.out = copy.deepcopy(m.out)` in `reexports/helpers.py:5`)"
    )
    assert said in translated, translated


def test_a_re_exported_function_reading_the_model_converts(tmp_path: Path) -> None:
    _write_reexporting(tmp_path, "reexports_reads", _reexported("reexports_reads", READS))
    translated = converted(tmp_path, "reexports_reads")["main.py"]
    assert "opt = nnx.Optimizer" in translated and BEGIN not in translated, translated


BUILDING = """\
import torch


class Trainer:
    def __init__(self, model):
        self.model = model
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9)

    def other(self):
        OTHER

    def fit(self):
        for epoch in range(EPOCHS):
            for x, y in loader:
                self.opt.zero_grad()
                loss = ((self.model(x) - y) ** 2).mean()
                loss.backward()
                self.opt.step()
                losses.append(loss.item())


model = make_model()
trainer = Trainer(model)
trainer.other()
trainer.fit()
"""


def _building(other: str) -> str:
    return BUILDING.replace("OTHER", other)


def test_another_method_changing_the_model_an_optimizer_of_the_class_took_escapes() -> None:
    """The optimizer built in ``__init__`` over ``self.model.parameters()``, another method
    of the class storing ``self.model.out``: measured at main (converted), 1.19 relative off
    torch over 36 NNX updates."""
    translated = translate_nnx(_building("self.model.out = make_head()"))
    assert "self.opt = nnx.Optimizer" not in translated, translated
    assert REASON.format(change="self.model.out = make_head()") in translated, translated
    output = run_codemod(_building("self.model.out = make_head()"))
    assert REASON.format(change="self.model.out = make_head()") in output, output


@pytest.mark.parametrize("other", ["self.head = self.model.out", "self.model.train()"])
def test_another_method_only_reading_the_model_keeps_the_exact_translation(other: str) -> None:
    source = _building(other)
    translated = translate_nnx(source)
    assert BEGIN not in translated, translated
    assert "self.opt = nnx.Optimizer(self.model" in translated, translated
    assert _rel(source, translated) < EXACT
