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


# A user map whose template names `nnx`, which only the NNX target's layer (nnx.yaml) imports.
NNX_ONLY_MAP = """\
version: 1
apis:
  torch.optim.SGD:
    role: constructor
    hook: optimizer_constructor
    returns: torch.optim.Optimizer
    learning_rate: lr
    signature: "params, lr=0.001"
    chain:
      - emit: "optax.sgd(learning_rate={lr}, nesterov=nnx is None)"
"""


def test_a_user_map_is_checked_against_the_chosen_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "loop.py").write_text(LOOP)
    (tmp_path / "mine.yaml").write_text(NNX_ONLY_MAP)
    args = ("--no-cache", "--semantic-map", "mine.yaml", "--target", "nnx", "-i", ".")
    code, _, err = run(capsys, *args, cwd=tmp_path)
    assert code == 0, err
    assert (
        "optax.sgd(learning_rate=0.1, nesterov=nnx is None)" in (tmp_path / "loop.py").read_text()
    )


def test_a_user_map_for_another_target_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "loop.py").write_text(LOOP)
    (tmp_path / "mine.yaml").write_text(NNX_ONLY_MAP)
    code, _, err = run(capsys, "--no-cache", "--semantic-map", "mine.yaml", ".", cwd=tmp_path)
    assert code == 2
    assert "neither an argument placeholder nor declared under 'imports'" in err
    assert len(err.strip().splitlines()) == 1
    assert (tmp_path / "loop.py").read_text() == LOOP
