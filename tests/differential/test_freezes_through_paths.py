"""Freezes stop 21 did not follow (s22b). Each was silent before, measured on the NNX
codemod's own output against torch (float64, 36 updates; the port of the freeze does
nothing, JAX has no requires_grad): 0.85 relative off torch for each of

- ``setattr(p, name, False)`` with a computed name (a variable, an f-string, a module
  constant of an imported file): the name may be ``requires_grad``;
- a freeze in a file the file imports only through another (``main`` imports ``helpers``,
  whose ``change`` calls ``freeze_hidden`` of ``deep.py``).

They escape, naming the freeze and its place; a setattr of another literal attribute and a
transitive import that freezes nothing keep the exact translation."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import (
    converted,
    helper_package,
    translate_nnx,
    translated_package_runs,
    translated_rel,
    worst_rel,
)
from tests.differential.test_nnx_loops import PLAIN_LOOP
from tests.support import write_package

SETTERS = [
    "name = 'requires_grad'\nfor p in model.hidden.parameters():\n    setattr(p, name, False)\n",
    "for p in model.hidden.parameters():\n    setattr(p, f'requires_{\"grad\"}', False)\n",
    "def freeze(m, name):\n    for p in m.parameters():\n        setattr(p, name, False)\n\n\n"
    "freeze(model.hidden, 'requires_grad')\n",
]


@pytest.mark.parametrize("setter", SETTERS)
def test_a_setattr_of_a_computed_name_escapes(setter: str) -> None:
    source = PLAIN_LOOP.replace("for epoch", setter + "for epoch")
    translated = translate_nnx(source)
    assert "opt = nnx.Optimizer" not in translated, translated
    assert "this file freezes parameters (`setattr(p, " in translated, translated


def test_a_setattr_of_a_computed_name_in_an_imported_file_escapes(tmp_path: Path) -> None:
    helper = (
        "NAME = 'requires_grad'\n\n\ndef change(m):\n    for p in m.hidden.parameters():\n"
        "        setattr(p, NAME, False)\n"
    )
    write_package(tmp_path, helper_package("set_named", helper), "set_named")
    translated = converted(tmp_path, "set_named")["main.py"]
    assert "opt = nnx.Optimizer" not in translated, translated
    assert "(`setattr(p, NAME, False)` in `set_named/helpers.py:6`)" in translated, translated


def test_a_setattr_of_another_literal_attribute_keeps_the_exact_translation(
    tmp_path: Path,
) -> None:
    helper = "def change(m):\n    setattr(m, 'frozen_note', False)\n"
    outputs, torch_run, nnx_run = translated_package_runs(
        tmp_path, "set_other", helper_package("set_other", helper), lambda outputs: outputs
    )
    assert BEGIN not in outputs["main.py"], outputs["main.py"]
    assert worst_rel(torch_run, nnx_run) < EXACT


HELPER = "from PACKAGE.MIDDLE import freeze_hidden\n\n\ndef change(m):\n    freeze_hidden(m)\n"
FREEZE = "def freeze_hidden(m):\n    m.hidden.requires_grad_(False)\n"
NOTHING = "def freeze_hidden(m):\n    m.hidden.frozen_note = False\n"


def _transitive(package: str, deep: str, middle: bool = False) -> dict[str, str]:
    """``main.py`` imports ``change`` of ``helpers.py``, which calls ``freeze_hidden`` of
    ``deep.py`` (through ``middle.py``, re-exporting it, with ``middle``)."""
    files = helper_package(package, HELPER.replace("PACKAGE", package))
    files["deep.py"] = deep
    if middle:
        files["middle.py"] = f"from {package}.deep import freeze_hidden  # noqa: F401\n"
    else:
        files["helpers.py"] = files["helpers.py"].replace("MIDDLE", "deep")
    files["helpers.py"] = files["helpers.py"].replace("MIDDLE", "middle")
    return files


@pytest.mark.parametrize("middle", [False, True])
def test_a_freeze_in_a_file_imported_through_another_escapes(tmp_path: Path, middle: bool) -> None:
    package = f"deep_freeze_{int(middle)}"
    write_package(tmp_path, _transitive(package, FREEZE, middle), package)
    translated = converted(tmp_path, package)["main.py"]
    assert "opt = nnx.Optimizer" not in translated, translated
    said = f"may run it (`m.hidden.requires_grad_(False)` in `{package}/deep.py:2`)"
    assert said in translated, translated


def test_a_freeze_of_a_transitive_file_no_file_names_keeps_the_translation(
    tmp_path: Path,
) -> None:
    deep = NOTHING + "\n\ndef thaw_none(m):\n    m.requires_grad_(False)\n"
    write_package(tmp_path, _transitive("deep_unused", deep), "deep_unused")
    assert "opt = nnx.Optimizer" in converted(tmp_path, "deep_unused")["main.py"]


def test_a_transitive_import_freezing_nothing_keeps_the_exact_translation(
    tmp_path: Path,
) -> None:
    outputs, torch_run, nnx_run = translated_package_runs(
        tmp_path, "deep_nothing", _transitive("deep_nothing", NOTHING, True), lambda o: o
    )
    assert BEGIN not in outputs["main.py"], outputs["main.py"]
    assert worst_rel(torch_run, nnx_run) < EXACT


CONFIG = """\
class Config:
    def __init__(self, **options):
        for key, value in options.items():
            setattr(self, key, value)


cfg = Config(lr=0.05, tag=False)
"""


def test_a_setattr_of_a_computed_name_on_self_of_a_plain_class_keeps_the_translation() -> None:
    """``setattr(self, key, value)`` in a method of a class based on no tensor class (the map's
    ``tensor_classes``) sets an attribute of that object, no tensor's requires_grad."""
    source = PLAIN_LOOP.replace("model = make_model()", CONFIG + "model = make_model()")
    translated, rel = translated_rel(source)
    assert BEGIN not in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"


@pytest.mark.parametrize(
    "shape",
    [
        CONFIG.replace("class Config:", "class Config(torch.nn.Parameter):"),
        CONFIG.replace("    def __init__", "    @staticmethod\n    def __init__"),
        CONFIG.replace("setattr(self, key, value)", "setattr(options['p'], key, value)"),
        CONFIG.replace("class Config:", "class Config(make_base()):"),
    ],
)
def test_a_setattr_of_a_computed_name_on_what_may_be_a_tensor_escapes(shape: str) -> None:
    """On ``self`` of a class based on a tensor class (or on something not a dotted name), of
    a staticmethod, or on another object."""
    source = PLAIN_LOOP.replace("model = make_model()", shape + "model = make_model()")
    assert "this file freezes parameters (`setattr(" in translate_nnx(source)


def test_a_setattr_on_self_in_an_imported_file_keeps_the_translation(tmp_path: Path) -> None:
    helper = CONFIG.replace("cfg = Config(lr=0.05, tag=False)\n", "") + (
        "\n\ndef change(m):\n    Config(note=False)\n"
    )
    write_package(tmp_path, helper_package("config_self", helper), "config_self")
    assert "opt = nnx.Optimizer" in converted(tmp_path, "config_self")["main.py"]


def test_a_computed_setattr_of_a_tensor_class_in_an_imported_file_escapes(tmp_path: Path) -> None:
    helper = CONFIG.replace("class Config:", "class Config(Parameter):")
    helper = "from torch.nn import Parameter\n\n\n" + helper.replace(
        "cfg = Config(lr=0.05, tag=False)\n", ""
    )
    helper += "\n\ndef change(m):\n    Config(note=False)\n"
    write_package(tmp_path, helper_package("tensor_self", helper), "tensor_self")
    translated = converted(tmp_path, "tensor_self")["main.py"]
    assert "(`setattr(self, key, value)` in `tensor_self/helpers.py:7`)" in translated, translated
