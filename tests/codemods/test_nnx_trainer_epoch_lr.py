"""A per-epoch scheduler of a trainer class (issue 13, s14e): ``fit()`` loops over epochs,
calls ``self.train_epoch(loader)`` (which steps ``self.opt`` once per batch) and steps
``self.sched``. The NNX target writes the lr after train_epoch() when ``self.opt`` and
``self.sched`` are built in ``fit()`` before its epoch loop (each fit() builds fresh ones);
built in ``__init__`` a second fit() on the same object goes on counting, so the steps are
counted in ``self.sched_count`` (``analysis/counted_attributes.py``), or it escapes naming why. The optax target folds it with ``--steps-per-epoch`` under the rules of
the function path. Every trap twin keeps the scheduler escaped; train_epoch() run twice an
epoch or also from another method only on the optax target (NNX: exact, see ANY_UPDATES)."""

from __future__ import annotations

import pytest

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import SwitcherooTest, run_codemod
from tests.test_properties import check_invariants

TRAINER = """\
import torch


class Trainer:
    def __init__(self, model, lr):
        self.model = model
        self.lr = lr
{init}
    def train_epoch(self, loader):
        for x, y in loader:
            loss = ((self.model(x) - y) ** 2).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
{inside}
    def fit(self, loader, epochs):
{build}        for epoch in range(epochs):
{before}            self.train_epoch(loader)
            self.sched.step()
{more}"""

BUILD = (
    "        self.opt = torch.optim.AdamW(self.model.parameters(), lr=self.lr)\n"
    "        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=2, gamma=0.5)\n"
)


def trainer(
    init: str = "", inside: str = "", build: str = BUILD, before: str = "", more: str = ""
) -> str:
    """The trainer with its parts replaced."""
    return TRAINER.format(init=init, inside=inside, build=build, before=before, more=more)


FIT_BUILT = trainer()
INIT_BUILT = trainer(init=BUILD.replace("self.model.parameters()", "model.parameters()"), build="")
WRITE = 'self.opt.opt_state.hyperparams["learning_rate"][...] = self.sched(epoch + 1)'
FOLDED = "lambda count: (optax.exponential_decay"
LAMBDA = "learning_rate=lambda count"

TRAPS = {
    "sched_also_stepped_in_train_epoch": trainer(inside="        self.sched.step()\n"),
    "train_epoch_called_twice_per_epoch": trainer(before="            self.train_epoch(loader)\n"),
    "train_epoch_called_from_another_method": trainer(
        more="\n    def warm_up(self, loader):\n        self.train_epoch(loader)\n"
    ),
    "opt_rebound_in_another_method": trainer(
        more="\n    def reset(self):\n        self.opt = make_optimizer()\n"
    ),
    "opt_rebound_in_a_subclass": trainer(
        more="\n\nclass Fast(Trainer):\n    def reset(self):\n        self.opt = make_optimizer()\n"
    ),
    "sched_stored_twice": trainer(
        more="\n    def restart(self):\n        self.sched = make_scheduler()\n"
    ),
    "epoch_rebound_in_the_loop": trainer(before="            epoch = epoch * 2\n"),
    "train_epoch_overridden_by_a_subclass": trainer(
        more="\n\nclass Twice(Trainer):\n    def train_epoch(self, loader):\n"
        "        run_twice(self.model, loader)\n"
    ),
    "param_groups_of_the_optimizer_used": trainer(
        more="\n    def lr(self):\n        return self.opt.param_groups[0]['lr']\n"
    ),
    "sched_read_into_a_name": trainer(
        more="\n    def scheduler(self):\n        return self.sched\n"
    ),
    "sched_handed_to_a_call": trainer(before="            log(self.sched)\n"),
    "sched_stepped_by_a_function_given_the_trainer": trainer(
        more="\n\ndef extra(t):\n    t.sched.step()\n"
    ),
    "sched_loaded_from_a_checkpoint": trainer(
        more="\n    def restore(self, state):\n        self.sched.load_state_dict(state)\n"
    ),
    "sched_read_outside_the_class": trainer(
        more="\n\ndef last(t):\n    return t.sched.get_last_lr()\n"
    ),
}


# The optax fold counts updates, not epochs (a rebound `epoch` does not matter), and a use of
# the scheduler other than step() is escaped on its own (torch_only_uses): not traps there.
OPTAX_TRAPS = sorted(
    set(TRAPS)
    - {
        "epoch_rebound_in_the_loop",
        "param_groups_of_the_optimizer_used",
        "sched_read_into_a_name",
        "sched_handed_to_a_call",
        "sched_stepped_by_a_function_given_the_trainer",
        "sched_loaded_from_a_checkpoint",
        "sched_read_outside_the_class",
    }
)


# Exact under NNX (the lr written where torch steps the scheduler, whatever ran before it),
# not folded by the optax target (its count of updates an epoch is then unknown).
ANY_UPDATES = ("train_epoch_called_twice_per_epoch", "train_epoch_called_from_another_method")
# Not `epoch + 1`, but every step of `self.sched` is one the NNX target counts in
# `self.sched_count` (analysis/counted_attributes.py; the lr read escapes on its own)
COUNTED = (
    "epoch_rebound_in_the_loop",
    "param_groups_of_the_optimizer_used",
    "sched_also_stepped_in_train_epoch",
    "train_epoch_overridden_by_a_subclass",
)
NNX_TRAPS = sorted(set(TRAPS) - set(ANY_UPDATES) - set(COUNTED))


def nnx(code: str) -> str:
    return run_codemod(code, TorchToNNX)


def flagged(code: str, command: type = TorchToOptax, flag: str = "len(loader)") -> str:
    return run_codemod(code, command, steps_per_epoch=flag)


class TrainerEpochLrTest(SwitcherooTest):
    TRANSFORM = TorchToNNX

    def test_nnx_writes_the_lr_after_train_epoch(self) -> None:
        self.assertConverts(
            FIT_BUILT,
            """\
from flax import nnx
import optax


class Trainer:
    def __init__(self, model, lr):
        self.model = model
        self.lr = lr

    def train_epoch(self, loader):
        for x, y in loader:
            def loss_fn(model):
                loss = ((model(x) - y) ** 2).mean()
                return loss
            loss, grads = nnx.value_and_grad(loss_fn)(self.model)
            self.opt.update(self.model, grads)

    def fit(self, loader, epochs):
        self.sched = optax.exponential_decay(self.lr, transition_steps=2, decay_rate=0.5, staircase=True)
        self.opt = nnx.Optimizer(self.model, optax.inject_hyperparams(optax.adamw)(learning_rate=float(self.sched(0)), weight_decay=0.01), wrt=nnx.Param)
        for epoch in range(epochs):
            self.train_epoch(loader)
            self.opt.opt_state.hyperparams["learning_rate"][...] = self.sched(epoch + 1)
""",
        )


def test_nnx_get_last_lr_through_self_keeps_the_write() -> None:
    code = trainer(more="\n    def last(self):\n        return self.sched.get_last_lr()\n")
    assert WRITE in nnx(code)


@pytest.mark.parametrize("shape", COUNTED)
def test_nnx_counts_the_steps_where_epoch_plus_one_is_not_proved(shape: str) -> None:
    output = nnx(TRAPS[shape])
    assert "self.sched(self.sched_count)" in output and WRITE not in output, output


@pytest.mark.parametrize("shape", ANY_UPDATES)
def test_nnx_writes_the_lr_however_often_train_epoch_runs(shape: str) -> None:
    assert WRITE in nnx(TRAPS[shape])


def test_nnx_output_is_a_fixed_point() -> None:
    assert WRITE in check_invariants(FIT_BUILT, TorchToNNX)


def test_nnx_scheduler_built_in_init_is_counted_in_an_attribute() -> None:
    # a second fit() goes on counting, as torch's scheduler does (analysis/counted_attributes)
    output = nnx(INIT_BUILT)
    assert "        self.sched_count = 0\n\n    def train_epoch" in output, output
    assert "self.sched(self.sched_count)" in output and BEGIN not in output, output


def test_nnx_scheduler_built_in_init_and_handed_on_escapes_naming_the_methods() -> None:
    output = nnx(
        INIT_BUILT.replace(
            "            self.sched.step()\n",
            "            log(self.sched)\n            self.sched.step()\n",
        )
    )
    assert BEGIN in output and "self.sched_count" not in output, output
    assert "built at" in output and "in __init__()" in output and "in fit()" in output, output
    assert "`self.sched` is used at" in output, output


def test_nnx_scheduler_built_in_init_does_not_suggest_the_optax_lambda() -> None:
    assert LAMBDA not in nnx(INIT_BUILT)


@pytest.mark.parametrize("trap", NNX_TRAPS)
def test_nnx_per_epoch_escapes_never_suggest_the_optax_lambda(trap: str) -> None:
    assert LAMBDA not in nnx(TRAPS[trap])


def test_optax_per_epoch_escape_still_suggests_the_lambda() -> None:
    assert LAMBDA in run_codemod(INIT_BUILT, TorchToOptax)


def test_optax_with_steps_per_epoch_folds_the_fit_built_scheduler() -> None:
    output = flagged(FIT_BUILT)
    assert FOLDED in output and "len(loader)" in output and "self.sched.step()" not in output


def test_optax_with_steps_per_epoch_folds_an_init_built_scheduler_of_a_stored_loader() -> None:
    code = INIT_BUILT.replace("self.lr = lr\n", "self.lr = lr\n        self.loader = loader\n")
    code = code.replace("model, lr)", "model, lr, loader)").replace("in loader:", "in self.loader:")
    code = code.replace("train_epoch(self, loader)", "train_epoch(self)")
    code = code.replace("self.train_epoch(loader)", "self.train_epoch()")
    output = flagged(code, flag="len(self.loader)")
    assert FOLDED in output and BEGIN not in output.split("def train_epoch")[0], output


def test_optax_with_steps_per_epoch_escapes_a_loader_unbound_where_the_schedule_is_built() -> None:
    output = flagged(INIT_BUILT)
    assert FOLDED not in output and "is evaluated where the schedule is built" in output


def test_optax_with_steps_per_epoch_escapes_a_loader_parameter_rebound_in_the_method() -> None:
    code = FIT_BUILT.replace(
        "        for x, y in loader:", "        loader = loader[:3]\n        for x, y in loader:"
    )
    assert FOLDED not in flagged(code)


def test_optax_with_steps_per_epoch_escapes_an_early_exit_of_the_batch_loop() -> None:
    code = FIT_BUILT.replace(
        "            self.opt.step()\n", "            self.opt.step()\n            break\n"
    )
    assert FOLDED not in flagged(code)


def test_function_path_escapes_a_loader_parameter_rebound_in_train() -> None:
    code = (
        "import torch\n\n"
        "def train(model, opt, loader):\n"
        "    loader = loader[:3]\n"
        "    for x in loader:\n"
        "        opt.zero_grad()\n"
        "        model(x).sum().backward()\n"
        "        opt.step()\n\n"
        "model = make_model()\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2)\n"
        "for epoch in range(4):\n"
        "    train(model, opt, loader)\n"
        "    sched.step()\n"
    )
    assert FOLDED in flagged(code.replace("    loader = loader[:3]\n", ""))  # the twin folds
    assert FOLDED not in flagged(code)


@pytest.mark.parametrize("trap", NNX_TRAPS)
def test_a_trap_keeps_the_nnx_scheduler_escaped(trap: str) -> None:
    output = nnx(TRAPS[trap])
    assert "self.sched(epoch" not in output and "StepLR" in output, output


@pytest.mark.parametrize("trap", OPTAX_TRAPS)
def test_a_trap_keeps_the_optax_scheduler_escaped_with_the_flag(trap: str) -> None:
    output = flagged(TRAPS[trap])
    assert FOLDED not in output and "StepLR" in output, output
