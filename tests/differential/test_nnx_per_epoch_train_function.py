"""optimizer.TorchToNNX on the imagenet shape (pytorch/examples): a StepLR stepped once per
epoch after ``train(train_loader, model, criterion, optimizer, epoch, device, args)`` of the
same file, a resume branch not taken (``scheduler.load_state_dict`` marked in place),
``range(args.start_epoch, args.epochs)``, ``validate(model, args)`` between, a checkpoint
under a condition. The lr is written after train(): ``scheduler(epoch - args.start_epoch +
1)``. Whole loops run (``nnx_loops``): torch as written against the translation on an NNX
copy of the model, every recorded loss and the final parameters, float64, 36 updates over
3 epochs (30 where train() breaks out early), from epoch 0 and from a later start epoch."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from ml_switcheroo.targets.catalogue import load_semantic_map
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import (
    run_nnx_loop,
    run_torch_loop,
    translate_nnx,
    translated_rel,
    worst_rel,
)
from tests.differential.test_nnx_epoch_lr import EPOCH_LOOP
from tests.differential.test_nnx_trainers_and_files import ENGINE, PACKAGES, package_rel

IMAGENET = """\
import argparse
import torch
from torch.optim.lr_scheduler import StepLR


def train(train_loader, model, criterion, optimizer, epoch, device, args):
    model.train()
    for i, (images, target) in enumerate(train_loader):
{inside}        output = model(images)
        loss = ((output - target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())


def validate(model, args):
    model.eval()
    return args.print_freq


args = argparse.Namespace(
    start_epoch={start}, epochs={start} + EPOCHS, resume="", distributed=False, save=False,
    print_freq=10, lr=0.1, momentum=0.9, max_iters=10,
)
model = make_model()
optimizer = torch.optim.SGD(model.parameters(), args.lr, momentum=args.momentum)
scheduler = StepLR(optimizer, step_size=1, gamma=0.5)
if args.resume:
    checkpoint = torch.load(args.resume)
    args.start_epoch = checkpoint["epoch"]
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
for epoch in range(args.start_epoch, args.epochs):
    if args.distributed:
        train_sampler.set_epoch(epoch)
    train(loader, model, None, optimizer, epoch, None, args)
    acc1 = validate(model, args)
    scheduler.step()
    if args.save:
        save_checkpoint({{"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}})
"""

BREAK = "        if i >= args.max_iters:\n            break\n"

LOOPS = {
    "from_epoch_zero": IMAGENET.format(start=0, inside=""),
    "from_a_later_start_epoch": IMAGENET.format(start=3, inside=""),
    "train_breaks_out_of_its_batch_loop": IMAGENET.format(start=0, inside=BREAK),
    # imagenet's own optimizer: weight decay makes the tx a chain, the lr written to its
    # injected element (`optimizer.opt_state[1]`); `type=float` reads the builtin
    "sgd_with_weight_decay": IMAGENET.format(start=0, inside="").replace(
        "momentum=args.momentum)",
        "momentum=args.momentum, weight_decay=1e-3)\nparse = float",
    ),
    # train() stepping the module's optimizer (no parameter)
    "train_of_the_module_optimizer": (
        "import torch\n\n"
        "model = make_model()\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)\n"
        "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)\n\n\n"
        "def train():\n"
        "    for x, y in loader:\n"
        "        opt.zero_grad()\n"
        "        loss = ((model(x) - y) ** 2).mean()\n"
        "        loss.backward()\n"
        "        opt.step()\n"
        "        losses.append(loss.item())\n\n\n"
        "for epoch in range(EPOCHS):\n"
        "    train()\n"
        "    sched.step()\n"
    ),
    # clipping at the chain's head: `optax.chain(optax.clip_by_global_norm(..), injected)`
    # (in the epoch loop's own batch loop: clipping is not folded from another function)
    "sgd_with_clipping": EPOCH_LOOP.format(
        optimizer="SGD(model.parameters(), lr=0.1, momentum=0.9)",
        scheduler="StepLR(opt, step_size=1, gamma=0.5)",
    ).replace(
        "        opt.step()\n",
        "        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)\n        opt.step()\n",
    ),
}

WRITE = (
    'optimizer.opt_state.hyperparams["learning_rate"][...] = '
    "scheduler(epoch - args.start_epoch + 1)"
)


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("name", sorted(LOOPS))
def test_the_lr_written_after_train_matches_torch(name: str, exact: bool) -> None:
    translated, rel = translated_rel(LOOPS[name], exact=exact)
    write = WRITE.replace("opt_state.", "opt_state[1].") if "weight_decay" in name else WRITE
    if "clipping" in name:
        write = 'opt.opt_state[1].hyperparams["learning_rate"][...] = sched(epoch + 1)'
    if "module_optimizer" in name:
        write = 'opt.opt_state.hyperparams["learning_rate"][...] = sched(epoch + 1)'
    assert write in translated, translated
    assert "ESCAPE-BEGIN torch.optim.lr_scheduler.StepLR" not in translated, translated
    assert rel < tolerance(name, exact), f"{name}: rel {rel:.3e}"


def tolerance(name: str, exact: bool) -> float:
    """EXACT, or the map's tolerance of clip_grad_norm_ where the map calls it approximate."""
    entry = load_semantic_map().apis["torch.nn.utils.clip_grad_norm_"]
    if "clipping" not in name or entry.status_for(exact) != "approximate":
        return EXACT
    assert entry.tolerance is not None
    return entry.tolerance


def test_the_resume_branch_keeps_its_marked_load_state_dict() -> None:
    translated = translate_nnx(LOOPS["from_epoch_zero"])
    assert BEGIN + " torch.optim.lr_scheduler.LRScheduler.load_state_dict" in translated
    assert '    scheduler.load_state_dict(checkpoint["scheduler"])\n' in translated


def test_a_write_counted_from_zero_would_be_measured_wrong() -> None:
    """From a later start epoch, ``scheduler(epoch + 1)`` is not torch's lr (the harness
    can fail)."""
    source = LOOPS["from_a_later_start_epoch"]
    translated = translate_nnx(source).replace("epoch - args.start_epoch + 1", "epoch + 1")
    assert worst_rel(run_torch_loop(source), run_nnx_loop(source, translated)) > 1e-3


# detr's shape: `train_one_epoch` of another file of the package (``engine.py``), a resume
# branch not taken, the epoch loop from ``args.start_epoch``.
MAIN_DETR = """\
import argparse
import torch
from {package}.engine import train_one_epoch


def main(model, loader, epochs):
    args = argparse.Namespace(start_epoch=2, epochs=2 + epochs, resume="", clip_max_norm=0.0)
    criterion = torch.nn.MSELoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.02, weight_decay=1e-4)
    lr_scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5)
    if args.resume:
        checkpoint = torch.load(args.resume)
        optimizer.load_state_dict(checkpoint["optimizer"])
        lr_scheduler.load_state_dict(checkpoint["lr_scheduler"])
        args.start_epoch = checkpoint["epoch"] + 1
    losses = []
    for epoch in range(args.start_epoch, args.epochs):
        epoch_losses = train_one_epoch(model, criterion, loader, optimizer)
        lr_scheduler.step()
        losses.extend(epoch_losses)
    return losses
"""


def test_the_lr_written_after_a_function_of_another_file_matches_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "detr_per_epoch_from_a_start_epoch"
    monkeypatch.setitem(PACKAGES, name, {"engine.py": ENGINE, "main.py": MAIN_DETR})
    outputs, rel = package_rel(tmp_path, name)
    write = "lr_scheduler(epoch - args.start_epoch + 1)"
    assert 'hyperparams["learning_rate"][...] = ' + write in outputs["main.py"], outputs
    assert "ESCAPE-BEGIN torch.optim.lr_scheduler.StepLR" not in outputs["main.py"]
    assert rel < EXACT, f"rel {rel:.3e}"
