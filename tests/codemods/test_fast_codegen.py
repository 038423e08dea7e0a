"""``rewrite.fast_codegen``: libcst's code generation with plain context managers writes the
same code and records the same positions."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst._nodes.internal import CodegenState

from ml_switcheroo.rewrite import fast_codegen
from ml_switcheroo.rewrite.positions import node_positions
from tests.codemods.test_positions import SOURCES, _libcst_positions

PARENTHESIZED = "x = ((a) + (b * (c)))\ny = (yield (z))\nf((1), *(g), **(h))\n"


def _round_trips(source: str) -> None:
    tree = cst.parse_module(source)
    assert tree.code == source.removesuffix("\r")  # libcst drops a last lone CR, as always
    assert list(node_positions(tree).items()) == _libcst_positions(tree)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_installed_code_and_positions_are_libcst_s(name: str) -> None:
    fast_codegen.install()
    _round_trips(SOURCES[name])
    _round_trips(PARENTHESIZED)


def test_installed_on_the_package_sources() -> None:
    fast_codegen.install()
    package = Path(__file__).resolve().parents[2] / "ml_switcheroo"
    for path in sorted(package.glob("rewrite/*.py")):
        _round_trips(path.read_text(encoding="utf-8"))


def test_no_right_parenthesis_after_an_error() -> None:
    node = cst.parse_expression("(a)")
    state = CodegenState(default_indent="    ", default_newline="\n")
    with pytest.raises(ValueError), fast_codegen._Parenthesized(node, state):
        raise ValueError
    assert "(" in state.tokens and ")" not in state.tokens


def test_installed_only_over_the_methods_it_repeats() -> None:
    assert all(repeats for _, _, _, repeats in fast_codegen._PATCHES)
