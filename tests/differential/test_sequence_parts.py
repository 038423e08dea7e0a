"""Parts of ``SequentialLR`` that are not what their own schedule says (s22c): at a milestone
torch restarts the next part with ``step(0)``, which keeps the lr the previous part left for a
``MultiplicativeLR`` (it multiplies on from there), and ``OneCycleLR``/``CyclicLR`` write the
param group's initial lr (and cycle the momentum) when built, which every part starts from.
The join of the parts' optax schedules was translated: measured before the fix (the NNX
codemod's own output run, float64, 36 updates), ``[ExponentialLR, MultiplicativeLR]`` 0.17
relative off torch, ``OneCycleLR`` second 0.29, first 0.60, ``CyclicLR`` first 0.43. Such a
scheduler escapes with the map's ``in_sequence`` reason; the same parts where they are exact
(``MultiplicativeLR`` first, ``StepLR`` second) still convert."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import translate
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.differential.test_nnx_loops import PLAIN_LOOP

L = "torch.optim.lr_scheduler."
OPTIMIZER = "opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)\n"
STEP = "        opt.step()\n"
# the tolerance of the approximate parts (float32 schedules on optax's int32 count)
APPROXIMATE = 1e-6


def _loop(scheduler: str, before: str = "") -> str:
    """``PLAIN_LOOP`` with ``sched = <scheduler>`` stepped after each update."""
    assert OPTIMIZER in PLAIN_LOOP and STEP in PLAIN_LOOP
    built = OPTIMIZER + before + f"sched = {scheduler}\n"
    return PLAIN_LOOP.replace(OPTIMIZER, built).replace(STEP, STEP + "        sched.step()\n")


REFUSED = {
    "multiplicative_second": (
        f"{L}SequentialLR(opt, [{L}ExponentialLR(opt, 0.9), {L}MultiplicativeLR(opt, "
        "lambda e: 0.95)], milestones=[5])",
        "",
        "keeps the lr the previous part left",
    ),
    "multiplicative_second_by_name": (
        f"{L}SequentialLR(opt, [warm, main], milestones=[5])",
        f"warm = {L}ExponentialLR(opt, 0.9)\nmain = {L}MultiplicativeLR(opt, lambda e: 0.95)\n",
        "keeps the lr the previous part left",
    ),
    "one_cycle_second": (
        f"{L}SequentialLR(opt, [{L}LinearLR(opt, 0.2, 1.0, total_iters=4), {L}OneCycleLR(opt, "
        "0.1, total_steps=40)], milestones=[4])",
        "",
        "writes the param group's initial_lr",
    ),
    "one_cycle_first_without_momentum": (
        f"{L}SequentialLR(opt, [{L}OneCycleLR(opt, 0.1, total_steps=20, cycle_momentum=False), "
        f"{L}ExponentialLR(opt, 0.9)], milestones=[20])",
        "",
        "writes the param group's initial_lr",
    ),
    "cyclic_first": (
        f"{L}SequentialLR(opt, [{L}CyclicLR(opt, 0.01, 0.1, step_size_up=5), "
        f"{L}ExponentialLR(opt, 0.9)], milestones=[10])",
        "",
        "sets the param group's lr to base_lr",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_part_sequential_lr_changes_escapes_in_both_targets(case: str) -> None:
    scheduler, before, said = REFUSED[case]
    source = _loop(scheduler, before)
    translated = translate_nnx(source)
    assert BEGIN in translated and "SequentialLR(...)" in translated, translated
    assert said in translated and "optax.join_schedules([" not in translated, translated
    optax_code = translate(source).code
    assert said in optax_code and "optax.join_schedules([" not in optax_code, optax_code


@pytest.mark.parametrize(
    "scheduler",
    [
        f"{L}SequentialLR(opt, [{L}MultiplicativeLR(opt, lambda e: 0.95), {L}ExponentialLR(opt, "
        "0.9)], milestones=[6])",
        f"{L}SequentialLR(opt, [{L}ExponentialLR(opt, 0.9), {L}StepLR(opt, 3, 0.5)], "
        "milestones=[5])",
    ],
)
def test_parts_that_are_their_own_schedule_convert_within_tolerance(scheduler: str) -> None:
    translated, rel = translated_rel(_loop(scheduler))
    assert BEGIN not in translated and "optax.join_schedules" in translated, translated
    assert rel < APPROXIMATE, f"rel {rel:.3e}"
