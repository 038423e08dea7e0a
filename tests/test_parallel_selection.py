"""The selection of ``convert`` shared out over the ``-j`` processes (issue 14):
``convert._select_in_parallel`` gives, file for file and in the same order, what ``_select``
gives in one process, whichever process takes which repository."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ml_switcheroo import convert
from ml_switcheroo.analysis.repository import index_for, repository_root, selecting
from ml_switcheroo.app import cache
from tests import test_cache
from tests.support import write_package
from tests.test_convert_cli import run

KEPT = "import torch\nopt = torch.optim.SGD(params, lr=0.1)\nopt.step()\n"
DROPPED = "import torch\nx = torch.zeros(3)\n"
UNRELATED = "def f(x):\n    return x + 1\n"
GENERATED = "# @gen" + "erated\nimport torch\nopt = torch.optim.SGD(params, lr=0.1)\n"


@pytest.fixture(autouse=True)
def _fresh_indexes() -> None:
    index_for.cache_clear()


@pytest.fixture(autouse=True)
def _no_other_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process running other threads selects in one process (``_selection_shares``); an
    earlier test of the same pytest worker may have left one running."""
    monkeypatch.setattr(threading, "active_count", lambda: 1)


def _corpus(root: Path) -> list[str]:
    """Three repositories (two packages and a folder of scripts) of every kind of file."""
    write_package(root / "a", {"train.py": KEPT, "ops.py": DROPPED, "util.py": UNRELATED})
    write_package(root / "b", {"gen.py": GENERATED, "loop.py": KEPT, "x.py": DROPPED}, "q")
    scripts = root / "scripts"
    scripts.mkdir()
    (scripts / "run.py").write_text(KEPT, encoding="utf-8")
    (scripts / "plot.py").write_text(UNRELATED, encoding="utf-8")
    (scripts / "gone.py").symlink_to(scripts / "missing.py")  # cannot be read
    return sorted(str(path) for path in root.rglob("*.py"))


def _selected(paths: list[str], shares: int) -> list[tuple[str, str, object]]:
    stages = convert._Stages({"prefilter": True})
    marker = convert.GENERATED_MARKER.encode("utf-8")
    with selecting():
        if shares == 1:
            return convert._select(paths, stages, marker, None, "check")
        return convert._select_in_parallel(paths, shares, stages, marker, "check", False)


def test_the_selection_in_parallel_is_the_selection_in_one_process(tmp_path: Path) -> None:
    paths = _corpus(tmp_path)
    alone = _selected(paths, 1)
    index_for.cache_clear()
    assert _selected(paths, 3) == alone
    outcomes = {os.path.basename(path): outcome for path, outcome, _ in alone}
    assert outcomes["train.py"] == outcomes["run.py"] == "c"  # kept: converted
    assert outcomes["ops.py"] == outcomes["util.py"] == "p"  # pre-filtered out
    assert outcomes["gen.py"] == "g" and outcomes["gone.py"] == convert._FAILED


def test_the_units_of_a_child_that_dies_are_selected_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _corpus(tmp_path / "corpus")
    alone = _selected(paths, 1)
    index_for.cache_clear()
    parent, died = os.getpid(), tmp_path / "died"
    real = convert._select

    def dying(*args: object, **options: object) -> object:
        if os.getpid() != parent:  # the child took a unit: it dies with it
            died.touch()
            os._exit(9)
        for _ in range(1000):  # this process waits until the child has taken one
            if died.exists():
                break
            time.sleep(0.01)
        return real(*args, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(convert, "_select", dying)
    assert _selected(paths, 2) == alone
    assert died.exists()


def test_a_repository_is_one_unit_unless_it_holds_more_than_a_share(tmp_path: Path) -> None:
    paths = _corpus(tmp_path)
    units = convert._selection_units(paths, 2)
    assert sorted(len(unit) for unit in units) == [3, 4, 4]
    assert all(len({os.path.dirname(path) for path in unit}) == 1 for unit in units)
    one = [path for path in paths if f"{os.sep}a{os.sep}" in path]
    assert sorted(sorted(unit) for unit in convert._selection_units(one, 2)) == [
        one[0::2],
        one[1::2],
    ]


def test_many_repositories_are_dealt_out_in_fewer_units(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(convert, "_MAX_SELECTION_UNITS", 2)
    paths = _corpus(tmp_path)
    units = convert._selection_units(paths, 2)
    assert len(units) == 2 and sorted(sum(units, [])) == paths


def test_a_run_with_the_selection_in_parallel_reports_what_one_process_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _corpus(tmp_path)
    shared: list[int] = []
    real = convert._select_in_parallel
    monkeypatch.setattr(convert, "_PARALLEL_SELECTION_FILES", 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # one share per job, at most one per core
    monkeypatch.setattr(convert, "_select_in_parallel", lambda *a: shared.append(a[1]) or real(*a))
    outputs = []
    for jobs in ("1", "2"):
        code, out, err = run(capsys, "-j", jobs, "--report", f"r{jobs}.json", ".", cwd=tmp_path)
        outputs.append((code, out, re.sub(r" in [0-9.]+ s", "", err)))
    assert shared == [2]
    assert outputs[0] == outputs[1] and outputs[0][1].count("+++ ") == 3  # three diffs
    assert (tmp_path / "r1.json").read_text() == (tmp_path / "r2.json").read_text()


@pytest.mark.parametrize(
    ("jobs", "count", "shares"),
    [(8, 500, 2), (None, 500, 2), (1, 500, 1), (2, 10, 1)],
)
def test_the_selection_takes_one_process_per_job_and_core(
    monkeypatch: pytest.MonkeyPatch, jobs: int | None, count: int, shares: int
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    args = argparse.Namespace(jobs=jobs)
    stages = convert._Stages({"prefilter": True})
    assert convert._selection_shares(args, stages, count) == shares


def _cache_contents(root: Path, corpus: Path) -> tuple[object, object]:
    """The index entries and the repository answers a ``--check --cache root`` run wrote."""
    found = cache.open_cache(str(root), [], _RUN_OPTIONS, False)
    assert found is not None
    roots = sorted({repository_root(str(path)) for path in corpus.rglob("*.py")})
    records = [found._read_repository(r) for r in roots]
    return found.index, [r.answers if r is not None else None for r in records]


_RUN_OPTIONS = {"semantic_map": [], "exact": False, "steps_per_epoch": None}


def test_a_first_cached_run_in_parallel_records_what_one_process_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a cache (the default of --check), the files it cannot answer by their stat are
    shared out too; what each process learns is recorded as one process records it."""
    corpus = tmp_path / "corpus"
    _corpus(corpus)
    monkeypatch.setattr(cache, "RACY_NS", -(10**18))  # every file old enough to be trusted
    monkeypatch.setattr(convert, "_PARALLEL_SELECTION_FILES", 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    shared: list[bool] = []
    real = convert._select_shared
    monkeypatch.setattr(convert, "_select_shared", lambda *a: shared.append(a[-1]) or real(*a))
    reports = []
    for jobs in ("1", "2"):
        index_for.cache_clear()
        code, out, _ = run(
            capsys,
            "--check",
            "-j",
            jobs,
            "--cache",
            f"c{jobs}",
            "--report",
            f"r{jobs}.json",
            "corpus",
            cwd=tmp_path,
        )
        reports.append((code, out, (tmp_path / f"r{jobs}.json").read_text()))
    assert shared == [True]  # the -j 2 run shared out the files, recording for the cache
    assert reports[0] == reports[1]
    assert _cache_contents(tmp_path / "c2", corpus) == _cache_contents(tmp_path / "c1", corpus)


def test_an_interrupt_during_the_selection_ends_the_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _corpus(tmp_path)
    parent, forked = os.getpid(), []
    real_fork, real_take = os.fork, convert._take_units

    def fork() -> int:
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    def take(*args: object, **options: object) -> object:
        if os.getpid() != parent:
            time.sleep(600)  # a child still selecting when the run is interrupted
            return real_take(*args, **options)  # type: ignore[arg-type]
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fork", fork)
    monkeypatch.setattr(convert, "_take_units", take)
    with pytest.raises(KeyboardInterrupt):
        _selected(paths, 2)
    assert len(forked) == 1
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(forked[0], 0)


def test_the_word_table_of_a_split_repository_is_built_before_the_fork(tmp_path: Path) -> None:
    paths = _corpus(tmp_path)
    one = [path for path in paths if f"{os.sep}a{os.sep}" in path]
    convert._share_split_word_tables(convert._selection_units(one, 2), 2)
    assert index_for(str(tmp_path / "a"))._words is not None
    assert index_for(str(tmp_path / "b"))._words is None  # not split: its own process builds it


def test_a_second_run_after_a_first_run_in_parallel_opens_no_source(tmp_path: Path) -> None:
    """What the processes of a first cached run learned is in the cache: the second run (in
    parallel too) reads no source."""
    script = test_cache.SECOND_RUN_OPENS.replace('"-j", "1"', '"-j", "2"').replace(
        "cache.RACY_NS = -(10**18)",
        "cache.RACY_NS = -(10**18)\nconvert._PARALLEL_SELECTION_FILES = 1\n"
        "import os\nos.cpu_count = lambda: 2",
    )
    layout = {**test_cache.LAYOUT, "engine.py": "def train(opt, loss):\n    opt.step()\n"}
    test_cache.tree(tmp_path / "src", layout)
    result = subprocess.run(
        [sys.executable, "-c", script, ""],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(test_cache.REPO)},
        timeout=300,
    )
    code, opened = json.loads(result.stdout.splitlines()[-1])
    assert (code, opened) == (3, [])  # broken.py: exit 3
