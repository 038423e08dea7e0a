"""The real command lines, run as subprocesses: libcst's runner and `ml-switcheroo init`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

TRAIN = textwrap.dedent(
    """\
    import torch

    def fit(model, data):
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        for batch in data:
            opt.zero_grad()
            model(batch).backward()
            opt.step()
    """
)


def libcst_tool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "libcst.tool", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    shutil.copytree(EXAMPLES, folder)
    (folder / "train.py").write_text(TRAIN, encoding="utf-8")
    return folder


def test_codemod_rewrites_a_folder_in_parallel(project: Path) -> None:
    untouched = (project / "not_an_optimizer.py").read_bytes()
    result = libcst_tool(
        "codemod", "optimizer.TorchToOptax", "-j", "2", "--hide-progress", str(project)
    )
    assert result.returncode == 0, result.stderr
    text = (project / "train.py").read_text(encoding="utf-8")
    assert "opt = optax.adam(learning_rate=0.01)" in text
    assert "zero_grad" not in text
    assert "# ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.step" in text
    assert (project / "not_an_optimizer.py").read_bytes() == untouched
    for path in project.glob("*.py"):
        compile(path.read_text(encoding="utf-8"), str(path), "exec")


def test_codemod_on_a_single_file_without_formatting(project: Path) -> None:
    target = project / "train.py"
    result = libcst_tool(
        "codemod", "optimizer.TorchToOptax", "--no-format", "--hide-progress", str(target)
    )
    assert result.returncode == 0, result.stderr
    assert "optax.adam(learning_rate=0.01)" in target.read_text(encoding="utf-8")


def test_unified_diff_prints_and_changes_nothing(project: Path) -> None:
    before = {p: p.read_bytes() for p in project.glob("*.py")}
    result = libcst_tool(
        "codemod", "optimizer.TorchToOptax", "--unified-diff", "--hide-progress", str(project)
    )
    assert result.returncode == 0, result.stderr
    assert "+    opt = optax.adam(learning_rate=0.01)" in result.stdout
    assert {p: p.read_bytes() for p in project.glob("*.py")} == before


def test_second_run_changes_nothing(project: Path) -> None:
    libcst_tool("codemod", "optimizer.TorchToOptax", "--hide-progress", str(project))
    after_first = {p: p.read_bytes() for p in project.glob("*.py")}
    result = libcst_tool("codemod", "optimizer.TorchToOptax", "--hide-progress", str(project))
    assert result.returncode == 0, result.stderr
    assert {p: p.read_bytes() for p in project.glob("*.py")} == after_first


def test_single_commands_run_alone(project: Path) -> None:
    target = project / "train.py"
    result = libcst_tool("codemod", "optimizer.StripZeroGrad", "--hide-progress", str(target))
    assert result.returncode == 0, result.stderr
    text = target.read_text(encoding="utf-8")
    assert "zero_grad" not in text
    assert "torch.optim.Adam(" in text and "ESCAPE" not in text


def test_nnx_command_runs_under_the_repository_config(project: Path) -> None:
    target = project / "train.py"
    result = libcst_tool("codemod", "optimizer.TorchToNNX", "--hide-progress", str(target))
    assert result.returncode == 0, result.stderr
    assert "nnx.Optimizer(" in target.read_text(encoding="utf-8")


def test_repository_config_offers_every_command_of_the_package() -> None:
    import codemods.optimizer as offered
    from ml_switcheroo.codemods import optimizer as package
    from ml_switcheroo.rewrite.engine import SwitcherooCommand

    commands = {
        name
        for name, value in vars(package).items()
        if isinstance(value, type)
        and issubclass(value, SwitcherooCommand)
        and value is not SwitcherooCommand
    }
    assert commands <= set(offered.__all__)


def test_list_shows_every_command_with_its_description() -> None:
    result = libcst_tool("list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    commands = ("TorchToOptax", "TorchToNNX", "OptimizerInit", "OptimizerStep", "StripZeroGrad")
    for command in commands:
        (line,) = [line for line in lines if line.startswith(f"optimizer.{command} - ")]
        assert len(line) > len(f"optimizer.{command} - ") + 10


def test_broken_semantic_map_stops_before_touching_files(project: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apis:\n  torch.optim.SGD:\n    hook: nope\n", encoding="utf-8")
    before = {p: p.read_bytes() for p in project.glob("*.py")}
    result = libcst_tool(
        "codemod",
        "optimizer.TorchToOptax",
        "--semantic-map",
        str(broken),
        "--hide-progress",
        str(project),
    )
    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if "semantic map error" in line]
    assert len(error_lines) == 1
    assert f"{broken}:3: entry 'torch.optim.SGD': unknown hook 'nope'" in error_lines[0]
    assert {p: p.read_bytes() for p in project.glob("*.py")} == before


def test_user_semantic_map_adds_an_api(project: Path, tmp_path: Path) -> None:
    extra = tmp_path / "lion.yaml"
    extra.write_text(
        textwrap.dedent(
            """\
            apis:
              torch.optim.Adamax:
                hook: optimizer_constructor
                returns: torch.optim.Optimizer
                signature: "params, lr=0.002, betas=(0.9, 0.999), eps=1e-08, weight_decay=0, foreach=None, *, maximize=False, differentiable=False, capturable=False"
                ignore: [foreach, differentiable, capturable, maximize, weight_decay]
                chain: [{emit: "optax.adamax(learning_rate={lr}, b1={betas[0]?}, b2={betas[1]?}, eps={eps?})"}]
            """
        ),
        encoding="utf-8",
    )
    target = project / "adamax.py"
    target.write_text(
        "import torch\nopt = torch.optim.Adamax(m.parameters(), lr=0.5)\n", encoding="utf-8"
    )
    result = libcst_tool(
        "codemod",
        "optimizer.TorchToOptax",
        "--semantic-map",
        str(extra),
        "--hide-progress",
        str(target),
    )
    assert result.returncode == 0, result.stderr
    assert (
        target.read_text(encoding="utf-8")
        == "import optax\nopt = optax.adamax(learning_rate=0.5)\n"
    )


def test_file_that_does_not_parse_is_left_alone_and_the_run_goes_on(project: Path) -> None:
    bad = project / "broken.py"
    bad.write_bytes(b"import torch\ndef f(:\n    torch.optim.SGD(p)\n")
    result = libcst_tool("codemod", "optimizer.TorchToOptax", "--hide-progress", str(project))
    assert result.returncode == 1  # libcst counts the failure
    assert "broken.py" in result.stderr
    assert bad.read_bytes() == b"import torch\ndef f(:\n    torch.optim.SGD(p)\n"
    assert "optax.adam(learning_rate=0.01)" in (project / "train.py").read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- init


def ml_switcheroo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ml_switcheroo", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_init_makes_the_codemod_work_in_a_users_repository(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(TRAIN, encoding="utf-8")
    result = ml_switcheroo("init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".libcst.codemod.yaml").exists()
    run = libcst_tool(
        "codemod", "optimizer.TorchToOptax", "--hide-progress", "train.py", cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert "optax.adam(learning_rate=0.01)" in (tmp_path / "train.py").read_text(encoding="utf-8")


def test_init_adds_the_module_to_an_existing_block_list_keeping_comments(tmp_path: Path) -> None:
    config = tmp_path / ".libcst.codemod.yaml"
    config.write_text(
        "# our settings\nformatter: ['black', '-']\nmodules:\n  # in-house codemods\n  - our.codemods\nrepo_root: .\n",
        encoding="utf-8",
    )
    result = ml_switcheroo("init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = config.read_text(encoding="utf-8")
    assert "# our settings" in text and "# in-house codemods" in text
    assert "  - our.codemods\n  - ml_switcheroo.codemods\n" in text
    again = ml_switcheroo("init", cwd=tmp_path)
    assert "already lists" in again.stdout
    assert config.read_text(encoding="utf-8") == text


def test_init_adds_the_module_to_a_flow_list(tmp_path: Path) -> None:
    config = tmp_path / ".libcst.codemod.yaml"
    config.write_text("modules: [our.codemods]  # ours\n", encoding="utf-8")
    assert ml_switcheroo("init", cwd=tmp_path).returncode == 0
    assert (
        config.read_text(encoding="utf-8")
        == "modules: [our.codemods, ml_switcheroo.codemods]  # ours\n"
    )


def test_init_without_modules_keeps_libcst_defaults(tmp_path: Path) -> None:
    config = tmp_path / ".libcst.codemod.yaml"
    config.write_text("repo_root: .\n", encoding="utf-8")
    assert ml_switcheroo("init", cwd=tmp_path).returncode == 0
    assert config.read_text(encoding="utf-8") == (
        "repo_root: .\nmodules:\n- libcst.codemod.commands\n- ml_switcheroo.codemods\n"
    )


def test_init_refuses_a_broken_config(tmp_path: Path) -> None:
    config = tmp_path / ".libcst.codemod.yaml"
    config.write_text("modules: 3\n", encoding="utf-8")
    result = ml_switcheroo("init", cwd=tmp_path)
    assert result.returncode == 2
    assert "'modules' is not a list" in result.stderr
    assert config.read_text(encoding="utf-8") == "modules: 3\n"


def test_a_ctrl_c_while_convert_is_imported_prints_one_line(monkeypatch, capsys) -> None:
    """A SIGINT landing while ``cli.main`` imports ``convert`` (before its handlers exist): one
    line, exit 130. It printed a KeyboardInterrupt traceback (measured: 1 of 40 Ctrl-Cs sent
    0-2.5 s after start, in ``import tempfile``)."""
    import importlib.abc

    import ml_switcheroo
    from ml_switcheroo import cli

    class Interrupting(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: object, target: object = None) -> None:
            if name == "ml_switcheroo.convert":
                raise KeyboardInterrupt

    monkeypatch.delitem(sys.modules, "ml_switcheroo.convert", raising=False)
    monkeypatch.delattr(ml_switcheroo, "convert", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    try:
        code = cli.main(["convert", "."])
    except KeyboardInterrupt:
        pytest.fail("the KeyboardInterrupt left cli.main (a traceback)")
    assert code == 130
    assert capsys.readouterr().err == "ml-switcheroo convert: interrupted by SIGINT\n"


def test_a_ctrl_c_as_the_run_restores_its_handlers_prints_one_line(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """A SIGINT landing while ``convert.main`` leaves its handlers (the run's work done, its
    summary printed): the interrupted line, exit 130. It printed a KeyboardInterrupt traceback
    (measured: 2 of 8 Ctrl-Cs sent as the first ``converted`` line appeared, exit code -2)."""
    from contextlib import contextmanager

    from ml_switcheroo import convert

    handlers = convert._graceful_signals

    @contextmanager
    def interrupted_on_leaving():  # type: ignore[no-untyped-def]
        with handlers():
            yield
            raise KeyboardInterrupt

    monkeypatch.setattr(convert, "_graceful_signals", interrupted_on_leaving)
    try:
        code = convert.main(["--check", "--no-cache", str(tmp_path)])
    except KeyboardInterrupt:
        pytest.fail("the KeyboardInterrupt left convert.main (a traceback)")
    assert code == 130
    assert (
        capsys.readouterr().err.splitlines()[-1] == "ml-switcheroo convert: interrupted by SIGINT"
    )
