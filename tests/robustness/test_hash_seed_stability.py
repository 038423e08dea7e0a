"""The output is a function of the input alone: the same bytes under every ``PYTHONHASHSEED``.

libcst keeps a scope's assignments and accesses in sets, whose order is the objects' memory
addresses (another one in every process); what the codemod builds from them (here the NNX
escape reason naming the model's wrapper) must not follow that order. Each run is a real
process with its own hash seed; the input has four wrappers on four branches, in four files
(three of another model: the optimizer's escape names the first of those), so that a run that
took libcst's order would name different lines in different runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.robustness.helpers import REPO

SEEDS = ("0", "1", "2")

WRAPPED_ON_FOUR_BRANCHES = """\
import torch
from torch import nn


def main(world, data, other):
    model = nn.Linear(4, 2)
    if world == 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[0])
    elif world == 2:
        model = torch.nn.parallel.DistributedDataParallel(other, device_ids=[1])
    elif world == 3:
        model = torch.nn.parallel.DistributedDataParallel(other, device_ids=[2])
    else:
        model = torch.nn.parallel.DistributedDataParallel(other)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    criterion = nn.MSELoss()
    for x, y in data:
        output = model(x)
        loss = criterion(output, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""

WRAPPER_REASON = re.compile(
    r"may be `torch\.nn\.parallel\.DistributedDataParallel\(.*?\)` \((\S+)\)"
)


def _diff_under_seed(folder: Path, seed: str) -> str:
    """``ml-switcheroo convert --target nnx --diff`` of ``folder`` in a process with ``seed``."""
    environment = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "ml_switcheroo", "convert", "--no-cache", "-q", "-j", "1"]
    argv += ["--target", "nnx", "--diff", "."]
    done = subprocess.run(
        argv, cwd=folder, env=environment, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _four_files(folder: Path) -> Path:
    for number in range(4):
        (folder / f"step{number}.py").write_text(WRAPPED_ON_FOUR_BRANCHES)
    return folder


def test_nnx_wrapper_reason_is_the_same_bytes_under_every_hash_seed(tmp_path: Path) -> None:
    folder = _four_files(tmp_path)
    outputs = {seed: _diff_under_seed(folder, seed) for seed in SEEDS}
    assert len(set(outputs.values())) == 1, {
        seed: WRAPPER_REASON.findall(text) for seed, text in outputs.items()
    }


def test_nnx_wrapper_reason_names_the_first_wrapper_in_source_order(tmp_path: Path) -> None:
    folder = _four_files(tmp_path)
    named = WRAPPER_REASON.findall(_diff_under_seed(folder, SEEDS[1]))
    assert named == [f"step{number}.py:10" for number in range(4)]


LOSS_NEEDING_JAX_AND_JNP = """\
import torch
import torch.nn.functional as F
from torch import nn


def main(data):
    model = nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for x, y in data:
        loss = F.binary_cross_entropy(torch.sigmoid(model(x)), y, reduction="sum")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""


def test_nnx_template_imports_come_in_the_same_order_under_every_hash_seed(
    tmp_path: Path,
) -> None:
    # the map's templates need `jax` and `jnp`: requested from a set, they were added in the
    # set's order (pytorch/examples' VAE: `import jax.numpy as jnp` first under seed 2)
    (tmp_path / "step.py").write_text(LOSS_NEEDING_JAX_AND_JNP)
    outputs = {seed: _diff_under_seed(tmp_path, seed) for seed in SEEDS}
    assert len(set(outputs.values())) == 1, outputs
    assert "+import jax\n+import jax.numpy as jnp\n" in outputs["0"]
