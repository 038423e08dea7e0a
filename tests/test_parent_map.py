"""``analysis.parents.parent_map`` is libcst's ``ParentNodeProvider`` map, made cheaply."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, ParentNodeProvider

from ml_switcheroo.analysis.parents import parent_map

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted(
    [
        *(REPO / "examples").glob("*.py"),
        REPO / "tests" / "differential" / "harness.py",
        REPO / "ml_switcheroo" / "analysis" / "plan.py",
    ]
)
TRICKY = """\
# coding: utf-8
@decorator(x=1)
async def f(a, /, b: int = 2, *args, c, **kw) -> "T":
    global g
    x = [i async for i in y if i] + {k: v for k, v in z.items()}
    print(f"{x!r:>{w}} {{}}", *a, **kw)
    with (open(p) as h, lock):
        match x:
            case [1, *rest] | {"k": _}:
                pass
    lambda q=1, *r: q if r else (yield)
    del a[1:2, ::3], b.c
    try:
        raise E from e
    except* (A, B) as err:
        ...
"""


def _provider_parents(tree: cst.Module) -> dict[cst.CSTNode, cst.CSTNode]:
    return dict(MetadataWrapper(tree, unsafe_skip_copy=True).resolve(ParentNodeProvider))


@pytest.mark.parametrize("source", [*SOURCES, None], ids=lambda p: p.name if p else "tricky")
def test_parent_map_is_the_parent_node_providers_map(source: Path | None) -> None:
    tree = cst.parse_module(source.read_bytes() if source else TRICKY)
    expected = _provider_parents(tree)
    found = parent_map(tree)
    assert found.keys() == expected.keys()
    assert all(found[node] is expected[node] for node in expected)
