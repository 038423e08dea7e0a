"""``ml-switcheroo convert --target``: optax by default, nnx for Flax NNX."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_convert_cli import run

LOOP = """\
import torch
model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    opt.step()
"""


def test_target_nnx_writes_an_nnx_optimizer_and_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "loop.py").write_text(LOOP)
    code, out, _ = run(capsys, "--no-cache", "--target", "nnx", "-i", ".", cwd=tmp_path)
    written = (tmp_path / "loop.py").read_text()
    assert code == 0
    assert "opt = nnx.Optimizer(model, optax.sgd(learning_rate=0.1), wrt=nnx.Param)" in written
    assert "    opt.update(model, grads)\n" in written


def test_the_default_target_is_still_optax(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "loop.py").write_text(LOOP)
    code, out, _ = run(capsys, "--no-cache", "-i", ".", cwd=tmp_path)
    written = (tmp_path / "loop.py").read_text()
    assert code == 0 and "opt = optax.sgd(learning_rate=0.1)\n" in written
    assert "nnx" not in written


def test_an_unknown_target_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "loop.py").write_text(LOOP)
    with pytest.raises(SystemExit) as exit_info:
        run(capsys, "--target", "keras", ".", cwd=tmp_path)
    assert exit_info.value.code == 2
