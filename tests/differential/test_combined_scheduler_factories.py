"""A scheduler factory that combines schedulers (litgpt's ``get_lr_scheduler``: a LambdaLR
warm-up and a CosineAnnealingLR joined by SequentialLR, all built on its optimizer parameter),
called once next to a translated optimizer and stepped once per update: the joined schedule
folds into the caller's optimizer as ``optax.join_schedules`` with the factory's parameters
replaced by what the call passes. The codemod's own output runs against torch (float64): optax
(60 updates) and NNX (36 updates of ``nnx_loops``). Trap twins must escape."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import translate
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.differential.test_facts_across_scopes import map_tolerance
from tests.differential.test_nnx_epoch_lr import EPOCH_LOOP
from tests.differential.test_scheduler_factories import FIT as FACTORY_FIT
from tests.differential.test_scheduler_factories import fit_rel
from tests.support import code_lines

LITGPT = """\
def get_lr_scheduler(optimizer, warmup_steps: int, max_steps: int):
    # linear warmup followed by cosine annealing
    scheduler1 = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: step / warmup_steps)
    scheduler2 = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=(max_steps - warmup_steps))
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [scheduler1, scheduler2], milestones=[warmup_steps])
"""

NESTED = """\
def get_lr_scheduler(optimizer, warmup_steps, max_steps):
    return torch.optim.lr_scheduler.SequentialLR(
        optimizer,
        [
            torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=warmup_steps),
            torch.optim.lr_scheduler.StepLR(optimizer, step_size=max_steps // 6, gamma=0.5),
        ],
        milestones=[warmup_steps],
    )
"""

# test_scheduler_factories' caller, with the combining factory in place of its one-line one
FIT = FACTORY_FIT.replace(
    "def get_lr_scheduler(optimizer, warmup_steps, max_steps):\n    return {scheduler}\n",
    "{factory}",
).format(
    imports="",
    factory="{factory}",
    total="len(loader)",
    constructor="torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)",
    warmup="{warmup}",
)

FACTORIES = {"litgpt_lambda_then_cosine": LITGPT, "nested_linear_then_step": NESTED}
LITGPT_FIT = FIT.format(factory=LITGPT, warmup="10")


def scheduler_escapes(translation_escapes: list) -> list[str]:
    return [r.reason for r in translation_escapes if "lr_scheduler" in r.api]


@pytest.mark.parametrize("factory", list(FACTORIES), ids=list(FACTORIES))
def test_a_combining_factory_folds_into_the_caller_optimizer_and_matches_torch(
    factory: str,
) -> None:
    source = FIT.format(factory=FACTORIES[factory], warmup="10")
    translation = translate(source)
    assert [r.api for r in translation.escapes] == ["torch.optim.Optimizer.step"], [
        r.reason for r in translation.escapes
    ]
    assert "optax.join_schedules" in translation.code and "scheduler.step()" not in translation.code
    rel = fit_rel(source, translation)
    assert rel < map_tolerance(translation, False, ""), f"rel={rel:.3e}\n{translation.code}"


def test_the_combining_factory_comparison_fails_with_another_warm_up() -> None:
    """The harness discriminates: torch run with a warm-up the translation was not given."""
    translation = translate(LITGPT_FIT)
    assert fit_rel(FIT.format(factory=LITGPT, warmup="20"), translation) > 1e-4


TRAPS = {
    # the caller's optimizer is not built by a translated constructor
    "optimizer_not_translated": LITGPT_FIT.replace(
        "optimizer = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)",
        "optimizer = make_optimizer(model)",
    ),
    # stepped once per epoch at the caller
    "stepped_per_epoch": LITGPT_FIT.replace(
        "    for k in loader:\n", "    for epoch in range(3):\n      for k in loader:\n"
    ).replace("        scheduler.step()\n", "      scheduler.step()\n"),
    # the warm-up reads a module global that changes after the scheduler is built
    "reads_a_global_changed_later": LITGPT_FIT.replace(
        "def get_lr_scheduler",
        "WARMUP = 10\n\n\ndef get_lr_scheduler",
    ).replace("step / warmup_steps", "step / WARMUP")
    + "\nWARMUP = 20\n",
    # called twice, with two optimizers
    "called_twice": LITGPT_FIT.replace(
        "    for k in loader:\n",
        "    other = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "    second = get_lr_scheduler(other, 5, total)\n"
        "    for k in loader:\n",
    ).replace("        scheduler.step()\n", "        scheduler.step()\n        second.step()\n"),
    # the factory rebinds a parameter the schedule reads
    "parameter_rebound": LITGPT_FIT.replace(
        "    # linear warmup", "    warmup_steps = warmup_steps * 2\n    # linear warmup"
    ),
    # a combined scheduler is also returned (read outside the joined one)
    "component_returned_too": LITGPT_FIT.replace(
        "    return torch.optim.lr_scheduler.SequentialLR(optimizer, [scheduler1, scheduler2], "
        "milestones=[warmup_steps])",
        "    return torch.optim.lr_scheduler.SequentialLR(optimizer, [scheduler1, scheduler2], "
        "milestones=[warmup_steps]), scheduler1",
    ),
    # a scheduler built in the factory and combined into nothing
    "builds_an_uncombined_scheduler": LITGPT_FIT.replace(
        "    # linear warmup",
        "    torch.optim.lr_scheduler.StepLR(optimizer, step_size=3)\n    # linear warmup",
    ),
}


@pytest.mark.parametrize("trap", list(TRAPS), ids=list(TRAPS))
def test_a_combining_factory_twin_escapes(trap: str) -> None:
    assert TRAPS[trap] != LITGPT_FIT
    translation = translate(TRAPS[trap])
    assert scheduler_escapes(translation.escapes), translation.code
    # the escape's suggestion may write the schedule out; no code line may use it
    assert not any("join_schedules" in line for line in code_lines(translation.code)), (
        translation.code
    )


# test_nnx_epoch_lr's loop with the factory's scheduler: stepped per epoch there, per update here
NNX_PER_EPOCH = EPOCH_LOOP.replace("import torch\n", "import torch\n\n\n{factory}\n").replace(
    "sched = torch.optim.lr_scheduler.{scheduler}", "sched = get_lr_scheduler(opt, 6, max_steps=36)"
)
NNX_SCRIPT = NNX_PER_EPOCH.replace(
    "        losses.append(loss.item())\n    sched.step()\n",
    "        sched.step()\n        losses.append(loss.item())\n",
)
NNX_ADAM = "Adam(model.parameters(), lr=1e-2)"


@pytest.mark.parametrize("factory", list(FACTORIES), ids=list(FACTORIES))
def test_nnx_a_combining_factory_folds_into_the_tx_and_matches_torch(factory: str) -> None:
    # --exact: LinearLR's optax schedule is exact only through the count wrapper
    source = NNX_SCRIPT.format(factory=FACTORIES[factory], optimizer=NNX_ADAM)
    translated, rel = translated_rel(source, exact=True)
    assert BEGIN not in translated and "optax.join_schedules" in translated, translated
    assert rel < 1e-9, f"rel={rel:.3e}\n{translated}"


def test_nnx_a_combining_factory_stepped_per_epoch_is_not_folded() -> None:
    translated = translate_nnx(NNX_PER_EPOCH.format(factory=LITGPT, optimizer=NNX_ADAM))
    assert not any("join_schedules" in line for line in code_lines(translated)), translated
    assert BEGIN in translated, translated
