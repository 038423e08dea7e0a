"""An optimizer bound to a module-level variable (at module level, or under ``global opt``) that
another file of the repository reaches: handed to its function by a function reading the
global, imported by name, read as ``main.opt``. The other file keeps torch calls on it, so the
constructor's file escapes, naming the ``file:line`` that decided (a crash at run time
otherwise: ``opt.step()`` on an optax object)."""

from __future__ import annotations

from pathlib import Path

from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.rewrite.report import Record
from tests.support import convert_in_process, run_libcst_tool, write_package

ENGINE = """\
def train(model, opt, loader):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
"""

GLOBAL_MAIN = """\
import torch

from pkg.engine import train

opt = None


def setup(model):
    global opt
    opt = torch.optim.SGD(model.parameters(), lr=0.1)


def main(model, loader):
    setup(model)
    train(model, opt, loader)
"""

MODULE_MAIN = """\
import torch

model = torch.nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
"""

IMPORTING_ENGINE = """\
from pkg.main import model, opt


def train(loader):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
"""


def escape_reasons(records: list[Record]) -> list[str]:
    return [r.reason for r in records if r.kind == "escaped"]


def test_a_global_optimizer_handed_to_another_file_escapes_the_hand_over(
    tmp_path: Path,
) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": GLOBAL_MAIN})
    _, records = convert_in_process(tmp_path)
    (reason,) = escape_reasons(records)
    assert "`train(...)` gets `opt`" in reason
    assert "pkg/main.py:15 passes `opt`, which is not bound once to a call" in reason


def test_a_global_optimizer_handed_to_another_file_leaves_that_file_as_it_is(
    tmp_path: Path,
) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": GLOBAL_MAIN})
    outputs, _ = convert_in_process(tmp_path)
    assert outputs["engine.py"] == ENGINE


def test_the_global_hand_over_is_the_same_under_libcst_tool(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": GLOBAL_MAIN})
    expected, _ = convert_in_process(tmp_path)
    run_libcst_tool(tmp_path, "optimizer.TorchToOptax")
    for name in ("engine.py", "main.py"):
        assert (tmp_path / "pkg" / name).read_text(encoding="utf-8") == expected[name]


def test_the_global_hand_over_escapes_for_nnx(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": GLOBAL_MAIN})
    outputs, records = convert_in_process(tmp_path, TorchToNNX)
    assert any("`train(...)` gets `opt`" in r for r in escape_reasons(records))
    assert outputs["engine.py"] == ENGINE


def test_a_global_read_by_another_function_of_the_file_is_followed(tmp_path: Path) -> None:
    main = GLOBAL_MAIN.replace("train(model, opt, loader)", "pickle.dumps(opt)")
    main = main.replace("from pkg.engine import train", "import pickle")
    write_package(tmp_path, {"main.py": main})
    _, records = convert_in_process(tmp_path)
    assert any("`pickle.dumps(...)` gets `opt`" in r for r in escape_reasons(records))


def test_a_module_optimizer_imported_by_another_file_escapes_naming_the_import(
    tmp_path: Path,
) -> None:
    write_package(tmp_path, {"engine.py": IMPORTING_ENGINE, "main.py": MODULE_MAIN})
    outputs, records = convert_in_process(tmp_path)
    (reason,) = escape_reasons(records)
    assert "pkg/engine.py:1 reads `opt` of this module" in reason
    assert "torch.optim.SGD(" in outputs["main.py"]


def test_a_module_optimizer_read_as_an_attribute_escapes_naming_the_read(
    tmp_path: Path,
) -> None:
    engine = "from pkg import main\n\n\ndef step():\n    main.opt.step()\n"
    write_package(tmp_path, {"engine.py": engine, "main.py": MODULE_MAIN})
    _, records = convert_in_process(tmp_path)
    (reason,) = escape_reasons(records)
    assert "pkg/engine.py:5 reads `opt` of this module" in reason


def test_a_global_optimizer_read_through_a_dotted_import_escapes(tmp_path: Path) -> None:
    engine = "import pkg.main\n\n\ndef step():\n    pkg.main.opt.step()\n"
    write_package(tmp_path, {"engine.py": engine, "main.py": GLOBAL_MAIN})
    _, records = convert_in_process(tmp_path)
    assert any("pkg/engine.py:5 reads `opt` of this module" in r for r in escape_reasons(records))


def test_a_star_import_of_the_module_escapes(tmp_path: Path) -> None:
    engine = "from pkg.main import *\n\n\ndef step():\n    opt.step()\n"
    write_package(tmp_path, {"engine.py": engine, "main.py": MODULE_MAIN})
    _, records = convert_in_process(tmp_path)
    (reason,) = escape_reasons(records)
    assert "pkg/engine.py:1 reads `opt` of this module" in reason


def test_a_module_optimizer_another_file_does_not_read_converts(tmp_path: Path) -> None:
    other = "from pkg.main import model\n\n\ndef predict(x, opt=None):\n    return model(x)\n"
    write_package(tmp_path, {"other.py": other, "main.py": MODULE_MAIN})
    outputs, records = convert_in_process(tmp_path)
    assert escape_reasons(records) == []
    assert "opt = optax.sgd(learning_rate=0.1)" in outputs["main.py"]
