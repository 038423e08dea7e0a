"""The map's ``manual_pair`` (a scheduler's part in a hand-stepped warm-up/main pair) is
validated like every other field."""

from __future__ import annotations

from pathlib import Path

from ml_switcheroo.targets.catalogue import load_semantic_map
from tests.core.test_semantic_map import load_error, write_map

ENTRY = """
apis:
  mylib.Warmup:
    role: scheduler
    hook: lr_scheduler
    signature: "optimizer, steps=5"
    manual_pair: {pair}
    chain:
      - {{slot: schedule, emit: "optax.linear_schedule(0.0, {{optimizer_lr}}, {{steps}})"}}
"""


def test_a_warmup_part_with_its_length_loads(tmp_path: Path) -> None:
    path = write_map(tmp_path, ENTRY.format(pair="{part: warmup, length: steps}"))
    pair = load_semantic_map([path]).apis["mylib.Warmup"].manual_pair
    assert pair is not None and (pair.part, pair.length) == ("warmup", "steps")


def test_an_unknown_part_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, ENTRY.format(pair="{part: middle}"))
    assert "part must be one of warmup, main" in str(error)


def test_a_warmup_without_its_length_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, ENTRY.format(pair="{part: warmup}"))
    assert "needs 'length'" in str(error)


def test_a_length_that_is_not_an_argument_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, ENTRY.format(pair="{part: warmup, length: total}"))
    assert "'total' is not an argument of the signature" in str(error)


def test_an_unknown_key_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, ENTRY.format(pair="{part: main, after: 3}"))
    assert "unknown field 'after'" in str(error)
