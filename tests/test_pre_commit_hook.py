"""The ``ml-switcheroo-check`` hook of ``.pre-commit-hooks.yaml``, run by pre-commit itself.

``pre-commit try-repo`` installs this checkout into a hook environment of its own (pip, from
the package index for libcst and pyyaml) and runs the hook on the files staged in a scratch git
repository. The environment is built once per module (about 30 s): ``slow``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_convert_cli import PLAIN, SGD

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def run_hook(scratch: Path, home: Path, staged: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Stage ``staged`` in a new git repository and run the hook over the staged files."""
    subprocess.run(["git", "init", "-q"], cwd=scratch, check=True)
    for name, text in staged.items():
        (scratch / name).write_text(text, encoding="utf-8")
    subprocess.run(["git", "add", *staged], cwd=scratch, check=True)
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(REPO), "ml-switcheroo-check"],
        cwd=scratch,
        capture_output=True,
        text=True,
        env={**os.environ, "PRE_COMMIT_HOME": str(home)},
        timeout=600,
    )


def test_a_staged_file_with_a_convertible_optimizer_fails_the_hook_with_the_diff(
    tmp_path: Path, pre_commit_home: Path
) -> None:
    result = run_hook(tmp_path, pre_commit_home, {"train.py": SGD, "util.py": PLAIN})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Failed" in result.stdout
    assert "+opt = optax.sgd(learning_rate=0.1)" in result.stdout


def test_staged_files_without_optimizer_code_pass_the_hook(
    tmp_path: Path, pre_commit_home: Path
) -> None:
    result = run_hook(tmp_path, pre_commit_home, {"util.py": PLAIN})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Passed" in result.stdout
