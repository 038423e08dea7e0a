"""Parameters frozen by a ``setattr`` of a computed name in a file imported only through
another (s23e): ``main.py`` calls ``change(model)`` of ``helpers.py``, which calls
``freeze(m)`` of ``freezing.py``: ``def freeze(m, attr='requires_grad')`` runs
``setattr(p, attr, False)`` over ``m.hidden``. torch never updates the frozen layer; the NNX
optimizer trains it: measured at main (converted; the helpers ported as doing nothing), 0.845
relative off torch over 36 updates. Such a call counts in a function holding the attribute's
name as a string and escapes the optimizer; a computed ``setattr`` in a function that never
names ``requires_grad`` (a config loader's ``setattr(obj, key, value)``) keeps the
translation, exact."""

from __future__ import annotations

from pathlib import Path

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import (
    converted,
    helper_package,
    translated_package_runs,
    worst_rel,
)
from tests.support import write_package

HELPERS = "from PACKAGE.freezing import freeze\n\n\ndef change(m):\n    freeze(m)\n"
FREEZING = (
    "def freeze(m, attr='requires_grad'):\n"
    "    for p in m.hidden.parameters():\n"
    "        setattr(p, attr, False)\n"
)
RECORDS = (
    "from PACKAGE.records import Recorder\n\n\nclass Note:\n    pass\n\n\n"
    "def change(m):\n    Recorder().record(Note(), 'seen', True)\n"
)
# A generic setter in a method, not naming requires_grad: no freeze. (The same setter as a
# module-level function two files away counts, soundly: another caller may pass the name.)
RECORDING = (
    "class Recorder:\n    def record(self, obj, key, value):\n        setattr(obj, key, value)\n"
)


def _files(package: str, helpers: str, name: str, second: str) -> dict[str, str]:
    files = helper_package(package, helpers.replace("PACKAGE", package))
    return {**files, name: second}


def test_a_computed_setattr_naming_requires_grad_two_files_away_escapes(tmp_path: Path) -> None:
    package = "frozen_two_away"
    write_package(tmp_path, _files(package, HELPERS, "freezing.py", FREEZING), package)
    translated = converted(tmp_path, package)["main.py"]
    assert "opt = nnx.Optimizer" not in translated, translated
    said = (
        "a file of the repository this file imports freezes parameters where this file may run"
        f" it (`setattr(p, attr, False)` in `{package}/freezing.py:3`)"
    )
    assert said in translated, translated


def test_a_computed_setattr_not_naming_it_two_files_away_keeps_the_exact_translation(
    tmp_path: Path,
) -> None:
    package = "records_two_away"
    files = _files(package, RECORDS, "records.py", RECORDING)
    outputs, torch_run, nnx_run = translated_package_runs(
        tmp_path, package, files, lambda outputs: outputs
    )
    assert BEGIN not in outputs["main.py"], outputs["main.py"]
    assert len(torch_run.losses) == 36
    assert worst_rel(torch_run, nnx_run) < EXACT
