"""The semantic map's YAML is read by libyaml when it may be (``semantic_map._load_yaml``): the
same values, types and key lines as the pure-Python ``_MapLoader``, whose errors stay the ones
reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ml_switcheroo.spec import semantic_map
from ml_switcheroo.spec.errors import SemanticMapError

PACKAGE = Path(semantic_map.__file__).resolve().parent.parent
MAPS = sorted([PACKAGE / "semantic_map.yaml", *PACKAGE.glob("targets/*/*.yaml")])


def same(fast: Any, slow: Any) -> bool:
    """Equal values of equal types, and equal key lines in every mapping."""
    if type(fast) is not type(slow):
        return False
    if isinstance(fast, dict):
        if list(fast) != list(slow) or (fast.line, fast.lines) != (slow.line, slow.lines):
            return False
        return all(same(fast[key], slow[key]) for key in fast)
    if isinstance(fast, list):
        return len(fast) == len(slow) and all(map(same, fast, slow))
    return bool(fast == slow)


@pytest.mark.parametrize("path", MAPS, ids=lambda p: p.name)
def test_a_shipped_map_reads_the_same_through_libyaml(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert semantic_map._fast_loader_reads(text)
    assert same(semantic_map._load_yaml(text), yaml.load(text, Loader=semantic_map._MapLoader))  # noqa: S506


def test_yaml_1_2_floats_and_key_lines_read_the_same_through_libyaml() -> None:
    text = "a:\n  lr: 1e-3\n  eps: .5\n  n: 3\n  s: '1e-3'\n  b: [1.0, -2e5]\n"
    fast = semantic_map._load_yaml(text)
    assert fast == {"a": {"lr": 1e-3, "eps": 0.5, "n": 3, "s": "1e-3", "b": [1.0, -2e5]}}
    assert same(fast, yaml.load(text, Loader=semantic_map._MapLoader))  # noqa: S506


@pytest.mark.parametrize(
    "text",
    ["a: &x {b: 1}\nc: *x\n", "[" * 60 + "]" * 60 + "\n", "a: [1\n"],
    ids=["alias", "deep", "broken"],
)
def test_an_alias_deep_nesting_or_a_yaml_error_is_left_to_the_python_loader(text: str) -> None:
    assert not semantic_map._fast_loader_reads(text)


def test_an_alias_is_refused_with_the_python_loader_s_message(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("apis: &x {}\nextra: *x\n", encoding="utf-8")
    with pytest.raises(SemanticMapError, match=r"YAML aliases \(\*x\) are not allowed"):
        semantic_map._read_yaml(path)


def test_a_duplicate_key_is_refused_with_the_python_loader_s_message(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("apis: {}\napis: {}\n", encoding="utf-8")
    with pytest.raises(SemanticMapError, match=r"duplicate key 'apis' \(first on line 1\)"):
        semantic_map._read_yaml(path)
