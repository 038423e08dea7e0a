"""Files that are not plain files: symbolic links, FIFOs, files that cannot be read.

Both command lines, each next to a good convertible file that must be converted all the same.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.robustness.helpers import (
    GOOD,
    GOOD_CONVERTED,
    convert_cli,
    error_lines,
    libcst_tool,
    summary_numbers,
)


def links(root: Path) -> Path:
    """``src/`` with a real file, a link to it, and a link to a file outside ``src/``."""
    src, outside = root / "src", root / "outside"
    src.mkdir()
    outside.mkdir()
    (src / "real.py").write_bytes(GOOD)
    (src / "good.py").write_bytes(GOOD)
    (outside / "other.py").write_bytes(GOOD)
    (src / "a_link_inside.py").symlink_to("real.py")
    (src / "b_link_outside.py").symlink_to(Path("..", "outside", "other.py"))
    (src / "dangling.py").symlink_to("nowhere.py")
    return src


def assert_links_intact(src: Path) -> None:
    assert os.readlink(src / "a_link_inside.py") == "real.py"
    assert os.readlink(src / "b_link_outside.py") == str(Path("..", "outside", "other.py"))
    assert (src.parent / "outside" / "other.py").read_bytes() == GOOD  # never written through


def test_symbolic_links_with_convert(tmp_path: Path) -> None:
    """A link and its target are one file (converted once, under its own name); a link that
    leads outside the paths given is not followed (one line says so); links stay links."""
    src = links(tmp_path)
    result = convert_cli(tmp_path, paths=("src",))
    assert result.returncode == 0, result.stderr
    assert (src / "real.py").read_bytes() == GOOD_CONVERTED
    assert (src / "good.py").read_bytes() == GOOD_CONVERTED
    assert_links_intact(src)
    lines = result.stderr.splitlines()
    assert "converted src/real.py" in lines and "converted src/a_link_inside.py" not in lines
    skipped = [line for line in lines if line.startswith("skipped ")]
    assert skipped == [
        "skipped src/b_link_outside.py: a symbolic link to outside/other.py, outside the paths given"
    ]
    numbers = summary_numbers(result.stderr)
    assert numbers["files scanned"] == 2  # real.py (also reached through the link), good.py
    assert numbers["skipped (links outside the paths)"] == 1
    assert numbers["failed"] == 0


def test_a_link_into_an_excluded_directory_is_not_followed(tmp_path: Path) -> None:
    src = links(tmp_path)
    result = convert_cli(tmp_path, "--exclude", "outside")
    assert result.returncode == 0, result.stderr
    assert (src / "real.py").read_bytes() == GOOD_CONVERTED
    assert_links_intact(src)
    assert summary_numbers(result.stderr)["files scanned"] == 2


def test_a_link_named_on_the_command_line_is_followed(tmp_path: Path) -> None:
    src = links(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "ml_switcheroo", "convert", "-i", "src/b_link_outside.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "outside" / "other.py").read_bytes() == GOOD_CONVERTED
    assert os.path.islink(src / "b_link_outside.py")


def test_symbolic_links_with_libcst_tool(tmp_path: Path) -> None:
    """libcst's runner would write through every link it finds (also into files outside the
    paths, and into a file it converts under its own name at the same time): the command skips
    links, saying so, and converts the files themselves."""
    src = links(tmp_path)
    result = libcst_tool(src)
    assert result.returncode == 0, result.stderr
    assert (src / "real.py").read_bytes() == GOOD_CONVERTED
    assert (src / "good.py").read_bytes() == GOOD_CONVERTED
    assert_links_intact(src)
    for link in ("a_link_inside.py", "b_link_outside.py"):
        assert f"Skipped codemodding {src / link}: a symbolic link to " in result.stderr
    assert " - Failed to codemod 0 files." in result.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_named_like_a_python_file_does_not_block_the_run(tmp_path: Path) -> None:
    """Opening a FIFO for reading blocks until someone writes: it must never be read."""
    for tool in ("convert", "libcst"):
        folder = tmp_path / tool
        folder.mkdir()
        (folder / "good.py").write_bytes(GOOD)
        os.mkfifo(folder / "pipe.py")
        if tool == "convert":
            result = convert_cli(folder, timeout=120)
            assert result.returncode == 0, result.stderr
            assert summary_numbers(result.stderr)["files scanned"] == 1
        else:
            result = libcst_tool(folder, timeout=120)
            assert result.returncode == 0, result.stderr
        assert (folder / "good.py").read_bytes() == GOOD_CONVERTED


IMPORTS_THE_PIPE = b"""import torch
from pipe import train_one_epoch


def fit(model, loader):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train_one_epoch(model, opt, loader)
"""


def test_a_fifo_that_another_file_imports_is_never_read(tmp_path: Path) -> None:
    """The repository index follows imports to other files: a FIFO named like the imported
    module must not be opened there either (it blocked the run once)."""
    for tool in ("convert", "libcst"):
        folder = tmp_path / tool
        folder.mkdir()
        (folder / "main.py").write_bytes(IMPORTS_THE_PIPE)
        os.mkfifo(folder / "pipe.py")
        if tool == "convert":
            result = convert_cli(folder, timeout=120)
        else:
            result = libcst_tool(folder, timeout=120)
        assert result.returncode == 0, result.stderr
        assert b"optax.sgd(learning_rate=0.1)" in (folder / "main.py").read_bytes()


def _without_file_permission_override() -> tuple[str, ...] | None:
    """A command prefix under which the file permission bits hold, or None if there is none.

    Not root: nothing is needed. Root reads a mode-000 file all the same (CAP_DAC_OVERRIDE):
    ``setpriv`` runs the command as root without the two capabilities that override file
    permissions; it still owns (and can use) its own Python and the test's folders.
    """
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = (
        setpriv,
        "--inh-caps=-dac_override,-dac_read_search",
        "--bounding-set=-dac_override,-dac_read_search",
    )
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    return prefix if probe.returncode == 0 else None


def test_an_unreadable_file_is_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    prefix = _without_file_permission_override()
    if prefix is None:
        pytest.skip("running as root, and setpriv cannot drop CAP_DAC_OVERRIDE here")
    for tool in ("convert", "libcst"):
        folder = tmp_path / tool
        folder.mkdir()
        (folder / "good.py").write_bytes(GOOD)
        secret = folder / "secret.py"
        secret.write_bytes(GOOD)
        secret.chmod(0)
        try:
            probe = subprocess.run([*prefix, "cat", str(secret)], capture_output=True)
            if probe.returncode == 0:
                pytest.skip("the file stays readable (a file system that ignores modes?)")
            if tool == "convert":
                result = convert_cli(folder, prefix=prefix)
                assert result.returncode == 3, result.stderr
                assert error_lines(result.stderr) == [
                    "error: secret.py: cannot read the file: Permission denied"
                ]
                assert summary_numbers(result.stderr)["failed"] == 1
            else:
                result = libcst_tool(folder, prefix=prefix)
                assert result.returncode == 1, result.stderr
                assert f"Failed to codemod {secret}\n" in result.stderr
                assert "PermissionError" in result.stderr
                assert " - Failed to codemod 1 files." in result.stderr
        finally:
            secret.chmod(0o644)
        assert secret.read_bytes() == GOOD
        assert (folder / "good.py").read_bytes() == GOOD_CONVERTED


def test_a_folder_that_shadows_the_standard_library_is_converted(tmp_path: Path) -> None:
    """Found by the sweep over torch's own sources: ``python -m`` puts the current folder first
    on sys.path, and torch's ``signal/`` package shadowed the standard library's ``signal``."""
    (tmp_path / "signal").mkdir()
    (tmp_path / "signal" / "__init__.py").write_text('raise SystemExit("shadowed signal")\n')
    (tmp_path / "random.py").write_text('raise SystemExit("shadowed random")\n')
    (tmp_path / "good.py").write_bytes(GOOD)
    run = convert_cli(tmp_path)
    assert run.returncode == 0, run.stderr
    assert "shadowed" not in run.stderr
    assert (tmp_path / "good.py").read_bytes() == GOOD_CONVERTED
    assert summary_numbers(run.stderr)["changed"] == 1
