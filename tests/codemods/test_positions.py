"""``rewrite.positions.node_positions`` resolves what libcst's ``PositionProvider`` does."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from ml_switcheroo.rewrite.positions import node_positions

SOURCES = {
    "crlf": "import torch\r\nopt = torch.optim.SGD(p, lr=0.1)\r\nopt.step()\r\n",
    "lone_cr": "x = 1\ry = (\r  2)\r",
    "multiline_string": 'doc = """a\nb\r\nc"""\nf(doc, *args, **kw)\n',
    "decorated": "@decorator(1)\n@other\nclass A(B):\n    '''doc'''\n\n    def f(self):  # c\n        return [x for x in y if x]\n",
    "compound": (
        "try:\n    with open(f) as h, g() as (a, b):\n        pass\nexcept (E, F) as e:\n"
        "    raise\nelse:\n    del a[0], b.c\nfinally:\n    lambda x=1, *y, **z: x\n"
    ),
    "fstring_and_ops": "v = f'{a!r:>{w}}' if not a else -b ** 2 @ c\nasync def g():\n    await h()\n",
    "no_trailing_newline": "if x:\n    y = 1",
    "empty": "",
    "comments_only": "# a comment\n\n",
    "tabs": "def f():\n\tif x:\n\t\treturn (\n\t\t\t1,\n\t\t)\n",
}


def _libcst_positions(tree: cst.Module) -> list[tuple[cst.CSTNode, object]]:
    return list(MetadataWrapper(tree, unsafe_skip_copy=True).resolve(PositionProvider).items())


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_positions_equal_libcst_node_for_node(name: str) -> None:
    tree = cst.parse_module(SOURCES[name])
    assert list(node_positions(tree).items()) == _libcst_positions(tree)


def test_positions_equal_libcst_on_the_package_sources() -> None:
    package = Path(__file__).resolve().parents[2] / "ml_switcheroo"
    for path in sorted(package.glob("rewrite/*.py")):
        tree = cst.parse_module(path.read_bytes())
        assert list(node_positions(tree).items()) == _libcst_positions(tree), path


def test_a_node_of_another_tree_has_no_position() -> None:
    positions = node_positions(cst.parse_module("x = 1\n"))
    assert positions.get(cst.Name("x")) is None
