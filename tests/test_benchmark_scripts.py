"""``benchmarks/run.py``, ``rusage_run.py`` and ``table.py`` on small corpora: the counts, the
peak memory per process and the tables. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import run, table

REPO = Path(__file__).resolve().parent.parent

TRAIN = """\
import torch


def fit(model, data):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for x, y in data:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
"""
# Spells a map API (the byte filter keeps it) but only in a string (the `ast` stage drops it).
MENTIONS = '''\
"""torch.optim.Adam is built elsewhere."""

NAME = "torch.optim.Adam"
'''
PLAIN = "def add(a, b):\n    return a + b\n"


@pytest.fixture(autouse=True)
def _measure_this_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "SNAPSHOT_ENV", {"PYTHONPATH": str(REPO)})


def write_corpus(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """One file that changes, one the `ast` stage drops, two without candidates."""
    files = {"train.py": TRAIN, "notes/mentions.py": MENTIONS, "a.py": PLAIN, "b.py": PLAIN}
    return write_corpus(tmp_path / "corpus", files)


def direct_report(root: Path, tmp_path: Path) -> dict[str, Any]:
    """The report of ``ml-switcheroo convert --check --no-cache --report``, run directly."""
    report = tmp_path / "direct.json"
    subprocess.run(
        [sys.executable, "-m", "ml_switcheroo", "convert", "--check", "--no-cache", "-q"]
        + ["--report", str(report), str(root)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        check=False,
    )
    return json.loads(report.read_text(encoding="utf-8"))


def measured_counts(name: str, root: Path, out: Path) -> dict[str, object]:
    """The counts ``run.py`` gives for ``root``: (c) measured, its report, the byte filter."""
    run.bench_corpus(name, root, 2, 1, out, ("c",))
    report = json.loads((out / f"{name}-report.json").read_text(encoding="utf-8"))
    return run.selection_counts(report, run.byte_filter_count(root))


# --------------------------------------------------------------------------- counts


def test_counts_equal_those_of_convert_report_run_directly(corpus: Path, tmp_path: Path) -> None:
    counts = measured_counts("demo", corpus, tmp_path / "out")
    summary = direct_report(corpus, tmp_path)["summary"]
    assert (counts["files"], counts["parsed_by_libcst"], counts["changed"]) == (
        summary["files_scanned"],
        summary["parsed"],
        summary["changed"],
    )
    assert counts["prefiltered_out"] == summary["prefiltered_out"]


def test_byte_filter_count_keeps_every_file_spelling_a_map_api(corpus: Path) -> None:
    assert run.byte_filter_count(corpus)["kept_by_bytes"] == 2  # train.py, notes/mentions.py


def test_byte_filter_count_leaves_out_generated_files(tmp_path: Path) -> None:
    generated = f"# {'@gen'}erated\n{TRAIN}"
    root = write_corpus(tmp_path / "corpus", {"train.py": TRAIN, "gen.py": generated})
    assert run.byte_filter_count(root)["kept_by_bytes"] == 1


def test_stage_keep_rate_is_parsed_files_over_byte_kept_files() -> None:
    report = {
        "summary": {
            "files_scanned": 10,
            "parsed": 1,
            "changed": 1,
            "prefiltered_out": 9,
            "skipped_generated": 0,
            "failed": 0,
        }
    }
    counts = run.selection_counts(report, {"kept_by_bytes": 4, "byte_filter_cpu_seconds": 0.1})
    assert (counts["byte_keep_rate"], counts["stage_keep_rate"]) == (0.4, 0.25)


def test_a_corpus_without_candidates_counts_no_kept_file_and_no_keep_rate(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "corpus", {"a.py": PLAIN, "b.py": PLAIN})
    counts = measured_counts("empty", root, tmp_path / "out")
    assert (counts["files"], counts["kept_by_bytes"], counts["parsed_by_libcst"]) == (2, 0, 0)
    assert counts["stage_keep_rate"] is None


# --------------------------------------------------------------------------- peak memory

FORKER = """\
from concurrent.futures import ProcessPoolExecutor
import multiprocessing


def hold(megabytes):
    data = b"x" * (megabytes << 20)  # written: resident
    return len(data)


if __name__ == "__main__":
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        print(list(pool.map(hold, [120, 120])))
"""


def test_each_forked_worker_reports_its_own_peak(tmp_path: Path) -> None:
    (tmp_path / "forker.py").write_text(FORKER, encoding="utf-8")
    measured = run.measure(["forker"], tmp_path, tmp_path / "forker.log")
    assert measured["exit"] == 0
    assert measured["workers"] == 2
    assert float(measured["worker_peak_mb"]) >= 120  # type: ignore[arg-type]
    assert float(measured["main_peak_mb"]) < 100  # type: ignore[arg-type]


def test_main_peak_leaves_out_the_process_that_started_it(tmp_path: Path) -> None:
    held = b"x" * (300 << 20)  # this process, forked to start the command, is this large
    (tmp_path / "small.py").write_text("print('ok')\n", encoding="utf-8")
    measured = run.measure(["small"], tmp_path, tmp_path / "small.log")
    assert len(held) and float(measured["main_peak_mb"]) < 100  # type: ignore[arg-type]


def test_a_command_without_workers_reports_no_worker_peak(tmp_path: Path) -> None:
    (tmp_path / "small.py").write_text("print('ok')\n", encoding="utf-8")
    measured = run.measure(["small"], tmp_path, tmp_path / "small.log")
    assert (measured["workers"], measured["worker_peak_mb"]) == (0, None)


def test_the_command_exit_code_is_kept(tmp_path: Path) -> None:
    (tmp_path / "fails.py").write_text("raise SystemExit(3)\n", encoding="utf-8")
    assert run.measure(["fails"], tmp_path, tmp_path / "fails.log")["exit"] == 3


def test_a_command_ending_by_os_exit_keeps_its_exit_code_and_workers(tmp_path: Path) -> None:
    # `ml-switcheroo` ends by os._exit (ml_switcheroo.app.exit): the record is written first
    ends = FORKER.replace("print(list(", "import os\n        print(list(") + "    os._exit(5)\n"
    (tmp_path / "ends.py").write_text(ends, encoding="utf-8")
    measured = run.measure(["ends"], tmp_path, tmp_path / "ends.log")
    assert (measured["exit"], measured["workers"]) == (5, 2)


# --------------------------------------------------------------------------- options


def test_skip_with_a_corpus_name_skips_on_that_corpus_only() -> None:
    skips = ["checkout-large:b", "c1"]
    assert run.skipped_runs("checkout-large", skips) == {"b", "c1"}
    assert run.skipped_runs("torch", skips) == {"c1"}


def test_skip_takes_the_old_run_names() -> None:
    assert run.skipped_runs("torch", ["b_libcst_torch_to_optax"]) == {"b"}


def test_skip_refuses_the_floor() -> None:
    with pytest.raises(SystemExit):
        run.parse_arguments(["--skip", "a"])


def test_corpus_dir_needs_an_existing_directory(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        run.parse_arguments(["--corpus-dir", f"x={tmp_path / 'missing'}"])


def test_built_corpora_are_each_their_own_repository(tmp_path: Path) -> None:
    from ml_switcheroo.analysis.repository import repository_root

    for name in ("torch", "checkout"):
        root = run.corpus_path(tmp_path, name)
        (root / "sub").mkdir(parents=True)
        (root / "__init__.py").write_text("")
        (root / "sub" / "__init__.py").write_text("")
        (root / "sub" / "m.py").write_text("")
        (root / ".complete").write_text("")
    torch_root = repository_root(str(run.corpus_path(tmp_path, "torch") / "sub" / "m.py"))
    assert not run.corpus_path(tmp_path, "checkout").is_relative_to(torch_root)
    assert run.ensure_corpus("torch", tmp_path) == run.corpus_path(tmp_path, "torch")
    assert run.built_corpora(tmp_path) == [
        run.corpus_path(tmp_path, "checkout"),
        run.corpus_path(tmp_path, "torch"),
    ]


def test_corpus_dir_of_a_package_beside_other_folders_is_refused(tmp_path: Path) -> None:
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("")
    (tmp_path / "checkout").mkdir()
    with pytest.raises(SystemExit):
        run.parse_arguments(["--corpus-dir", f"torch={tmp_path / 'torch'}"])


def test_corpus_dir_of_a_package_alone_in_its_folder_is_taken(tmp_path: Path) -> None:
    (tmp_path / "torch" / "torch").mkdir(parents=True)
    (tmp_path / "torch" / "torch" / "__init__.py").write_text("")
    args = run.parse_arguments(["--corpus-dir", f"torch={tmp_path / 'torch' / 'torch'}"])
    assert args.corpus_dir == [("torch", (tmp_path / "torch" / "torch").resolve())]


def test_files_per_core_of_libcst_runs_count_the_files_libcst_reads() -> None:
    runs = {
        "a": {"wall_seconds": 10.0, "cpu_seconds": 20.0},
        "c": {"wall_seconds": 1.0, "cpu_seconds": 2.0},
    }
    rated = run.with_ratios(runs, files=100, libcst_files=120)
    assert (rated["a"]["files_per_core_second"], rated["c"]["files_per_core_second"]) == (6.0, 50.0)


def test_two_corpora_of_one_name_are_refused_before_any_run(tmp_path: Path) -> None:
    pair = f"x={tmp_path}"
    argv = ["--live", "--corpus-dir", pair, "--corpus-dir", pair, "--results", str(tmp_path)]
    with pytest.raises(SystemExit):
        run.main(argv)
    assert not list(tmp_path.glob("*/results.json"))


# --------------------------------------------------------------------------- tables


def a_run(wall: float, cpu: float, **extra: object) -> dict[str, object]:
    return {
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "exit": 0,
        "main_peak_mb": 44.2,
        "worker_peak_mb": 123.4,
        "workers": 2,
        "load_before": 0.5,
        **extra,
    }


def results_with(runs: dict[str, dict[str, object]]) -> dict[str, Any]:
    counts = {
        "files": 2285,
        "kept_by_bytes": 249,
        "parsed_by_libcst": 73,
        "changed": 14,
        "failed": 0,
        "byte_keep_rate": 0.109,
        "stage_keep_rate": 0.2932,
        "byte_filter_cpu_seconds": 1.04,
    }
    corpus = {
        "corpus": "torch",
        "root": "/tmp/q/corpus/torch",
        "files_on_disk": 2285,
        "mb": 46.5,
        "counts": counts,
        "runs": run.with_ratios(runs, 2285),
    }
    return {
        "started": "2026-12-01T12:00:00+0000",
        "command": ["benchmarks/run.py", "--corpus-dir", "torch=/tmp/q/corpus/torch"],
        "versions": {"ml_switcheroo_commit": "abc1234", "libcst": "1.9.0"},
        "machine": {"python": "3.11.7", "cpus": 2},
        "jobs": 2,
        "repeat": 1,
        "corpora": [corpus],
    }


def test_readme_row_gives_times_ratios_counts_and_files_per_core() -> None:
    results = results_with(
        {
            "a": a_run(100.0, 190.0),
            "b": a_run(95.0, 180.0),
            "c": a_run(65.0, 91.4),
            "c1": a_run(80.0, 110.0),
            "c2": a_run(1.5, 0.5),
        }
    )
    row = table.readme_table(results).splitlines()[-1]
    assert row == (
        "| torch (46.5 MB) | 2,285 | 100.0 s / 190.0 CPU-s | 95.0 s / 180.0 CPU-s "
        "| 65.0 s / 91.4 CPU-s | 80.0 s / 110.0 CPU-s | 1.50 s / 0.50 CPU-s | 0.95 (0.95) "
        "| 0.65 (0.48) | 0.80 (0.58) | 0.015 (0.003) | 73 of 249 (29.3%) | 73 | 14 | 25.0 |"
    )


def test_readme_row_shows_a_skipped_run_as_a_dash() -> None:
    results = results_with({"a": a_run(100.0, 190.0), "c": a_run(65.0, 91.4)})
    cells = table.readme_table(results).splitlines()[-1].split(" | ")
    assert (cells[3], cells[7]) == ("-", "-")  # (b) and (b)/(a)


def test_readme_row_of_a_corpus_without_candidates_has_no_keep_rate() -> None:
    results = results_with({"a": a_run(10.0, 19.0), "c": a_run(1.0, 0.9)})
    counts = results["corpora"][0]["counts"]
    counts.update(kept_by_bytes=0, parsed_by_libcst=0, changed=0, stage_keep_rate=None)
    assert "| 0 of 0 (-) | 0 | 0 |" in table.readme_table(results)


def test_detail_gives_peak_memory_per_process_and_worker_count() -> None:
    results = results_with({"a": a_run(100.0, 190.0), "c": a_run(65.0, 91.4)})
    lines = table.detail(results).splitlines()
    c_row = next(line for line in lines if line.startswith("| (c) convert --check |"))
    assert "| 44 MB | 123 MB (2) |" in c_row


def test_detail_names_a_run_not_measured() -> None:
    results = results_with({"a": a_run(100.0, 190.0), "c": a_run(65.0, 91.4)})
    assert "| (b) libcst TorchToOptax | not run |" in table.detail(results)


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_one_run_writes_every_measurement_and_the_table_reads_it(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--live", "--corpus-dir", f"demo={corpus}", "--small-repeat", "1"]
    assert run.main([*argv, "--results", str(tmp_path), "--workdir", str(tmp_path / "w")]) == 0
    (written,) = tmp_path.glob("*/results.json")
    entry = json.loads(written.read_text(encoding="utf-8"))["corpora"][0]
    exits = {key: value["exit"] for key, value in entry["runs"].items()}
    assert exits == {"a": 0, "b": 0, "c": 1, "c1": 1, "c2": 1}  # 1: --check found a change
    capsys.readouterr()
    assert table.main([str(written), "--readme"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("| demo (0.0 MB) | 4 |")
