"""A run that converts files in place answers every question about another file from that
file as the user wrote it: the output is the same whatever the order of the files and the
number of workers (libcst's runner writes each file as soon as its worker is done).

The per-epoch pair of ``test_per_epoch_train_runners.py`` with the engine's file named so that
it sorts after the script that calls it: the script is rewritten first, then the engine's
questions about its caller (is the optimizer handed over translated?) read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo import convert
from ml_switcheroo.analysis import repository
from tests import test_per_epoch_train_runners as per_epoch
from tests.support import run_libcst_tool, write_package
from tests.test_per_epoch_train_runners import ENGINE, MAIN, TARGETS

FILES = {"z_engine.py": ENGINE, "main.py": MAIN.replace("pkg.engine", "pkg.z_engine")}
COMMANDS = {"optax": "optimizer.TorchToOptax", "nnx": "optimizer.TorchToNNX"}


def in_process(root: Path, target: str) -> dict[str, str]:
    """Each file converted alone, nothing written: what every in-place run must write."""
    return per_epoch.in_process(root, target, FILES)


def written(root: Path) -> dict[str, str]:
    return per_epoch.written(root, FILES)


@pytest.fixture(params=sorted(TARGETS))
def target(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def expected(tmp_path: Path, target: str) -> dict[str, str]:
    outputs = in_process(write_package(tmp_path / "a", FILES), target)
    assert outputs != dict(FILES)  # both files change: the order matters
    assert all(outputs[name] != text for name, text in FILES.items())
    return outputs


@pytest.mark.parametrize("jobs", [1, 2])
def test_convert_in_place_writes_what_each_file_alone_gives(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    expected: dict[str, str],
    jobs: int,
) -> None:
    root = write_package(tmp_path / "b", FILES)
    monkeypatch.chdir(root)
    arguments = ["--target", target, *TARGETS[target][1], "-j", str(jobs), "--no-cache"]
    assert convert.main([*arguments, "-i", "."]) == 0
    assert written(root) == expected


@pytest.mark.parametrize("jobs", [1, 2])
def test_libcst_tool_in_place_writes_what_each_file_alone_gives(
    tmp_path: Path, target: str, expected: dict[str, str], jobs: int
) -> None:
    root = write_package(tmp_path / "b", FILES)
    run_libcst_tool(root, COMMANDS[target], *TARGETS[target][1], jobs=jobs)
    assert written(root) == expected


def test_a_run_releases_its_pins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the run, questions read the files again (a later run in the same process)."""
    root = write_package(tmp_path / "b", FILES)
    monkeypatch.chdir(root)
    assert convert.main(["--target", "nnx", "-j", "1", "--no-cache", "-i", "."]) == 0
    assert repository._Pins.sources == {}


def test_a_pinned_file_is_answered_from_its_pinned_bytes(tmp_path: Path) -> None:
    root = write_package(tmp_path, {"engine.py": ENGINE})
    path = str(root / "pkg" / "engine.py")
    index = repository.index_for(repository.repository_root(path))
    repository.pin_sources([path])
    try:
        Path(path).write_text("x = 1\n", encoding="utf-8")
        assert index.source(path) == ENGINE.encode()
    finally:
        repository.release_pins()
    assert index.source(path) == b"x = 1\n"
