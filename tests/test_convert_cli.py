"""``ml-switcheroo convert``: modes, exit codes, files, encodings, failures, summary.

Most tests call ``convert.main`` in this process with ``-j 1`` (libcst's runner then runs in
process); a few run the real console entry point as a subprocess with ``-j 2``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ml_switcheroo import convert
from ml_switcheroo.app import files

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
PLAIN = "import os\n\nprint(os.getcwd())\n"
SGD = "import torch\nopt = torch.optim.SGD(params, lr=0.1)\n"


def tree(root: Path, layout: dict[str, str | bytes]) -> dict[str, bytes]:
    """Write ``layout`` under ``root``; the bytes of every file, by relative name."""
    contents = {}
    for name, text in layout.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text if isinstance(text, bytes) else text.encode("utf-8")
        path.write_bytes(data)
        contents[name] = data
    return contents


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.parts
    }


def run(capsys: pytest.CaptureFixture[str], *args: str, cwd: Path) -> tuple[int, str, str]:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        code = convert.main(["-j", "1", *args])
    finally:
        os.chdir(old)
    out, err = capsys.readouterr()
    return code, out, err


def summary_numbers(err: str) -> dict[str, int]:
    line = next(x for x in err.splitlines() if x.startswith("ml-switcheroo: "))
    return {
        name.strip(): int(number)
        for number, name in re.findall(r"(\d+) ([a-z][a-z ()-]*?)(?:,| in )", line)
    }


# --------------------------------------------------------------------------- modes


ENCODINGS: dict[str, str | bytes] = {
    "crlf.py": SGD.replace("\n", "\r\n").encode(),
    "bom.py": b"\xef\xbb\xbf" + SGD.encode(),
    "latin.py": (
        "# -*- coding: latin-1 -*-\nimport torch\nname = 'caf\xe9'\n"
        "opt = torch.optim.SGD(params, lr=0.1)\n"
    ).encode("latin-1"),
    "plain.py": PLAIN,
}


def test_diff_is_the_default_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree(tmp_path, {"train.py": TRAIN, "plain.py": PLAIN})
    code, out, err = run(capsys, ".", cwd=tmp_path)
    assert code == 0
    assert snapshot(tmp_path) == before
    assert out.startswith("--- a/train.py\n+++ b/train.py\n")
    assert "+import optax" in out and "-import torch" in out


@pytest.mark.skipif(shutil.which("patch") is None, reason="needs patch")
def test_the_diff_applies_to_the_bytes_and_gives_the_in_place_result(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """Each file's diff is in its own encoding, BOM and CRLF included (like git's)."""
    diffed, rewritten = tmp_path / "diffed", tmp_path / "rewritten"
    before = tree(diffed, {**ENCODINGS, "train.py": TRAIN})
    tree(rewritten, {**ENCODINGS, "train.py": TRAIN})
    old = os.getcwd()
    try:
        os.chdir(diffed)
        assert convert.main(["-j", "1", "."]) == 0
        assert snapshot(diffed) == before
        patch = capsysbinary.readouterr().out
        os.chdir(rewritten)
        assert convert.main(["-j", "1", "-i", "."]) == 0
    finally:
        os.chdir(old)
    assert b"caf\xe9" in patch and b"\r\n" in patch and b"\xef\xbb\xbf" in patch
    subprocess.run(["patch", "-p1", "-s", "--binary"], input=patch, cwd=diffed, check=True)
    assert snapshot(diffed) == snapshot(rewritten)


def test_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree(tmp_path, {"a/train.py": TRAIN, "b/plain.py": PLAIN})
    code, out, err = run(capsys, "--check", "a", cwd=tmp_path)
    assert (code, out) == (1, "")
    assert "would convert a/train.py" in err
    code, out, err = run(capsys, "--check", "--diff", "a", cwd=tmp_path)
    assert code == 1 and "+import optax" in out
    code, out, err = run(capsys, "--check", "b", cwd=tmp_path)
    assert (code, out) == (0, "")


def test_in_place_keeps_encoding_line_endings_and_permissions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree(tmp_path, ENCODINGS)
    (tmp_path / "latin.py").chmod(0o751)
    inode = os.stat(tmp_path / "crlf.py").st_ino
    code, out, err = run(capsys, "--in-place", ".", cwd=tmp_path)
    assert (code, out) == (0, "")
    after = snapshot(tmp_path)
    assert after["plain.py"] == before["plain.py"]
    assert after["crlf.py"] == b"import optax\r\nopt = optax.sgd(learning_rate=0.1)\r\n"
    assert after["bom.py"] == b"\xef\xbb\xbfimport optax\nopt = optax.sgd(learning_rate=0.1)\n"
    assert after["latin.py"] == (
        "# -*- coding: latin-1 -*-\nimport optax\nname = 'caf\xe9'\n"
        "opt = optax.sgd(learning_rate=0.1)\n"
    ).encode("latin-1")
    assert stat.S_IMODE(os.stat(tmp_path / "latin.py").st_mode) == 0o751
    assert os.stat(tmp_path / "crlf.py").st_ino != inode  # replaced, not rewritten in place
    assert sorted(after) == sorted(before)  # no temporary file left behind
    code, _, _ = run(capsys, "--check", ".", cwd=tmp_path)
    assert code == 0  # converted: nothing more to do


def test_a_failed_write_leaves_the_file_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tree(tmp_path, {"train.py": TRAIN})

    def refuse(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", refuse)
    code, out, err = run(capsys, "-i", ".", cwd=tmp_path)
    assert code == 3
    assert "error: train.py: OSError: [Errno 28] No space left on device" in err
    assert snapshot(tmp_path) == before  # and no temporary file left


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree(tmp_path, {"train.py": TRAIN})
    for args in (
        ["--check", "--in-place", "."],
        ["missing-dir"],
        ["--report", "report.txt", "."],
        ["--report", "no/such/dir/report.json", "."],
        ["-j", "0", "."],
    ):
        with pytest.raises(SystemExit) as exit_info:
            run(capsys, *args, cwd=tmp_path)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err


def test_a_broken_map_stops_before_any_file_is_touched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree(tmp_path, {"src/train.py": TRAIN})
    (tmp_path / "bad.yaml").write_text("apis:\n  torch.optim.Adamw:\n    hook: nope\n")
    with pytest.raises(SystemExit) as exit_info:
        run(capsys, "-i", "--semantic-map", "bad.yaml", "src", cwd=tmp_path)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.yaml" in err, err
    assert snapshot(tmp_path)["src/train.py"] == before["src/train.py"]


# --------------------------------------------------------------------------- which files


def test_exclude(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree(
        tmp_path,
        {
            "src/train.py": TRAIN,
            "src/legacy/old.py": TRAIN,
            "tests/test_train.py": TRAIN,
            "src/gen_pb2.py": TRAIN,
        },
    )
    code, out, err = run(
        capsys,
        "--check",
        "--exclude",
        "tests",
        "--exclude",
        "src/legacy",
        "--exclude",
        "*_pb2.py",
        ".",
        cwd=tmp_path,
    )
    assert code == 1
    assert re.findall(r"would convert (\S+)", err) == ["src/train.py"]
    assert summary_numbers(err)["files scanned"] == 1


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_gitignore_is_respected_in_a_git_checkout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree(
        tmp_path,
        {
            ".gitignore": "build/\nignored.py\n",
            "tracked.py": TRAIN,
            "untracked.py": TRAIN,
            "ignored.py": TRAIN,
            "build/lib/copy.py": TRAIN,
        },
    )
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "tracked.py", ".gitignore"], cwd=tmp_path, check=True)
    code, out, err = run(capsys, "--check", ".", cwd=tmp_path)
    assert code == 1
    assert re.findall(r"would convert (\S+)", err) == ["tracked.py", "untracked.py"]
    # Outside a checkout the same tree is walked: everything is taken.
    shutil.rmtree(tmp_path / ".git")
    code, out, err = run(capsys, "--check", ".", cwd=tmp_path)
    assert len(re.findall(r"would convert (\S+)", err)) == 4


def test_generated_files_are_skipped_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = "@gen" + "erated"
    tree(tmp_path, {"gen.py": f"# {marker}\n{SGD}"})
    code, out, err = run(capsys, "--check", ".", cwd=tmp_path)
    assert code == 0 and summary_numbers(err)["skipped (generated)"] == 1
    code, out, err = run(capsys, "--check", "--include-generated", ".", cwd=tmp_path)
    assert code == 1


# --------------------------------------------------------------------------- failures


def test_a_failing_file_is_reported_and_left_alone_while_others_convert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = "import torch\nopt = torch.optim.SGD(params, lr=0.1\n"
    undecodable = b"import torch\nopt = torch.optim.SGD(p)  # caf\xe9\n"
    before = tree(
        tmp_path,
        {"a_broken.py": broken, "b_bytes.py": undecodable, "c_train.py": TRAIN, "d.py": PLAIN},
    )
    code, out, err = run(capsys, "-i", ".", cwd=tmp_path)
    assert code == 3
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2
    assert errors[0].startswith("error: a_broken.py: syntax error at line")
    assert errors[1].startswith("error: b_bytes.py: cannot decode the file")
    after = snapshot(tmp_path)
    assert after["a_broken.py"] == before["a_broken.py"]
    assert after["b_bytes.py"] == before["b_bytes.py"]
    assert b"optax.adam" in after["c_train.py"]
    numbers = summary_numbers(err)
    assert numbers == {
        "files scanned": 4,
        "pre-filtered out": 1,
        "parsed": 3,
        "changed": 1,
        "failed": 2,
    }


# --------------------------------------------------------------------------- report, summary


def test_summary_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    escaped = "import torch\nopt = torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.5)\n"
    tree(tmp_path, {"pkg/b.py": TRAIN, "pkg/a.py": escaped, "pkg/c.py": PLAIN})
    code, out, err = run(
        capsys, "--check", "--report", "r.json", "--report", "r.md", "pkg", cwd=tmp_path
    )
    assert code == 1
    assert summary_numbers(err) == {
        "files scanned": 3,
        "pre-filtered out": 1,
        "parsed": 2,
        "would change": 2,
        "failed": 0,
    }
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    counts = report["summary"]
    total = counts["converted"] + counts["escaped"]
    assert counts["converted"] >= 2 and counts["escaped"] >= 1  # Adam, zero_grad; SGD
    assert counts["conversion_rate"] == round(counts["converted"] / total, 4)
    assert (
        f"conversion rate: {counts['converted'] / total * 100:.1f}% ({counts['converted']} of "
        f"{total} constructs converted, {counts['escaped']} escape hatches" in err
    )
    assert {r["kind"] for r in report["records"]} == {"converted", "escaped"}
    assert len(report["records"]) == total
    located = [(r["file"], r["line"], r["column"], r["kind"]) for r in report["records"]]
    assert located == sorted(located)
    assert located[0] == ("pkg/a.py", 2, 7, "escaped")
    sgd = next(r for r in report["records"] if r["api"] == "torch.optim.SGD")
    assert "dampen" in sgd["reason"] and "optax_torch.sgd" in sgd["suggestion"]
    assert sgd["snippet"].startswith("torch.optim.SGD(p, lr=0.1")
    apis = {a["api"]: (a["converted"], a["escaped"]) for a in report["apis"]}
    assert apis["torch.optim.SGD"] == (0, 1) and apis["torch.optim.Adam"] == (1, 0)
    markdown = (tmp_path / "r.md").read_text(encoding="utf-8")
    for heading in (
        "## Summary",
        "## Per API",
        "## Manual work: escape hatches by reason",
        "## Escape hatches by file",
        "### `pkg/a.py` (1)",
        "## Converted constructs by file",
    ):
        assert heading in markdown
    # A second run writes the same bytes.
    first = (tmp_path / "r.json").read_bytes(), markdown
    run(capsys, "--check", "--report", "r.json", "--report", "r.md", "pkg", cwd=tmp_path)
    assert ((tmp_path / "r.json").read_bytes(), (tmp_path / "r.md").read_text()) == first


# --------------------------------------------------------------------------- real processes


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ml_switcheroo", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_parallel_subprocess_run_matches_in_process_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = {f"m{i}.py": TRAIN.replace("0.01", f"0.0{i}") for i in range(1, 10)}
    layout["broken.py"] = "import torch\nopt = torch.optim.SGD(\n"
    before = tree(tmp_path, layout)
    result = cli("convert", "-j", "2", "--report", "p.json", ".", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: broken.py: syntax error")
    assert "Traceback" not in result.stderr
    code, out, _ = run(capsys, "--report", "s.json", ".", cwd=tmp_path)
    assert code == 3 and out == result.stdout
    assert (tmp_path / "p.json").read_text() == (tmp_path / "s.json").read_text()
    assert {k: v for k, v in snapshot(tmp_path).items() if k.endswith(".py")} == before


def test_console_help_lists_convert(tmp_path: Path) -> None:
    result = cli("--help", cwd=tmp_path)
    assert result.returncode == 0 and "convert" in result.stdout
    result = cli("convert", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for option in ("--in-place", "--check", "--semantic-map", "--exact", "--exclude", "--report"):
        assert option in result.stdout


def test_a_dead_worker_fails_the_files_it_left_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures.process import BrokenProcessPool

    def die(*args: object) -> None:
        raise BrokenProcessPool("killed")

    before = tree(tmp_path, {"a.py": TRAIN, "b.py": SGD, "c.py": PLAIN})
    monkeypatch.setattr(convert, "_parallel_run", die)
    code, out, err = run(capsys, "-i", ".", cwd=tmp_path)
    assert code == 3
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: {name}: not converted: a worker process died during the run (killed)"
        for name in ("a.py", "b.py")
    ]
    assert snapshot(tmp_path) == before


def test_worker_errors_survive_the_trip_back_and_the_map_is_pinned(tmp_path: Path) -> None:
    import pickle

    from libcst.codemod import CodemodContext

    from ml_switcheroo.app.convert_command import ConversionError, ConvertCommand, map_stamps

    stamps = map_stamps([])
    ConvertCommand(CodemodContext(), results_dir=str(tmp_path), stamps=stamps)
    stale = [[path, 1, 1] for path, _, _ in stamps]
    with pytest.raises(ConversionError, match="semantic-map file changed during the run"):
        ConvertCommand(CodemodContext(), results_dir=str(tmp_path), stamps=stale)
    missing = str(tmp_path / "gone.yaml")
    with pytest.raises(ConversionError, match="SemanticMapError: .*gone.yaml") as caught:
        ConvertCommand(CodemodContext(), results_dir=str(tmp_path), semantic_map=[missing])
    assert str(pickle.loads(pickle.dumps(caught.value))) == str(caught.value)


def test_a_user_map_extends_what_the_pre_filter_lets_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_prefilter import LION_MAP

    (tmp_path / "lion.yaml").write_text(LION_MAP, encoding="utf-8")
    tree(tmp_path, {"src/train.py": "from mylib.optim import Lion\nopt = Lion(params)\n"})
    code, out, err = run(capsys, "--check", "src", cwd=tmp_path)
    assert code == 0 and summary_numbers(err)["pre-filtered out"] == 1
    code, out, err = run(
        capsys, "--check", "--diff", "--semantic-map", "lion.yaml", "src", cwd=tmp_path
    )
    assert code == 1 and "+opt = optax.lion(" in out


def test_libcst_runner_gets_the_files_largest_first(tmp_path: Path) -> None:
    """While ``_parallel_run`` runs libcst's runner, its sort of exactly the files to convert
    puts the largest first (a far larger file is not started last); any other sort, and the
    sort after the run, are libcst's own."""
    import inspect

    from libcst.codemod import _cli, parallel_exec_transform_with_prettyprint

    # the runner orders its files by this module-level lookup of ``sorted``
    assert "sorted({os.path.abspath(f)" in inspect.getsource(
        parallel_exec_transform_with_prettyprint
    )
    small, large, medium = (tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py")
    for path, size in ((small, 1), (large, 300), (medium, 20)):
        path.write_text("x = 1\n" * size)
    kept = [str(small), str(large), str(medium)]
    with convert._largest_first(kept):
        files = {os.path.abspath(f) for f in kept}
        assert _cli.sorted(files) == [str(large), str(medium), str(small)]  # type: ignore[attr-defined]
        other = {str(small), str(large)}  # not the files of the run: sorted by path
        assert _cli.sorted(other) == [str(small), str(large)]  # type: ignore[attr-defined]
        assert _cli.sorted([3, 1, 2]) == [1, 2, 3]  # type: ignore[attr-defined]
    assert "sorted" not in _cli.__dict__
