"""``convert --shard K/N`` and ``ml-switcheroo report merge``: N runs, one report."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ml_switcheroo import cli
from ml_switcheroo.app import files
from tests.test_convert_cli import PLAIN, SGD, TRAIN, run, tree

GENERATED = "# @gen" + "erated\nimport torch\nopt = torch.optim.SGD(params, lr=0.1)\n"
ESCAPED = "import torch\nopt = torch.optim.LBFGS(params)\n"
LAYOUT = {
    **{f"pkg/m{i}.py": TRAIN.replace("0.01", f"0.0{i}") for i in range(1, 8)},
    "pkg/sgd.py": SGD,
    "pkg/lbfgs.py": ESCAPED,
    "plain.py": PLAIN,
    "gen.py": GENERATED,
    "broken.py": "import torch\nopt = torch.optim.SGD(\n",
    "deep/er/x.py": SGD.replace("0.1", "0.5"),
}


def reported_files(report: Path) -> set[str]:
    return {f["file"] for f in json.loads(report.read_text(encoding="utf-8"))["files"]}


def merge(cwd: Path, *args: str) -> int:
    old = Path.cwd()
    try:
        os.chdir(cwd)
        return cli.main(["report", "merge", *args])
    finally:
        os.chdir(old)


@pytest.mark.parametrize("bad", ["0/3", "4/3", "1/0", "a/b", "3", "1/3/5", "-1/3"])
def test_a_bad_shard_is_a_usage_error_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    tree(tmp_path, {"a.py": TRAIN})
    with pytest.raises(SystemExit) as stopped:
        run(capsys, "--shard", bad, ".", cwd=tmp_path)
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and len(err.splitlines()) == 1 and "--shard" in err


def test_shards_cover_every_file_exactly_once() -> None:
    names = [f"/repo/src/module_{i}.py" for i in range(300)]
    shards = [{n for n in names if files.in_shard(n, k, 4)} for k in range(1, 5)]
    assert sorted(n for shard in shards for n in shard) == sorted(names)
    assert all(len(shard) > 40 for shard in shards)  # a hash, not a range


def test_a_shard_keeps_its_files_when_files_are_added_elsewhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = {f"m{i}.py": SGD.replace("0.1", f"0.{i}") for i in range(1, 10)}
    tree(tmp_path, layout)
    run(capsys, "--check", "--no-cache", "--shard", "2/3", "--report", "r1.json", ".", cwd=tmp_path)
    tree(tmp_path, {f"new{i}.py": SGD for i in range(10)})
    run(capsys, "--check", "--no-cache", "--shard", "2/3", "--report", "r2.json", ".", cwd=tmp_path)
    before, after = reported_files(tmp_path / "r1.json"), reported_files(tmp_path / "r2.json")
    assert before and before == {name for name in after if not name.startswith("new")}


def test_merged_shard_reports_are_byte_identical_to_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree(tmp_path / "src", LAYOUT)
    run(
        capsys,
        "--check",
        "--no-cache",
        "--report",
        "all.json",
        "--report",
        "all.md",
        "src",
        cwd=tmp_path,
    )
    for k in (1, 2, 3):
        shard = ("--shard", f"{k}/3", "--report", f"s{k}.json")
        run(capsys, "--check", "--no-cache", *shard, "src", cwd=tmp_path)
        assert reported_files(tmp_path / f"s{k}.json")  # every shard holds some of the work
    code = merge(tmp_path, "s1.json", "s2.json", "s3.json", "--out", "m.json", "--out", "m.md")
    assert code == 0
    assert (tmp_path / "m.json").read_bytes() == (tmp_path / "all.json").read_bytes()
    assert (tmp_path / "m.md").read_bytes() == (tmp_path / "all.md").read_bytes()


def test_merging_in_any_order_gives_the_same_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree(tmp_path / "src", LAYOUT)
    for k in (1, 2):
        run(capsys, "--check", "--shard", f"{k}/2", "--report", f"s{k}.json", "src", cwd=tmp_path)
    assert merge(tmp_path, "s1.json", "s2.json", "--out", "a.json") == 0
    assert merge(tmp_path, "s2.json", "s1.json", "--out", "b.json") == 0
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_a_report_given_twice_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree(tmp_path / "src", LAYOUT)
    run(capsys, "--check", "--report", "s.json", "src", cwd=tmp_path)
    capsys.readouterr()
    assert merge(tmp_path, "s.json", "s.json", "--out", "m.json") == 2
    assert "in two of the reports" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()


def test_reports_of_runs_with_other_options_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree(tmp_path / "src", LAYOUT)
    run(capsys, "--check", "--shard", "1/2", "--report", "s1.json", "src", cwd=tmp_path)
    run(capsys, "--check", "--exact", "--shard", "2/2", "--report", "s2.json", "src", cwd=tmp_path)
    capsys.readouterr()
    assert merge(tmp_path, "s1.json", "s2.json", "--out", "m.json") == 2
    assert "differ in options" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [("not json", "s.json: "), ('{"format": 1}', "not an ml-switcheroo report")],
)
def test_an_input_that_is_not_a_report_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    (tmp_path / "s.json").write_text(content, encoding="utf-8")
    assert merge(tmp_path, "s.json", "--out", "m.json") == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err


def test_an_output_name_without_json_or_md_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree(tmp_path / "src", {"a.py": TRAIN})
    run(capsys, "--check", "--report", "s.json", "src", cwd=tmp_path)
    assert merge(tmp_path, "s.json", "--out", "m.txt") == 2
