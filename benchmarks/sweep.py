"""Real-corpus sweep: ml-switcheroo convert --in-place over thousands of real files, checked.

    python benchmarks/sweep.py                                 # transformers, --no-prefilter
    python benchmarks/sweep.py --corpus transformers --corpus torch -j 2
    python benchmarks/sweep.py --corpus transformers --prefilter --limit 500   # quick

The corpora are those of ``benchmarks/run.py`` (built on first use, never inside the repository:
``$ML_SWITCHEROO_BENCH_DIR`` or ``~/.cache/ml-switcheroo-bench``). For each corpus:

1. a scratch copy of the corpus (``<workdir>/sweep/<corpus>``, made afresh);
2. ``ml-switcheroo convert --in-place -j J --report FILE [--no-prefilter]`` over it, timed;
3. checks: no crash (the run exits 0 or 3, no traceback, no worker process died); every file
   that changed compiles (``compile()``, never run) when the original compiled under this
   Python; every file that failed is byte-identical to the original; no file appeared or
   disappeared (no temporary file left behind);
4. a second run over the converted copy must change nothing (idempotence): the whole tree as
   users run it (with the pre-filter, which is proven sound separately), and, when the first run
   analysed every file, the files it changed once more with ``--no-prefilter`` (every other file
   was analysed in full by the first run and left byte-identical, so only a changed file, or a
   file whose cross-file facts changed with it, can differ, and the latter passes the pre-filter).

Unless ``--live``, the commands run a copy of ``ml_switcheroo/`` frozen at the start (as in
``run.py``). By default every file is fully analysed (``--no-prefilter``): that exercises the
engine on all the code, not only on the few files that use torch.optim. Writes
``sweep-<stamp>.json`` and ``sweep-<stamp>.txt`` under ``benchmarks/results/`` (or ``--out``);
exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (  # noqa: E402
    RESULTS,
    SNAPSHOT_ENV,
    corpus_stats,
    default_workdir,
    ensure_corpus,
    snapshot_package,
)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (all of them, not only .py): relative name -> sha256."""
    return {
        p.relative_to(root).as_posix(): digest(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def compiles(data: bytes, name: str) -> str | None:
    """None when ``data`` compiles under this Python (never run), else the error in one line."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(data, name, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def convert(
    tree: Path,
    jobs: int,
    prefilter: bool,
    report: Path,
    log: Path,
    paths: list[str] | None = None,
) -> dict[str, object]:
    argv = [sys.executable, "-m", "ml_switcheroo", "convert", "--in-place", "-j", str(jobs)]
    argv += ["--report", str(report)]
    if not prefilter:
        argv.append("--no-prefilter")
    argv += paths or ["."]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **SNAPSHOT_ENV}
    start = time.perf_counter()
    with open(log, "wb") as out:
        code = subprocess.run(
            argv, cwd=tree, stdout=out, stderr=subprocess.STDOUT, env=env
        ).returncode
    seconds = time.perf_counter() - start
    shown = argv[1 : len(argv) - len(paths or ["."])] + [f"<{len(paths)} files>" if paths else "."]
    return {"argv": " ".join(shown), "exit": code, "seconds": round(seconds, 1)}


def sweep(name: str, workdir: Path, jobs: int, prefilter: bool, limit: int | None) -> dict:
    corpus = ensure_corpus(name, workdir)
    tree = workdir / "sweep" / name
    if tree.exists():
        shutil.rmtree(tree)
    files = sorted(p for p in corpus.rglob("*.py") if p.is_file())
    if limit:
        files = files[:limit]
    for path in files:
        target = tree / path.relative_to(corpus)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    before = snapshot(tree)
    original_compiles = {
        rel: compiles((tree / rel).read_bytes(), rel) is None
        for rel in before
        if rel.endswith(".py")
    }
    logs = workdir / "sweep" / f"{name}-logs"
    logs.mkdir(parents=True, exist_ok=True)

    first = convert(tree, jobs, prefilter, logs / "report-1.json", logs / "run-1.log")
    after = snapshot(tree)
    report = json.loads((logs / "report-1.json").read_text(encoding="utf-8"))
    log_text = (logs / "run-1.log").read_text(encoding="utf-8", errors="replace")
    changed = sorted(rel for rel in before if after.get(rel) != before[rel])
    failures = {f["file"]: f["reason"] for f in report["failures"]}

    compile_failures = {}
    for rel in changed:
        problem = compiles((tree / rel).read_bytes(), rel)
        if problem and original_compiles.get(rel):
            compile_failures[rel] = problem
    failed_but_changed = sorted(f for f in failures if f in changed)
    crashes = sorted(
        f"{name}: {reason}"
        for name, reason in failures.items()
        if "died" in reason or "Traceback" in reason
    )
    if first["exit"] not in (0, 3) or "Traceback" in log_text:
        crashes.append(f"run 1 exited {first['exit']} (see {logs / 'run-1.log'})")

    second = convert(tree, jobs, True, logs / "report-2.json", logs / "run-2.log")
    if second["exit"] not in (0, 3):
        crashes.append(f"run 2 exited {second['exit']} (see {logs / 'run-2.log'})")
    changed_py = [rel for rel in changed if rel.endswith(".py")]
    if not prefilter and changed_py:
        full = convert(tree, jobs, False, logs / "report-2b.json", logs / "run-2b.log", changed_py)
        if full["exit"] not in (0, 3):
            crashes.append(f"run 2b exited {full['exit']} (see {logs / 'run-2b.log'})")
        second = {**second, "changed_files_again": full}
    again = snapshot(tree)
    second_changes = sorted(rel for rel in after if again.get(rel) != after[rel])

    summary = report["summary"]
    escaped_files = sorted(f["file"] for f in report["files"] if f["escaped"])
    reasons = Counter(_reason_kind(r) for r in failures.values())
    result = {
        "corpus": corpus_stats(corpus)["source"],
        "files": len([rel for rel in before if rel.endswith(".py")]),
        "prefilter": prefilter,
        "jobs": jobs,
        "parsed": summary["parsed"],
        "prefiltered_out": summary["prefiltered_out"],
        "skipped_generated": summary["skipped_generated"],
        "changed": len(changed),
        "changed_files": changed,
        "converted_constructs": summary["converted"],
        "escaped_constructs": summary["escaped"],
        "escaped_files": len(escaped_files),
        "failed": len(failures),
        "failures": failures,
        "failure_kinds": dict(reasons),
        "originals_not_compiling": sum(not ok for ok in original_compiles.values()),
        "run_1": first,
        "run_2": second,
        "checks": {
            "crashes": crashes,
            "compile_failures": compile_failures,
            "failed_files_modified": failed_but_changed,
            "files_appeared_or_vanished": sorted(set(before) ^ set(after)),
            "second_run_changes": second_changes,
        },
    }
    result["ok"] = not any(result["checks"].values())
    return result


def _reason_kind(reason: str) -> str:
    for key in ("syntax error", "cannot decode", "nested too deeply", "died", "changed on disk"):
        if key in reason:
            return key
    return reason.split(":")[0]


def _changed_files_again(run: dict) -> str:
    again = run.get("changed_files_again")
    if not again:
        return ""
    return f", changed files again in full {again['seconds']} s (exit {again['exit']})"


def text_summary(results: dict[str, dict]) -> str:
    lines = []
    for name, r in results.items():
        checks = r["checks"]
        lines += [
            f"== {name}: {r['corpus']} ({'pre-filter' if r['prefilter'] else '--no-prefilter'}, "
            f"-j {r['jobs']})",
            f"files {r['files']}, parsed {r['parsed']}, changed {r['changed']}, escaped "
            f"{r['escaped_constructs']} constructs in {r['escaped_files']} files, converted "
            f"{r['converted_constructs']} constructs, failed {r['failed']} "
            f"{r['failure_kinds'] or ''}",
            f"wall time: run 1 {r['run_1']['seconds']} s (exit {r['run_1']['exit']}), "
            f"run 2 {r['run_2']['seconds']} s (exit {r['run_2']['exit']})"
            + _changed_files_again(r["run_2"]),
            f"crashes {len(checks['crashes'])}, compile failures "
            f"{len(checks['compile_failures'])}, failed files modified "
            f"{len(checks['failed_files_modified'])}, files appeared/vanished "
            f"{len(checks['files_appeared_or_vanished'])}, second-run changes "
            f"{len(checks['second_run_changes'])}: {'OK' if r['ok'] else 'FAILED'}",
        ]
        for file, reason in sorted(r["failures"].items()):
            lines.append(f"  failed: {file}: {reason}")
        for key, values in checks.items():
            for value in values:
                lines.append(f"  {key}: {value}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", action="append", choices=["transformers", "torch"])
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument(
        "--prefilter",
        action="store_true",
        help="let the map's byte pre-filter skip files (default: analyse every file)",
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N files")
    parser.add_argument("--workdir", type=Path, default=default_workdir())
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the summary goes")
    parser.add_argument(
        "--live",
        action="store_true",
        help="run the working tree as it is, not a copy of ml_switcheroo/ frozen at the start",
    )
    args = parser.parse_args()
    package = None if args.live else snapshot_package(args.workdir)
    results = {}
    for name in args.corpus or ["transformers"]:
        results[name] = sweep(name, args.workdir, args.jobs, args.prefilter, args.limit)
        results[name]["package_snapshot_sha256"] = package
        print(text_summary({name: results[name]}), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"sweep-{stamp}.json").write_text(
        json.dumps(results, indent=2) + "\n", encoding="utf-8"
    )
    (args.out / f"sweep-{stamp}.txt").write_text(text_summary(results) + "\n", encoding="utf-8")
    print(f"summary: {args.out / f'sweep-{stamp}.json'}")
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
