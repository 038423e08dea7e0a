"""The map's ``sequence`` and ``in_sequence`` (a scheduler that runs parts one after another,
and where a part is refused there) are validated like every other field."""

from __future__ import annotations

from pathlib import Path

from ml_switcheroo.targets.catalogue import load_semantic_map
from tests.core.test_semantic_map import load_error, write_map

ENTRY = """
apis:
  mylib.Part:
    role: scheduler
    hook: lr_scheduler
    signature: "optimizer, steps=5"
    in_sequence: {rule}
    chain:
      - {{slot: schedule, emit: "optax.linear_schedule(0.0, {{optimizer_lr}}, {{steps}})"}}
  mylib.Sequence:
    role: scheduler
    hook: lr_scheduler
    signature: "optimizer, schedulers, milestones"
    sequence: {sequence}
    chain:
      - {{slot: schedule, emit: "optax.join_schedules({{schedulers}}, {{milestones}})"}}
"""


def _map(rule: str = "{refused: later, reason: why}", sequence: str = "schedulers") -> str:
    return ENTRY.format(rule=rule, sequence=sequence)


def test_a_part_refused_later_and_its_sequence_load(tmp_path: Path) -> None:
    apis = load_semantic_map([write_map(tmp_path, _map())]).apis
    rule = apis["mylib.Part"].in_sequence
    assert rule is not None and (rule.refused, rule.reason, rule.suggest) == ("later", "why", None)
    assert apis["mylib.Sequence"].sequence == "schedulers"


def test_an_unknown_position_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, _map(rule="{refused: first, reason: why}"))
    assert "refused must be one of later, any" in str(error)


def test_a_rule_without_a_reason_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, _map(rule="{refused: any}"))
    assert "needs a 'reason'" in str(error)


def test_a_sequence_that_is_not_an_argument_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, _map(sequence="parts"))
    assert "'sequence' names 'parts'" in str(error)
