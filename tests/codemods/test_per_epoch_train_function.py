"""A per-epoch scheduler whose epoch loop calls ``train(...)`` of the same file, the shape of
pytorch/examples imagenet (issues 12 and 13, s14): the resume branch, the checkpoint dict,
``range(args.start_epoch, args.epochs)``, ``model.train()`` inside train(), a validate(...)
call between. The optax target folds it with ``--steps-per-epoch`` when train() steps the
optimizer once per batch; the NNX target writes the lr after train(). Trap twins escape."""

from __future__ import annotations

import libcst as cst
import pytest
from libcst.codemod import CodemodContext

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from ml_switcheroo.rewrite.engine import records_of
from ml_switcheroo.rewrite.report import Record
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import SwitcherooTest, run_codemod

IMAGENET = """\
import os
import torch
from torch.optim.lr_scheduler import StepLR


def main_worker(args, model, criterion, train_loader, val_loader, device, train_sampler):
    best_acc1 = 0
    optimizer = torch.optim.SGD(model.parameters(), args.lr, momentum=args.momentum)
    scheduler = StepLR(optimizer, step_size=30, gamma=0.1)
    if args.resume:
        if os.path.isfile(args.resume):
            checkpoint = torch.load(args.resume)
            args.start_epoch = checkpoint['epoch']
            optimizer.load_state_dict(checkpoint['optimizer'])
            scheduler.load_state_dict(checkpoint['scheduler'])
    for epoch in range(args.start_epoch, args.epochs):
        if args.distributed:
            train_sampler.set_epoch(epoch)
{before}        train({passed})
        acc1 = validate(val_loader, model, criterion, args)
{step}        is_best = acc1 > best_acc1
        best_acc1 = max(acc1, best_acc1)
        save_checkpoint({{
            'epoch': epoch + 1,
            'optimizer': optimizer.state_dict(),
            'scheduler': scheduler.state_dict(),
        }}, is_best)


def train({params}):
    model.train()
{head}    for i, (images, target) in enumerate(train_loader):
{inside}        output = model(images)
        loss = ((output - target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
{tail}

def validate(val_loader, model, criterion, args):
    model.eval()
    return args.print_freq


def save_checkpoint(state, is_best):
    torch.save(state, "checkpoint.pth")
"""

PARAMS = "train_loader, model, criterion, optimizer, epoch, device, args"
STEP = "        scheduler.step()\n"
FOLD = "count // steps_per_epoch"
WRITE = 'optimizer.opt_state.hyperparams["learning_rate"][...] = scheduler('


def source(**parts: str) -> str:
    values = {"before": "", "passed": PARAMS, "step": STEP, "params": PARAMS}
    values.update({"head": "", "inside": "", "tail": ""})
    values.update(parts)
    return IMAGENET.format(**values)


def records(code: str, command: type, **options: str) -> tuple[str, list[Record]]:
    context = CodemodContext(filename="main.py")
    output = command(context, **options).transform_module(cst.parse_module(code)).code
    return output, records_of(context)


def scheduler_reason(code: str, command: type = TorchToOptax, **options: str) -> str:
    output, found = records(code, command, **options)
    reasons = [r.reason for r in found if r.kind == "escaped" and r.api.endswith("StepLR")]
    assert len(reasons) == 1, output
    return reasons[0]


def optax(code: str) -> str:
    return run_codemod(code, TorchToOptax, steps_per_epoch="len(train_loader)")


def nnx(code: str) -> str:
    return run_codemod(code, TorchToNNX)


class ImagenetShapeTest(SwitcherooTest):
    def test_optax_with_steps_per_epoch_folds_the_schedule_by_epoch(self) -> None:
        output = optax(source())
        self.assertIn(FOLD, output)
        self.assertIn("(args.lr, len(train_loader))", output)
        self.assertNotIn("ESCAPE-BEGIN torch.optim.lr_scheduler.StepLR", output)

    def test_optax_output_is_a_fixed_point(self) -> None:
        once = optax(source())
        self.assertEqual(optax(once), once)

    def test_optax_without_steps_per_epoch_asks_for_it_naming_train(self) -> None:
        reason = scheduler_reason(source())
        self.assertIn("main.py:19 main_worker() calls train()", reason)
        self.assertIn("--steps-per-epoch", reason)

    def test_nnx_writes_the_lr_counted_from_the_loop_start(self) -> None:
        output = nnx(source())
        self.assertIn(WRITE + "epoch - args.start_epoch + 1)", output)
        self.assertNotIn("ESCAPE-BEGIN torch.optim.lr_scheduler.StepLR", output)

    def test_nnx_output_is_a_fixed_point(self) -> None:
        once = nnx(source())
        self.assertEqual(nnx(once), once)

    def test_the_scheduler_state_dict_and_load_state_dict_are_marked_in_place(self) -> None:
        for command, options in ((TorchToOptax, {"steps_per_epoch": "len(train_loader)"}),):
            _, found = records(source(), command, **options)
            marked = {r.api for r in found if r.kind == "escaped"}
            self.assertIn("torch.optim.lr_scheduler.LRScheduler.load_state_dict", marked)
            self.assertIn("torch.optim.lr_scheduler.LRScheduler.state_dict", marked)

    def test_nnx_load_state_dict_says_how_to_resume_the_written_lr(self) -> None:
        _, found = records(source(), TorchToNNX)
        (load,) = [r for r in found if r.api.endswith("LRScheduler.load_state_dict")]
        self.assertIn("restart the schedule", load.reason)
        self.assertIn("last_epoch + epoch - start + 1", load.suggestion)


# Trap twins: each must leave the scheduler as torch code, under both targets.
TRAPS = {
    "train_steps_the_scheduler_too": {
        "passed": PARAMS + ", scheduler",
        "params": PARAMS + ", scheduler",
        "tail": "    scheduler.step()\n",
    },
    "train_called_twice_per_epoch": {"before": "        train(" + PARAMS + ")\n"},
    "scheduler_stepped_before_train": {"before": STEP, "step": ""},
    "train_rebinds_its_optimizer": {
        "head": "    optimizer = torch.optim.Adam(model.parameters())\n",
    },
}

# Optax only: how many updates an epoch has matters to `count // steps_per_epoch`; the NNX
# write at the scheduler's step() is exact however often train() updates.
OPTAX_TRAPS = {
    "train_steps_the_optimizer_twice_per_batch": {"tail": "        optimizer.step()\n"},
    "train_skips_batches": {"inside": "        if i % 2:\n            continue\n"},
    "train_returns_before_its_loop": {"head": "    if args.dry_run:\n        return\n"},
}


@pytest.mark.parametrize("trap", sorted(TRAPS))
@pytest.mark.parametrize("command", [TorchToOptax, TorchToNNX])
def test_a_trap_twin_keeps_the_scheduler_escaped(trap: str, command: type) -> None:
    options = {"steps_per_epoch": "len(train_loader)"} if command is TorchToOptax else {}
    assert scheduler_reason(source(**TRAPS[trap]), command, **options)


@pytest.mark.parametrize("trap", sorted(OPTAX_TRAPS))
def test_an_optax_trap_twin_escapes_with_steps_per_epoch(trap: str) -> None:
    code = source(**OPTAX_TRAPS[trap])
    assert scheduler_reason(code, steps_per_epoch="len(train_loader)")


@pytest.mark.parametrize("trap", sorted(OPTAX_TRAPS))
def test_an_optax_trap_twin_keeps_the_nnx_write(trap: str) -> None:
    assert WRITE + "epoch - args.start_epoch + 1)" in nnx(source(**OPTAX_TRAPS[trap]))


def test_a_break_out_of_the_batch_loop_escapes_optax_even_with_the_flag() -> None:
    """``if i >= args.max_iters: break``: an epoch may have fewer updates than len(loader)."""
    code = source(inside="        if i >= args.max_iters:\n            break\n")
    reason = scheduler_reason(code, steps_per_epoch="len(train_loader)")
    assert "can leave or skip its batch loop early (main.py:" in reason


def test_a_break_out_of_the_batch_loop_keeps_the_nnx_write() -> None:
    output = nnx(source(inside="        if i >= args.max_iters:\n            break\n"))
    assert WRITE + "epoch - args.start_epoch + 1)" in output


def test_a_loop_over_another_loader_than_the_flag_measures_escapes() -> None:
    code = source().replace("enumerate(train_loader)", "enumerate(args.loader)")
    reason = scheduler_reason(code, steps_per_epoch="len(train_loader)")
    assert "iterates `args.loader`, which is not provably `train_loader`" in reason


def test_a_number_as_steps_per_epoch_is_the_users_count() -> None:
    output = run_codemod(source(), TorchToOptax, steps_per_epoch="100")
    assert "(count // (100))" in output


def test_an_unproved_train_of_this_file_is_not_called_not_in_this_file() -> None:
    reason = scheduler_reason(source(**TRAPS["train_rebinds_its_optimizer"]))
    assert "not in this file" not in reason
    assert "hands the optimizer to train() at main.py:19 (defined at main.py:" in reason


def test_start_epoch_changed_while_the_loop_runs_escapes_nnx() -> None:
    code = source(tail="    args.start_epoch += 1\n")
    assert BEGIN in nnx(code) and WRITE not in nnx(code)


def test_args_handed_to_a_function_of_another_module_escapes_nnx() -> None:
    code = source(before="        log_everything(args)\n")
    output = nnx(code)
    assert WRITE not in output


def test_a_scheduler_stepped_before_train_names_train_after_it() -> None:
    reason = scheduler_reason(source(**TRAPS["scheduler_stepped_before_train"]))
    assert "not in this file" not in reason
    assert "after it, the loop hands the optimizer to train() at main.py:20" in reason
    assert "save_checkpoint" not in reason  # `optimizer.state_dict()` hands no optimizer


def test_weight_decay_writes_the_lr_to_the_injected_element_of_the_chain() -> None:
    code = source().replace("momentum=args.momentum)", "momentum=args.momentum, weight_decay=1e-4)")
    output = nnx(code)
    assert "optax.chain(optax.add_decayed_weights(1e-4), optax.inject_hyperparams(" in output
    assert 'optimizer.opt_state[1].hyperparams["learning_rate"][...] = scheduler(' in output


def test_reading_the_builtin_float_keeps_the_nnx_write() -> None:
    """imagenet's ``parser.add_argument('--lr', type=float)`` reads the builtin."""
    output = nnx(source().replace("import os\n", "import os\nPARSE = float\n"))
    assert "learning_rate=float(scheduler(0))" in output and WRITE in output


def test_a_float_bound_by_the_file_escapes_the_nnx_write() -> None:
    output = nnx(source().replace("import os\n", "import os\nfloat = int\n"))
    assert "rename that `float`" in output and WRITE not in output


def test_the_optimizer_handed_to_a_warm_up_before_the_epochs_escapes_optax() -> None:
    """Updates before the epoch loop shift optax's count against torch's epoch count."""
    code = source().replace(
        "    for epoch in range(args.start_epoch",
        "    warm_up(model, optimizer)\n    for epoch in range(args.start_epoch",
    )
    reason = scheduler_reason(code, steps_per_epoch="len(train_loader)")
    assert "the optimizer is also handed to warm_up() at main.py:" in reason


def test_nnx_names_the_scheduler_handed_to_train_not_the_flag() -> None:
    reason = scheduler_reason(source(**TRAPS["train_steps_the_scheduler_too"]), TorchToNNX)
    assert "`scheduler` is passed to `train` at main.py:19" in reason
    assert "--steps-per-epoch" not in reason


GLOBAL = """\
import torch

model = make_model()
loader = make_loader()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2)


def train():
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()


for epoch in range(10):
    train()
    sched.step()
"""


@pytest.mark.parametrize("flag", ["6", "len(loader)"])
def test_a_train_function_stepping_the_module_optimizer_folds_in_optax(flag: str) -> None:
    output = run_codemod(GLOBAL, TorchToOptax, steps_per_epoch=flag)
    assert "count // " in output and "ESCAPE-BEGIN torch.optim.lr_scheduler" not in output


def test_a_train_function_stepping_the_module_optimizer_keeps_the_nnx_write() -> None:
    output = nnx(GLOBAL)
    assert 'opt.opt_state.hyperparams["learning_rate"][...] = sched(epoch + 1)' in output


def test_a_train_function_iterating_its_own_loader_escapes_optax() -> None:
    code = GLOBAL.replace("def train():\n", "def train():\n    loader = other()\n")
    reason = scheduler_reason(code, steps_per_epoch="len(loader)")
    assert "iterates `loader`, which is not provably `loader`" in reason
