"""The per-epoch fold after a train function (the imagenet shape in one file, detr's
``engine.train_one_epoch`` in another) is the same under ``python -m libcst.tool codemod``,
``ml-switcheroo convert`` without a cache, and ``convert`` with a cache, cold and warm, for
both targets (optax with ``--steps-per-epoch``, NNX without it)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import libcst as cst
import pytest
from libcst.codemod import CodemodContext

from ml_switcheroo import convert
from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from tests.support import run_libcst_tool, write_package

FLAG = "len(train_loader)"

ENGINE = """\
def train_one_epoch(model, criterion, data_loader, optimizer, epoch):
    model.train()
    for samples, targets in data_loader:
        outputs = model(samples)
        losses = criterion(outputs, targets)
        optimizer.zero_grad()
        losses.backward()
        optimizer.step()
"""

MAIN = """\
import torch
from pkg.engine import train_one_epoch


def main(args, model, criterion, train_loader):
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    lr_scheduler = torch.optim.lr_scheduler.StepLR(optimizer, args.lr_drop)
    if args.resume:
        checkpoint = torch.load(args.resume)
        optimizer.load_state_dict(checkpoint["optimizer"])
        lr_scheduler.load_state_dict(checkpoint["lr_scheduler"])
        args.start_epoch = checkpoint["epoch"] + 1
    for epoch in range(args.start_epoch, args.epochs):
        train_one_epoch(model, criterion, train_loader, optimizer, epoch)
        lr_scheduler.step()
        torch.save({"optimizer": optimizer.state_dict(), "lr_scheduler": lr_scheduler.state_dict()}, "c")
"""

SINGLE = """\
import torch
from torch.optim.lr_scheduler import StepLR


def main_worker(args, model, criterion, train_loader):
    optimizer = torch.optim.SGD(model.parameters(), args.lr, momentum=args.momentum)
    scheduler = StepLR(optimizer, step_size=30, gamma=0.1)
    for epoch in range(args.start_epoch, args.epochs):
        train(train_loader, model, criterion, optimizer, epoch, args)
        scheduler.step()


def train(train_loader, model, criterion, optimizer, epoch, args):
    model.train()
    for i, (images, target) in enumerate(train_loader):
        loss = criterion(model(images), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""

FILES = {"engine.py": ENGINE, "main.py": MAIN, "single.py": SINGLE}
TARGETS = {"optax": (TorchToOptax, ["--steps-per-epoch", FLAG]), "nnx": (TorchToNNX, [])}


def in_process(root: Path, target: str, files: Mapping[str, str] = FILES) -> dict[str, str]:
    """Each of ``files`` converted alone, nothing written."""
    command, arguments = TARGETS[target]
    options = {"steps_per_epoch": FLAG} if arguments else {}
    outputs = {}
    for name in files:
        path = root / "pkg" / name
        context = CodemodContext(filename=str(path))
        tree = cst.parse_module(path.read_text(encoding="utf-8"))
        outputs[name] = command(context, **options).transform_module(tree).code
    return outputs


def written(root: Path, files: Mapping[str, str] = FILES) -> dict[str, str]:
    return {name: (root / "pkg" / name).read_text(encoding="utf-8") for name in files}


@pytest.fixture(params=sorted(TARGETS))
def target(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_in_process_folds_both_schedulers(tmp_path: Path, target: str) -> None:
    outputs = in_process(write_package(tmp_path, FILES), target)
    for name in ("main.py", "single.py"):
        assert "ESCAPE-BEGIN torch.optim.lr_scheduler.StepLR" not in outputs[name], outputs[name]


def test_libcst_tool_writes_the_same(tmp_path: Path, target: str) -> None:
    expected = in_process(write_package(tmp_path / "a", FILES), target)
    root = write_package(tmp_path / "b", FILES)
    command = {"optax": "optimizer.TorchToOptax", "nnx": "optimizer.TorchToNNX"}[target]
    run_libcst_tool(root, command, *TARGETS[target][1])
    assert written(root) == expected


@pytest.mark.parametrize("cache", ["--no-cache", "cold", "warm"])
def test_convert_writes_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, cache: str
) -> None:
    expected = in_process(write_package(tmp_path / "a", FILES), target)
    root = write_package(tmp_path / "b", FILES)
    cached = ["--no-cache"] if cache == "--no-cache" else ["--cache", str(tmp_path / "cache")]
    arguments = ["--target", target, *TARGETS[target][1], "-j", "1", *cached, "."]
    monkeypatch.chdir(root)
    if cache == "warm":  # a first run fills the cache; the files are then written afresh
        assert convert.main([*arguments[:-1], "--check", "."]) in (0, 1)
        shutil.rmtree(root / "pkg")
        write_package(root, FILES)
    assert convert.main([*arguments[:-1], "-i", "."]) == 0
    assert written(root) == expected


def test_a_cached_run_sees_a_break_added_to_the_other_files_batch_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """main.py's fold depends on engine.py's loop: a warm cache must not keep the old fold."""
    root = write_package(tmp_path / "b", FILES)
    arguments = ["--steps-per-epoch", FLAG, "-j", "1", "--cache", str(tmp_path / "cache")]
    monkeypatch.chdir(root)
    assert convert.main([*arguments, "--check", "."]) == 1  # fills the cache
    engine = root / "pkg" / "engine.py"
    engine.write_text(
        ENGINE.replace(
            "    for samples, targets in data_loader:\n",
            "    for i, (samples, targets) in enumerate(data_loader):\n"
            "        if i >= 10:\n            break\n",
        ),
        encoding="utf-8",
    )
    assert convert.main([*arguments, "-i", "."]) == 0
    main = (root / "pkg" / "main.py").read_text(encoding="utf-8")
    assert "ESCAPE-BEGIN torch.optim.lr_scheduler.StepLR" in main
    assert "can leave or skip its batch loop early" in main
