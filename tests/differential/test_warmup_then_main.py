"""Two schedulers of one optimizer stepped by hand as warm-up then main
(``if step < W: warm.step() else: main.step()``) fold into
``optax.join_schedules([warm, main], [boundary])``: torch's own loop against optax running
the translated optimizer (float64, 60 updates). Trap twins escape."""

from __future__ import annotations

import pytest

from tests.differential.harness import EXACT, measure_loop, translate

LR = "torch.optim.lr_scheduler."
BODY = "    opt.zero_grad()\n    loss = batch()\n    loss.backward()\n    opt.step()\n"


def _pair(
    warm: str,
    main: str,
    test: str = "step < 5",
    start: str = "step = 0\n",
    increment_first: bool = False,
    prelude: str = "",
) -> str:
    increment = "    step += 1\n"
    stepping = f"    if {test}:\n        warm.step()\n    else:\n        main.step()\n"
    return (
        "import torch\n"
        + prelude
        + "opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)\n"
        + f"warm = {LR}{warm}\n"
        + f"main = {LR}{main}\n"
        + start
        + "for batch in batches:\n"
        + BODY
        + (increment + stepping if increment_first else stepping + increment)
    )


PAIRS = {
    "linear warm-up, cosine": _pair(
        "LinearLR(opt, start_factor=0.1, total_iters=5)", "CosineAnnealingLR(opt, T_max=40)"
    ),
    "linear warm-up shorter than the switch": _pair(
        "LinearLR(opt, start_factor=0.2, total_iters=3)", "StepLR(opt, step_size=7, gamma=0.5)"
    ),
    "increment before the check": _pair(
        "LinearLR(opt, start_factor=0.1, total_iters=4)",
        "ExponentialLR(opt, gamma=0.95)",
        increment_first=True,
    ),
    "counter from one": _pair(
        "LinearLR(opt, start_factor=0.1, total_iters=6)",
        "CosineAnnealingLR(opt, T_max=30, eta_min=0.01)",
        test="step < 8",
        start="step = 1\n",
    ),
    "constant warm-up, polynomial": _pair(
        "ConstantLR(opt, factor=0.5, total_iters=5)", "PolynomialLR(opt, total_iters=50, power=2.0)"
    ),
    "warm-up length bound to a name": _pair(
        "LinearLR(opt, start_factor=0.1, total_iters=WARMUP)",
        "CosineAnnealingLR(opt, T_max=40)",
        test="step < WARMUP",
        prelude="WARMUP = 10\n",
    ),
}


@pytest.mark.parametrize("case", list(PAIRS), ids=list(PAIRS))
def test_warmup_then_main_matches_torch(case: str) -> None:
    rel, translation = measure_loop(PAIRS[case], exact=True)
    assert "join_schedules([warm, " in translation.code
    assert "warm.step()" not in translation.code and "main.step()" not in translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"


def _escape_reasons(source: str) -> list[str]:
    translation = translate(source)
    reasons = [r.reason for r in translation.escapes if "lr_scheduler" in r.api]
    assert len(reasons) == 2, translation.escapes
    assert "learning_rate=main" not in translation.code
    return reasons


TRAPS = {
    "a condition on the epoch": (
        "import torch\nopt = torch.optim.SGD(params, lr=0.1)\n"
        f"warm = {LR}LinearLR(opt, start_factor=0.1, total_iters=2)\n"
        f"main = {LR}StepLR(opt, step_size=3)\n"
        "for epoch in range(9):\n    for batch in batches:\n"
        + "".join("    " + line + "\n" for line in BODY.splitlines())
        + "        if epoch < 2:\n            warm.step()\n        else:\n            main.step()\n",
        "not provably the update count",
    ),
    "a main scheduler that resets the lr when built": (
        _pair(
            "LinearLR(opt, start_factor=0.1, total_iters=5)", "LambdaLR(opt, lambda e: 0.9 ** e)"
        ),
        "the map lists no exact pair for it",
    ),
    "a multi-step main scheduler": (
        _pair("LinearLR(opt, start_factor=0.1, total_iters=5)", "MultiStepLR(opt, [0, 10])"),
        "the map lists no exact pair for it",
    ),
    "a warm-up that does not end at the base lr": (
        _pair(
            "LinearLR(opt, start_factor=0.1, end_factor=0.5, total_iters=5)",
            "CosineAnnealingLR(opt, T_max=40)",
        ),
        "may not end at the base lr",
    ),
    "a warm-up longer than the switch": (
        _pair("LinearLR(opt, start_factor=0.1, total_iters=8)", "CosineAnnealingLR(opt, T_max=40)"),
        "may not be back at the base lr",
    ),
    "the check after the increment shortens the warm-up": (
        _pair(
            "LinearLR(opt, start_factor=0.1, total_iters=5)",
            "CosineAnnealingLR(opt, T_max=40)",
            increment_first=True,
        ),
        "may not be back at the base lr",
    ),
    "a warm-up length from the configuration": (
        _pair(
            "LinearLR(opt, start_factor=0.1, total_iters=args.warmup)",
            "CosineAnnealingLR(opt, T_max=40)",
            test="step < args.warmup",
        ),
        "is not an integer literal",
    ),
    "another comparison": (
        _pair(
            "LinearLR(opt, start_factor=0.1, total_iters=5)",
            "CosineAnnealingLR(opt, T_max=40)",
            test="step <= 5",
        ),
        "which is not `counter < warm-up length`",
    ),
    "a counter also changed elsewhere": (
        _pair("LinearLR(opt, start_factor=0.1, total_iters=5)", "CosineAnnealingLR(opt, T_max=40)")
        + "step = 0\n",
        "assigned 3 times",
    ),
    "both stepped every update": (
        "import torch\nopt = torch.optim.SGD(params, lr=0.1)\n"
        f"warm = {LR}LinearLR(opt, start_factor=0.1, total_iters=2)\n"
        f"main = {LR}StepLR(opt, step_size=3)\n"
        "for batch in batches:\n" + BODY + "    warm.step()\n    main.step()\n",
        "several schedulers step the same optimizer",
    ),
}


@pytest.mark.parametrize("case", list(TRAPS), ids=list(TRAPS))
def test_warmup_pair_trap_escapes(case: str) -> None:
    source, why = TRAPS[case]
    reasons = _escape_reasons(source)
    assert all(why in reason for reason in reasons), reasons
