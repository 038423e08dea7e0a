"""A folder without ``__init__.py`` imported by a script of the folder above (a Python 3
namespace package: ``from helper.loops import train_vanilla as train`` in ``main.py`` next to
``helper/``, HobbitLong/RepDistiller) is a package of the repository rooted above it: the
callee file sees its caller and is converted or marked with true reasons, in both targets,
whether or not it imports torch itself. A file of such a folder that imports a module its own
folder holds (``from util import log`` next to ``helper/util.py``) may name two files by that
import (its folder's when it runs as a script, the root's when imported): its facts are
unknown and both files escape saying so (s40 held-out trial, F2)."""

from __future__ import annotations

import json
from pathlib import Path

import libcst as cst
import pytest
from libcst.codemod import CodemodContext

from ml_switcheroo.analysis.repository import repository_root
from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from ml_switcheroo.rewrite.report import Record
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import records_of, renders_a_step
from tests.test_convert_cli import run, tree

MAIN = """\
import torch
import torch.optim as optim

from helper.loops import train_vanilla as train


def main(model, loader, epochs):
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    criterion = torch.nn.MSELoss()
    for epoch in range(1, epochs + 1):
        train(epoch, loader, model, criterion, optimizer)
"""

LOOPS = """\
def train_vanilla(epoch, train_loader, model, criterion, optimizer):
    model.train()
    for x, y in train_loader:
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""

TORCH_LOOPS = "import torch\n\n" + LOOPS
# trap twin: `util` is `helper/util.py` when loops.py runs as a script, `util.py` when imported
AMBIGUOUS = {
    "main.py": MAIN,
    "helper/loops.py": "import torch\nfrom util import log\n\n" + LOOPS,
    "helper/util.py": "def log(x):\n    print(x)\n",
    "util.py": "def log(x):\n    print(x)\n",
}
AMBIGUITY = "imports `util`, which is its own folder's `util` when the file runs as a script"
TARGETS = [TorchToOptax, TorchToNNX]


def convert_files(root: Path, command: type) -> tuple[dict[str, str], list[Record]]:
    """Every ``.py`` file under ``root`` through ``command`` as libcst's runner calls it."""
    outputs: dict[str, str] = {}
    records: list[Record] = []
    for path in sorted(root.rglob("*.py")):
        context = CodemodContext(filename=str(path))
        module = cst.parse_module(path.read_text(encoding="utf-8"))
        outputs[path.relative_to(root).as_posix()] = command(context).transform_module(module).code
        records.extend(records_of(context))
    return outputs, records


def reasons(records: list[Record], file: str) -> list[str]:
    return [r.reason for r in records if r.kind == "escaped" and r.file.endswith(file)]


def test_a_namespace_folder_imported_by_a_script_above_it_is_under_that_scripts_root(
    tmp_path: Path,
) -> None:
    tree(tmp_path, {"main.py": MAIN, "helper/loops.py": LOOPS})
    assert repository_root(str(tmp_path / "helper" / "loops.py")) == str(tmp_path)


@pytest.mark.parametrize("loops", [LOOPS, TORCH_LOOPS], ids=["no-torch", "torch"])
def test_nnx_converts_the_step_of_the_namespace_package(loops: str, tmp_path: Path) -> None:
    tree(tmp_path, {"main.py": MAIN, "helper/loops.py": loops})
    outputs, records = convert_files(tmp_path, TorchToNNX)
    assert renders_a_step(outputs["helper/loops.py"]), records
    assert BEGIN not in outputs["helper/loops.py"] and BEGIN not in outputs["main.py"]


@pytest.mark.parametrize("loops", [LOOPS, TORCH_LOOPS], ids=["no-torch", "torch"])
def test_optax_drops_zero_grad_and_marks_the_step_of_the_namespace_package(
    loops: str, tmp_path: Path
) -> None:
    tree(tmp_path, {"main.py": MAIN, "helper/loops.py": loops})
    outputs, records = convert_files(tmp_path, TorchToOptax)
    assert "zero_grad" not in outputs["helper/loops.py"]
    (reason,) = reasons(records, "loops.py")
    assert reason.startswith("torch computes gradients into .grad"), reason


@pytest.mark.parametrize("command", TARGETS)
def test_an_import_naming_two_files_escapes_the_callee_saying_so(
    command: type, tmp_path: Path
) -> None:
    tree(tmp_path, AMBIGUOUS)
    outputs, records = convert_files(tmp_path, command)
    assert not renders_a_step(outputs["helper/loops.py"])
    found = reasons(records, "loops.py")
    assert any(AMBIGUITY in reason for reason in found), found  # optax: zero_grad's


@pytest.mark.parametrize("command", TARGETS)
def test_an_import_naming_two_files_escapes_the_callers_optimizer_saying_so(
    command: type, tmp_path: Path
) -> None:
    tree(tmp_path, AMBIGUOUS)
    outputs, records = convert_files(tmp_path, command)
    (reason,) = reasons(records, "main.py")
    assert AMBIGUITY in reason, reason


@pytest.mark.parametrize("target", ["optax", "nnx"])
def test_the_stages_keep_the_callee_without_torch(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree(tmp_path, {"repo/main.py": MAIN, "repo/helper/loops.py": LOOPS})

    def changed(*extra: str) -> set[str]:
        report = tmp_path / "report.json"
        arguments = ["--target", target, "--no-cache", "--report", str(report), *extra]
        code, _, _ = run(capsys, *arguments, "repo", cwd=tmp_path)
        assert code == 0
        files = json.loads(report.read_text())["files"]
        return {Path(f["file"]).name for f in files if f["changed"]}

    assert changed() == changed("--no-prefilter") == {"main.py", "loops.py"}


# a file of the namespace folder handing its optimizer to `log` of such an import: the root's
# `log` prints it, its own folder's writes its lr
HANDING = {
    "main.py": "from helper.run import fit\n\nfit(None)\n",
    "util.py": "def log(optimizer):\n    print(optimizer)\n",
    "helper/util.py": 'def log(optimizer):\n    optimizer.param_groups[0]["lr"] = 0.5\n',
    "helper/run.py": "import torch\nfrom util import log\n\n\ndef fit(model):\n"
    "    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n    log(optimizer)\n",
}


@pytest.mark.parametrize("command", TARGETS)
def test_an_optimizer_handed_through_an_import_naming_two_files_escapes_saying_so(
    command: type, tmp_path: Path
) -> None:
    tree(tmp_path, HANDING)
    _, records = convert_files(tmp_path, command)
    (reason,) = reasons(records, "run.py")
    assert "`log(...)` gets `optimizer`" in reason and AMBIGUITY in reason, reason
