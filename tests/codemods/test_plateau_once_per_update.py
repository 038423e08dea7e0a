"""optimizer.TorchToOptax, ReduceLROnPlateau: optax.contrib.reduce_on_plateau at the end of
the optimizer's chain counts every update as one step(metric), so the plateau joins the chain
only when its one ``step(metric)`` runs once per update, right after ``opt.step()``. Every
nearby shape (per epoch, every k updates, before the step, skippable, twice, elsewhere) keeps
the scheduler as torch code with the reason."""

from __future__ import annotations

import textwrap

from ml_switcheroo.codemods.optimizer import TorchToOptax
from tests.support import run_codemod

HEADER = """\
import torch

opt = torch.optim.SGD(params, lr=0.1)
sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2)
"""

CHAIN = "optax.chain(optax.sgd(learning_rate=0.1), sched)"


def convert(loop: str) -> str:
    return run_codemod(HEADER + textwrap.dedent(loop), TorchToOptax)


def assert_kept_as_torch(loop: str, reason: str) -> None:
    output = convert(loop)
    assert CHAIN not in output, output
    assert "sched = torch.optim.lr_scheduler.ReduceLROnPlateau(" in output, output
    escape = output.split("ReduceLROnPlateau\n")[1].split("ESCAPE-END")[0]
    assert reason in escape, output


def test_a_step_once_per_update_after_the_optimizer_joins_the_chain() -> None:
    output = convert(
        """\
        for batch in batches:
            opt.zero_grad()
            loss = batch.sum()
            loss.backward()
            opt.step()
            sched.step(loss)
        """
    )
    assert CHAIN in output, output


def test_a_step_once_per_epoch_stays_torch() -> None:
    assert_kept_as_torch(
        """\
        for epoch in range(10):
            for batch in batches:
                loss = batch.sum()
                loss.backward()
                opt.step()
            sched.step(validate())
        """,
        "does not run once per update (per epoch, say)",
    )


def test_a_step_every_k_updates_stays_torch() -> None:
    assert_kept_as_torch(
        """\
        for i, batch in enumerate(batches):
            loss = batch.sum()
            loss.backward()
            opt.step()
            if i % 100 == 0:
                sched.step(loss)
        """,
        "is not under the same loops and conditions",
    )


def test_a_step_before_the_optimizer_stays_torch() -> None:
    assert_kept_as_torch(
        """\
        for batch in batches:
            loss = batch.sum()
            loss.backward()
            sched.step(loss)
            opt.step()
        """,
        "and after, the optimizer's step()",
    )


def test_a_step_a_continue_can_skip_stays_torch() -> None:
    assert_kept_as_torch(
        """\
        for batch in batches:
            loss = batch.sum()
            loss.backward()
            opt.step()
            if loss.isnan():
                continue
            sched.step(loss)
        """,
        "can skip it",
    )


def test_two_steps_per_update_stay_torch() -> None:
    assert_kept_as_torch(
        """\
        for batch in batches:
            loss = batch.sum()
            loss.backward()
            opt.step()
            sched.step(loss)
            sched.step(loss)
        """,
        "is called 2 times",
    )


def test_a_step_in_a_conditional_expression_stays_torch() -> None:
    assert_kept_as_torch(
        """\
        for batch in batches:
            loss = batch.sum()
            loss.backward()
            opt.step()
            sched.step(loss) if tracking else None
        """,
        "conditional expression",
    )


def test_a_step_with_an_epoch_argument_stays_torch() -> None:
    assert_kept_as_torch(
        """\
        for epoch, batch in enumerate(batches):
            loss = batch.sum()
            loss.backward()
            opt.step()
            sched.step(loss, epoch)
        """,
        "does not take the metric alone",
    )


def test_a_step_not_called_in_the_file_stays_torch() -> None:
    assert_kept_as_torch(
        """\
        for batch in batches:
            loss = batch.sum()
            loss.backward()
            opt.step()
        """,
        "not called in this file",
    )


PER_UPDATE = """\
for batch in batches:
    loss = batch.sum()
    loss.backward()
    opt.step()
    sched.step(loss)
"""


def test_threshold_zero_keeps_the_plateau_torch_code() -> None:
    """optax's plateau needs rtol or atol above 0 (it raises otherwise)."""
    output = run_codemod(HEADER.replace("patience=2", "patience=2, threshold=0.0") + PER_UPDATE)
    assert CHAIN not in output, output
    assert "threshold=0 makes torch reduce on any value not strictly better" in output, output


def test_the_step_of_a_plateau_left_as_torch_code_says_so() -> None:
    """No `value=` to pass to the update: the plateau is not in the chain."""
    output = run_codemod(HEADER.replace("patience=2", "patience=2, mode='max'") + PER_UPDATE)
    assert "it sees the metric through the `value=` argument" not in output, output
    assert "its scheduler (`torch.optim.lr_scheduler.ReduceLROnPlateau(...)`) is not " in output
