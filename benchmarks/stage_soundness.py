"""Soundness of the two pre-filter stages on whole corpora: the same patch with them on and off.

    python benchmarks/stage_soundness.py /tmp/layers-corpus/transformers /tmp/layers-torch/torch

For every corpus directory: the number of ``.py`` files, those the byte filter keeps
(``analysis/prefilter.py``), those the ``ast`` stage then keeps (``analysis/second_stage.py``),
both counted in this process with the time each stage took; then ``ml-switcheroo convert
--no-cache -j J`` (a diff of every change on stdout) with the stages and with
``--no-prefilter`` (every file parsed and analysed): the changed files and the diff bytes must
be identical. With ``--byte-kept-only`` the two ``convert`` runs cover only the files the byte
filter keeps (copied, with their relative paths, to a scratch corpus): the stage's soundness
on its own, where the byte filter's is known (``run.py --soundness``). Writes
``benchmarks/results/stage-soundness-<time>.json``; exits 1 on a mismatch. Runs the package
of this checkout (``PYTHONPATH``); nothing is written into the corpora.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"


def stage_counts(root: Path) -> dict[str, object]:
    """Files, kept by the byte filter, kept by the ``ast`` stage, and the seconds of each."""
    sys.path.insert(0, str(REPO))
    from ml_switcheroo.analysis.prefilter import prefilter_for
    from ml_switcheroo.analysis.second_stage import second_stage_for
    from ml_switcheroo.codemods.optimizer import TorchToOptax
    from ml_switcheroo.targets.catalogue import load_semantic_map

    semantic_map = load_semantic_map()
    prefilter = prefilter_for(semantic_map, TorchToOptax.HOOKS)
    stage = second_stage_for(semantic_map, TorchToOptax.HOOKS)
    paths = sorted(p for p in root.rglob("*.py") if p.is_file() and "__pycache__" not in p.parts)
    started = time.perf_counter()
    by_bytes = [(p, data) for p in paths if prefilter.matches(data := p.read_bytes())]
    bytes_seconds = time.perf_counter() - started
    started = time.perf_counter()
    by_stage = [p for p, data in by_bytes if stage.keeps(data, str(p))]
    stage_seconds = time.perf_counter() - started
    return {
        "files": len(paths),
        "kept_by_bytes": len(by_bytes),
        "kept_by_stage": len(by_stage),
        "seconds_read_and_bytes": round(bytes_seconds, 2),
        "seconds_stage": round(stage_seconds, 2),
    }


def convert_diff(
    root: Path, jobs: int, *extra: str
) -> tuple[bytes, set[str], float, list[dict[str, object]]]:
    """The diff ``convert`` prints over ``root``, the files it changes, its seconds and its
    report's records (run from ``root``'s parent, so that both runs name the files alike)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    with tempfile.TemporaryDirectory(prefix="stage-soundness-") as scratch:
        report = Path(scratch) / "report.json"
        argv = [sys.executable, "-m", "ml_switcheroo", "convert", "--no-cache", "-q"]
        argv += ["-j", str(jobs), "--report", str(report), *extra, root.name]
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, env=env, cwd=root.parent, check=False)
        seconds = time.perf_counter() - started
        if done.returncode not in (0, 3) or not report.exists():
            sys.exit(f"convert failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
        data = json.loads(report.read_text(encoding="utf-8"))
    changed = {f["file"] for f in data["files"] if f["changed"]}
    return done.stdout, changed, seconds, data["records"]


def byte_kept_copy(root: Path, target: Path) -> Path:
    """The files of ``root`` the byte filter keeps, copied under ``target/<root's name>``."""
    import shutil

    sys.path.insert(0, str(REPO))
    from ml_switcheroo.analysis.prefilter import prefilter_for
    from ml_switcheroo.codemods.optimizer import TorchToOptax
    from ml_switcheroo.targets.catalogue import load_semantic_map

    prefilter = prefilter_for(load_semantic_map(), TorchToOptax.HOOKS)
    copy = target / root.name
    for path in sorted(root.rglob("*.py")):
        if path.is_file() and prefilter.matches(path.read_bytes()):
            destination = copy / path.relative_to(root)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
    return copy


def check(
    root: Path, jobs: int, byte_kept_only: bool = False, target: str | None = None
) -> dict[str, object]:
    result = stage_counts(root)
    if byte_kept_only:
        root = byte_kept_copy(root, Path(tempfile.mkdtemp(prefix="stage-soundness-corpus-")))
        result["convert_runs_over"] = "the files the byte filter keeps"
    chosen = ("--target", target) if target is not None else ()
    with_stages, changed, seconds, records = convert_diff(root, jobs, *chosen)
    without, changed_without, seconds_without, records_without = convert_diff(
        root, jobs, *chosen, "--no-prefilter"
    )
    result.update(
        {
            "changed": len(changed),
            "changed_without_prefilter": len(changed_without),
            "patch_bytes": len(with_stages),
            "patch_sha256": hashlib.sha256(with_stages).hexdigest(),
            "patch_bytes_identical": with_stages == without,
            "changed_files_identical": changed == changed_without,
            "records": len(records),
            "records_identical": records == records_without,
            "missed_by_the_stages": sorted(changed_without - changed),
            "seconds_convert": round(seconds, 1),
            "seconds_convert_no_prefilter": round(seconds_without, 1),
        }
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="+", type=Path, metavar="DIR")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument(
        "--byte-kept-only",
        action="store_true",
        help="run convert (with and without the stages) on the byte filter's files only",
    )
    parser.add_argument("--target", help="convert's --target (default: convert's)")
    args = parser.parse_args()
    results = {
        str(root): check(root, args.jobs, args.byte_kept_only, args.target) for root in args.corpora
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"stage-soundness-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    sound = all(
        r["patch_bytes_identical"] and r["changed_files_identical"] and r["records_identical"]
        for r in results.values()
    )
    return 0 if sound else 1


if __name__ == "__main__":
    sys.exit(main())
