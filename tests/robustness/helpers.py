"""Shared helpers of the robustness tests: the two command lines, run as real processes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

GOOD = b"import torch\nopt = torch.optim.SGD(params, lr=0.1)\n"
GOOD_CONVERTED = b"import optax\nopt = optax.sgd(learning_rate=0.1)\n"


def libcst_tool(
    target: Path, *args: str, timeout: float = 300, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """``python -m libcst.tool codemod optimizer.TorchToOptax`` from the repository root."""
    argv = [*prefix, sys.executable, "-m", "libcst.tool", "codemod", "optimizer.TorchToOptax"]
    argv += ["-j", "2", "--hide-progress", *args, str(target)]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def convert_cli(
    folder: Path,
    *args: str,
    paths: tuple[str, ...] = (".",),
    timeout: float = 300,
    prefix: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """``ml-switcheroo convert --in-place -j 2 ARGS PATHS`` run inside ``folder``."""
    argv = [*prefix, sys.executable, "-m", "ml_switcheroo", "convert", "--in-place", "-j", "2"]
    argv += [*args, *paths]
    return subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=timeout)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def summary_numbers(stderr: str) -> dict[str, int]:
    """The counts of ``ml-switcheroo convert``'s summary line."""
    line = next(x for x in stderr.splitlines() if x.startswith("ml-switcheroo: "))
    return {
        name.strip(): int(number)
        for number, name in re.findall(r"(\d+) ([a-z][a-z ()-]*?)(?:,| in )", line)
    }


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (symbolic links not followed), by relative name."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }
