"""Monorepo benchmark: ml_switcheroo against libcst's own floor, on real public code.

    python benchmarks/run.py                       # transformers corpus, -j 2
    python benchmarks/run.py --corpus torch --corpus transformers --repeat 3

Creates the corpus when it is missing (never inside the repository; default
``$ML_SWITCHEROO_BENCH_DIR`` or ``~/.cache/ml-switcheroo-bench``):

* ``transformers``: ``pip install --no-deps transformers==<pinned>`` into a scratch venv, then
  its ``.py`` files copied to ``corpora/transformers/transformers`` (each corpus alone in a
  folder of its own: ``corpus_path``);
* ``torch``: the ``.py`` files of the torch installed in the running interpreter (found
  without importing it), copied to ``corpora/torch/torch``;
* ``checkout``: a checkout-like corpus (tests, examples, scripts next to the package): the
  source distributions of ``CHECKOUT_SDISTS`` (pinned), fetched with ``pip download --no-deps
  --no-binary :all:`` and unpacked, their ``.py`` files copied to
  ``corpora/checkout/checkout/<name>``.

``--corpus-dir NAME=DIR`` measures an existing directory as corpus NAME instead (nothing is
copied; e.g. ``--corpus-dir torch=/tmp/layers-torch/torch``); a DIR that is a package must be
alone in its parent folder.

Measured per corpus, each run a separate process tree, its wall time and the CPU time of the
whole tree (the command and every process it waited for: libcst's forked workers):

(a) ``python -m libcst.tool codemod noop.NOOPCommand -j J --no-format --hide-progress
    --unified-diff 1 CORPUS``: libcst's floor, parse + code generation of every file;
(b) ``python -m libcst.tool codemod optimizer.TorchToOptax`` with the same options (both write
    nothing: ``--unified-diff`` prints diffs to stdout, sent to a file);
(c) ``ml-switcheroo convert --check -j J --no-cache --report R.json CORPUS``;
(c1) ``convert --check -j J --cache DIR`` on an empty DIR (a first run, filling the cache);
(c2) the same right after (c1), with the DIR it filled, over the unchanged corpus;

``--repeat N`` runs them N times interleaved (a, b, c, c1, c2, a, ...) and keeps the median of
each. ``--skip [CORPUS:]RUN`` leaves out (b), (c1), (c2) or the optimizer files, on every
corpus or on CORPUS only.

Counts: (c)'s report gives the files scanned, parsed by libcst (kept by both pre-filter stages)
and changed; the byte filter's count (what the ``ast`` stage is handed) is taken in this
process with convert's own discovery and filter (cheap: no ``ast``, no repository index).
Keep rates: ``kept_by_bytes / files`` and ``parsed_by_libcst / kept_by_bytes`` (the stage).

Then (a) and (b) again on a copy of only the files that (c) finds would change ("optimizer
files", ``--small-repeat`` runs): the cost where there is work to do. With ``--soundness``,
``convert --check --no-prefilter`` over the whole corpus must find the same files to change.

Unless ``--live``, the commands run a copy of ``ml_switcheroo/`` frozen at the start (on
``PYTHONPATH``), so that edits made during the run do not change what is measured.

Peak memory per process: every command runs under ``rusage_run.py``, which records at its end
the peak resident set size of the main process (``RUSAGE_SELF``) and of its largest child
(``RUSAGE_CHILDREN``: a forked worker; None without one). Results go to
``benchmarks/results/<time>/results.json`` (git-ignored; rewritten after every corpus) and
stdout; ``benchmarks/table.py results.json`` prints the tables of README and
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from contextlib import suppress
from importlib.util import find_spec
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
TRANSFORMERS_VERSION = "5.23.0"
# Source distributions that ship tests, examples or training scripts next to the package: a
# checkout-like corpus. Pinned: the corpus is the same on every machine.
CHECKOUT_SDISTS = ("pytorch-ignite==0.5.5", "timm==1.0.31", "accelerate==1.15.0", "skorch==1.4.0")
# A larger checkout-like corpus (over 3,000 files) in which optimizer code is as rare as in a
# large library's checkout: the above plus libraries whose sdists ship their test suites
# (pure-Python builds: ``pip download`` prepares no compiled build to read their metadata).
CHECKOUT_LARGE_SDISTS = (
    *CHECKOUT_SDISTS,
    "sympy==1.14.0",
    "networkx==3.6.1",
    "kornia==0.9.0",
    "pytorch-lightning==2.6.6",
)
LIBCST_CONFIG = """\
generated_code_marker: '@gen{}erated'
formatter: [cat]
blacklist_patterns: []
modules:
- libcst.codemod.commands
- ml_switcheroo.codemods
repo_root: .
""".format("")


def default_workdir() -> Path:
    env = os.environ.get("ML_SWITCHEROO_BENCH_DIR")
    return Path(env) if env else Path.home() / ".cache" / "ml-switcheroo-bench"


# --------------------------------------------------------------------------- corpus


def corpus_path(workdir: Path, name: str) -> Path:
    """Where corpus ``name`` is built: alone in a folder of its own (``corpora/NAME/NAME``). A
    corpus with an ``__init__.py`` at its top (torch) makes its parent the root of a repository
    (``analysis/repository.repository_root``): corpora sharing that parent would be indexed
    together."""
    return workdir / "corpora" / name / name


def built_corpora(workdir: Path) -> list[Path]:
    """The corpora built under ``workdir``."""
    return sorted(p for p in (workdir / "corpora").glob("*/*") if (p / ".complete").exists())


def shared_parent(root: Path) -> str | None:
    """Why ``root`` cannot be measured as it is: a package (``__init__.py`` at its top) whose
    parent folder holds other entries, which the repository index would take in too."""
    if not (root / "__init__.py").is_file():
        return None
    others = sorted(p.name for p in root.parent.iterdir() if p != root)
    if not others:
        return None
    return (
        f"{root} is a package, so its parent folder is the root of the repository converted,"
        f" and that folder also holds {', '.join(others[:3])}: move {root.name} alone into a"
        " folder of its own"
    )


def ensure_corpus(name: str, workdir: Path) -> Path:
    target = corpus_path(workdir, name)
    if (target / ".complete").exists():
        return target
    if target.exists():
        shutil.rmtree(target)
    if name == "transformers":
        source = _transformers_sources(workdir)
    elif name == "checkout":
        source = _checkout_sources(workdir)
    elif name == "checkout-large":
        source = _checkout_sources(workdir, CHECKOUT_LARGE_SDISTS, "sdists-large")
    elif name == "torch":
        spec = find_spec("torch")  # the package's location, without importing it
        if spec is None or not spec.submodule_search_locations:
            sys.exit("torch is not installed in this interpreter")
        source = Path(list(spec.submodule_search_locations)[0])
    else:
        sys.exit(f"unknown corpus {name!r}")
    _copy_python_files(source, target)
    (target / ".complete").write_text(_describe_source(name, source), encoding="utf-8")
    return target


def _transformers_sources(workdir: Path) -> Path:
    venv = workdir / "corpus-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run(
        [str(python), "-m", "pip", "show", "transformers"], capture_output=True, text=True
    )
    if f"Version: {TRANSFORMERS_VERSION}" not in installed.stdout:
        subprocess.run(
            [
                str(python),
                *("-m", "pip", "install", "--quiet", "--no-deps"),
                f"transformers=={TRANSFORMERS_VERSION}",
            ],
            check=True,
        )
    found = list(venv.glob("lib/python*/site-packages/transformers"))
    if not found:
        sys.exit("transformers was not installed")
    return found[0]


def _checkout_sources(
    workdir: Path, requirements: tuple[str, ...] = CHECKOUT_SDISTS, folder: str = "sdists"
) -> Path:
    """The unpacked source distributions of ``requirements``, one folder each."""
    import tarfile
    import zipfile

    downloads, unpacked = workdir / folder, workdir / f"{folder}-unpacked"
    downloads.mkdir(parents=True, exist_ok=True)
    for requirement in requirements:
        name, _, version = requirement.partition("==")
        stem = f"{name.replace('-', '_')}-{version}"
        if not any(downloads.glob(f"{stem}.*")) and not any(downloads.glob(f"{name}-{version}.*")):
            subprocess.run(
                [
                    *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
                    *("--no-binary", ":all:", "--dest", str(downloads), requirement),
                ],
                check=True,
            )
    if unpacked.exists():
        shutil.rmtree(unpacked)
    for archive in sorted(downloads.iterdir()):
        target = unpacked / archive.name.split(".tar")[0].removesuffix(".zip")
        if archive.name.endswith((".tar.gz", ".tgz")):
            with tarfile.open(archive) as tar:
                tar.extractall(target, filter="data")
        elif archive.suffix == ".zip":
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(target)
    return unpacked


def _copy_python_files(source: Path, target: Path) -> None:
    for path in sorted(source.rglob("*.py")):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)


def _describe_source(name: str, source: Path) -> str:
    if name == "transformers":
        return f"transformers=={TRANSFORMERS_VERSION} (PyPI, --no-deps)\n"
    if name == "checkout":
        return f"sdists (PyPI): {' '.join(CHECKOUT_SDISTS)}\n"
    if name == "checkout-large":
        return f"sdists (PyPI): {' '.join(CHECKOUT_LARGE_SDISTS)}\n"
    version = (source / "version.py").read_text(encoding="utf-8", errors="replace")
    line = next((x for x in version.splitlines() if x.startswith("__version__")), "")
    return f"torch sources from {source} {line}\n"


def corpus_stats(root: Path) -> dict[str, object]:
    files = [p for p in root.rglob("*.py") if p.is_file()]
    marker = root / ".complete"
    return {
        "files": len(files),
        "mb": round(sum(p.stat().st_size for p in files) / 1e6, 2),
        "source": marker.read_text(encoding="utf-8").strip() if marker.exists() else str(root),
    }


SNAPSHOT_ENV: dict[str, str] = {}  # PYTHONPATH of the frozen copy of the package, if any


def snapshot_package(workdir: Path) -> str:
    """Freeze a copy of the working tree's package (map included) for the whole run, so that
    edits made meanwhile do not change what is measured; its content hash."""
    target = workdir / "snapshot"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(
        REPO / "ml_switcheroo",
        target / "ml_switcheroo",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    digest = hashlib.sha256()
    for path in sorted((target / "ml_switcheroo").rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(target).as_posix().encode() + path.read_bytes())
    SNAPSHOT_ENV["PYTHONPATH"] = str(target)  # found before the editable install's finder
    return digest.hexdigest()[:12]


# --------------------------------------------------------------------------- counts


def _import_measured_package() -> None:
    """Make ``import ml_switcheroo`` in this process load the measured copy (the frozen
    snapshot, else this checkout)."""
    location = SNAPSHOT_ENV.get("PYTHONPATH", str(REPO))
    if location not in sys.path:
        sys.path.insert(0, location)


def byte_filter_count(root: Path) -> dict[str, object]:
    """Of the files ``convert`` finds under ``root``, how many its byte pre-filter hands to the
    ``ast`` stage (kept and not generated), counted in this process with convert's own
    discovery, map and filter; and the CPU seconds it took. Neither ``ast`` nor the repository
    index runs here: every other count is (c)'s report's (``selection_counts``)."""
    _import_measured_package()
    from ml_switcheroo.analysis.prefilter import prefilter_for
    from ml_switcheroo.app.files import discover
    from ml_switcheroo.codemods.optimizer import TorchToOptax
    from ml_switcheroo.convert import GENERATED_MARKER
    from ml_switcheroo.targets.catalogue import load_semantic_map

    prefilter = prefilter_for(load_semantic_map(), TorchToOptax.HOOKS)
    marker = GENERATED_MARKER.encode("utf-8")
    started = time.process_time()
    kept = 0
    for path in discover([str(root)]).files:
        with suppress(OSError):
            data = Path(path).read_bytes()
            kept += bool(prefilter.matches(data) and marker not in data)
    seconds = round(time.process_time() - started, 2)
    return {"kept_by_bytes": kept, "byte_filter_cpu_seconds": seconds}


def rate(part: int, whole: int) -> float | None:
    """``part / whole`` to 4 places; None when ``whole`` is 0."""
    return round(part / whole, 4) if whole else None


def selection_counts(report: dict[str, Any], by_bytes: dict[str, object]) -> dict[str, object]:
    """The corpus's counts: (c)'s report (``convert --check --no-cache --report``: the files it
    scans, parses with libcst, finds would change...) and the byte filter's count
    (``byte_filter_count``), with the keep rates of both stages."""
    summary = report["summary"]
    files, parsed = int(summary["files_scanned"]), int(summary["parsed"])
    kept = int(by_bytes["kept_by_bytes"])  # type: ignore[call-overload]
    return {
        "files": files,
        "kept_by_bytes": kept,
        "parsed_by_libcst": parsed,  # kept by the `ast` stage (and for cross-file reasons)
        "changed": int(summary["changed"]),
        "prefiltered_out": int(summary["prefiltered_out"]),
        "skipped_generated": int(summary["skipped_generated"]),
        "failed": int(summary["failed"]),
        "byte_keep_rate": rate(kept, files),
        "stage_keep_rate": rate(parsed, kept),
        "byte_filter_cpu_seconds": by_bytes["byte_filter_cpu_seconds"],
    }


# --------------------------------------------------------------------------- measuring

RUSAGE_RUN = Path(__file__).resolve().parent / "rusage_run.py"
RUNS = ("a", "b", "c", "c1", "c2")  # in the order each repeat runs them
SKIPPABLE = ("b", "c1", "c2", "optimizer-files")
# the names ``--skip`` took before (whole corpus runs)
OLD_SKIP_NAMES = {"b_libcst_torch_to_optax": "b", "c1_convert_check_cold_cache": "c1"}


def _megabytes(kilobytes: int) -> float | None:
    return round(kilobytes / 1024, 1) if kilobytes else None


def peak_memory(usage_file: Path) -> dict[str, object]:
    """Peak RSS (MB) of the command's main process and of its largest worker (None without a
    worker), and how many workers it forked, as ``rusage_run.py`` recorded them; None when it
    recorded nothing (the command was killed)."""
    try:
        record = json.loads(usage_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"main_peak_mb": None, "worker_peak_mb": None, "workers": None}
    workers = [int(kb) for kb in record["worker_peaks_kb"]]
    return {
        "main_peak_mb": _megabytes(int(record["main_peak_kb"])),
        "worker_peak_mb": _megabytes(max(workers, default=0)),
        "workers": len(workers),
    }


def measure(module_argv: list[str], cwd: Path, log: Path) -> dict[str, object]:
    """Run ``python -m MODULE ARGS`` (through ``rusage_run.py``) from ``cwd``, output to
    ``log``: its wall time, the CPU time of its whole process tree (``wait4``: the command and
    every process it waited for), its exit code and peak memory per process."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **SNAPSHOT_ENV}
    load = round(os.getloadavg()[0], 2)
    usage_file = log.with_name(log.name + ".rusage.json")
    usage_file.unlink(missing_ok=True)
    argv = [sys.executable, str(RUSAGE_RUN), str(usage_file), *module_argv]
    with open(log, "wb") as out:
        start = time.perf_counter()
        process = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
        "exit": process.returncode,
        **peak_memory(usage_file),
        "load_before": load,  # 1-minute load average: other work on the machine
    }


def median_run(runs: list[dict[str, object]]) -> dict[str, object]:
    """The median run by wall time (its CPU and memory with it), plus every run's times."""
    ordered = sorted(runs, key=lambda r: float(r["wall_seconds"]))  # type: ignore[arg-type]
    middle = dict(ordered[(len(ordered) - 1) // 2])
    middle["all_wall_seconds"] = [r["wall_seconds"] for r in runs]
    middle["all_cpu_seconds"] = [r["cpu_seconds"] for r in runs]
    return middle


def commands(jobs: int, report: Path, cache: Path) -> dict[str, list[str]]:
    """The module command line (``python -m`` ...) of each run, the corpus left out."""
    libcst = ["-j", str(jobs), "--no-format", "--hide-progress", "--unified-diff", "1"]
    convert = ["ml_switcheroo", "convert", "--check", "-j", str(jobs)]
    return {
        "a": ["libcst.tool", "codemod", "noop.NOOPCommand", *libcst],
        "b": ["libcst.tool", "codemod", "optimizer.TorchToOptax", *libcst],
        "c": [*convert, "--no-cache", "--report", str(report)],
        "c1": [*convert, "--cache", str(cache)],
        "c2": [*convert, "--cache", str(cache)],
    }


def scratch_dir(out_dir: Path) -> Path:
    """The folder every command runs from, with the libcst config (a) and (b) need."""
    scratch = out_dir / "cwd"
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / ".libcst.codemod.yaml").write_text(LIBCST_CONFIG, encoding="utf-8")
    return scratch


def bench_corpus(
    name: str, root: Path, jobs: int, repeat: int, out_dir: Path, runs: tuple[str, ...] = RUNS
) -> dict[str, dict[str, object]]:
    """The ``runs`` on ``root``, ``repeat`` times interleaved (a, b, c, c1, c2, a, ...: a busy
    spell hits every command alike), the median of each. (c1) starts from an empty cache and
    (c2) reads the cache (c1) has just filled over the same, unchanged corpus (without (c1): one
    unmeasured first run fills it). (c) writes ``<name>-report.json`` in ``out_dir``."""
    scratch = scratch_dir(out_dir)
    cache = out_dir / f"{name}-cache"
    argvs = commands(jobs, out_dir / f"{name}-report.json", cache)
    shutil.rmtree(cache, ignore_errors=True)
    if "c2" in runs and "c1" not in runs:
        measure([*argvs["c1"], str(root)], scratch, out_dir / f"{name}-fill-cache.log")
    measured: dict[str, list[dict[str, object]]] = {key: [] for key in RUNS if key in runs}
    for index in range(repeat):
        for key in measured:
            if key == "c1":
                shutil.rmtree(cache, ignore_errors=True)
            log = out_dir / f"{name}-{key}-{index}.log"
            measured[key].append(measure([*argvs[key], str(root)], scratch, log))
    return {key: median_run(value) for key, value in measured.items()}


def with_ratios(
    runs: dict[str, dict[str, object]], files: int, libcst_files: int | None = None
) -> dict[str, dict[str, object]]:
    """Each run with its wall and CPU time over (a)'s and its files per CPU-second (files/s
    per core: a machine with k cores converts about k times as many); ``libcst_files``: the
    files (a) and (b) read, when libcst finds other files than ``convert`` (``files``)."""
    a = runs.get("a")
    for key, run in runs.items():
        cpu = float(run["cpu_seconds"])  # type: ignore[arg-type]
        read = libcst_files if key in ("a", "b") and libcst_files is not None else files
        run["files_per_core_second"] = round(read / cpu, 1) if cpu else None
        if a is not None:
            for field in ("wall_seconds", "cpu_seconds"):
                floor = float(a[field])  # type: ignore[arg-type]
                value = float(run[field])  # type: ignore[arg-type]
                run[f"{field.split('_')[0]}_over_a"] = round(value / floor, 3) if floor else None
    return runs


def optimizer_files(report: Path, root: Path, target: Path) -> int:
    """Copy the files (c) found would change into ``target``; how many."""
    data = json.loads(report.read_text(encoding="utf-8"))
    if target.exists():
        shutil.rmtree(target)
    count = 0
    for entry in data["files"]:
        if entry["changed"]:
            source = Path(entry["file"])
            source = source if source.is_absolute() else (report.parent / "cwd" / source)
            destination = target / source.resolve().relative_to(root.resolve())
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
            count += 1
    return count


def optimizer_files_runs(
    name: str, root: Path, workdir: Path, jobs: int, repeat: int, out_dir: Path
) -> dict[str, object]:
    """(a) and (b) again on a copy of only the files (c) found would change: the cost where
    there is work to do."""
    small = corpus_path(workdir, f"{name}-optimizer-files")
    count = optimizer_files(out_dir / f"{name}-report.json", root, small)
    found: dict[str, object] = {"files": count}
    if count:
        found["mb"] = corpus_stats_simple(small)
        runs = bench_corpus(name, small, jobs, repeat, out_dir / "optimizer-files", ("a", "b"))
        found["runs"] = with_ratios(runs, count)
    return found


def corpus_entry(
    name: str, root: Path, args: argparse.Namespace, out_dir: Path
) -> dict[str, object]:
    """Everything measured on one corpus."""
    skipped = skipped_runs(name, args.skip)
    runs = tuple(key for key in RUNS if key not in skipped)
    by_bytes = byte_filter_count(root)
    results = bench_corpus(name, root, args.jobs, args.repeat, out_dir, runs)
    report = json.loads((out_dir / f"{name}-report.json").read_text(encoding="utf-8"))
    counts = selection_counts(report, by_bytes)
    files = int(counts["files"])  # type: ignore[call-overload]
    stats = corpus_stats(root)
    entry: dict[str, object] = {
        "corpus": name,
        "root": str(root),
        "source": stats["source"],
        "files_on_disk": stats["files"],  # every .py file: what (a) and (b) read
        "mb": stats["mb"],
        "counts": counts,
        "runs": with_ratios(results, files, int(stats["files"])),  # type: ignore[call-overload]
        "skipped": sorted(skipped),
    }
    if "optimizer-files" not in skipped:
        entry["optimizer_files"] = optimizer_files_runs(
            name, root, args.workdir, args.jobs, args.small_repeat, out_dir
        )
    if args.soundness:
        entry["soundness"] = soundness(name, root, args.jobs, out_dir)
    return entry


def skipped_runs(corpus: str, skips: list[str]) -> set[str]:
    """The runs ``--skip [CORPUS:]RUN`` leaves out on ``corpus``."""
    found = set()
    for skip in skips:
        only, _, run = skip.rpartition(":")
        if not only or only == corpus:
            found.add(OLD_SKIP_NAMES.get(run, run))
    return found


def _skip_option(text: str) -> str:
    run = text.rpartition(":")[2]
    if OLD_SKIP_NAMES.get(run, run) not in SKIPPABLE:
        raise argparse.ArgumentTypeError(f"{run!r} is not one of {', '.join(SKIPPABLE)}")
    return text


def _corpus_dir_option(text: str) -> tuple[str, Path]:
    name, _, folder = text.partition("=")
    if not name or not folder or not Path(folder).is_dir():
        raise argparse.ArgumentTypeError(f"expected NAME=DIR with an existing DIR, not {text!r}")
    problem = shared_parent(Path(folder).resolve())
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return name, Path(folder).resolve()


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--corpus",
        action="append",
        default=[],
        choices=["transformers", "torch", "checkout", "checkout-large"],
    )
    parser.add_argument(
        "--corpus-dir",
        action="append",
        default=[],
        type=_corpus_dir_option,
        metavar="NAME=DIR",
        help="measure the .py files under DIR as corpus NAME, as they are (repeatable)",
    )
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement (median)")
    parser.add_argument("--small-repeat", type=int, default=5, help="runs on optimizer files")
    parser.add_argument("--workdir", type=Path, default=default_workdir())
    parser.add_argument("--results", type=Path, default=RESULTS, help="parent of the run's folder")
    parser.add_argument(
        "--live",
        action="store_true",
        help="measure the working tree as it is, not a copy frozen at the start",
    )
    parser.add_argument(
        "--soundness",
        action="store_true",
        help="also convert every file with --no-prefilter and compare the changed files "
        "(slow: the full analysis of every file)",
    )
    parser.add_argument(
        "--no-cached", action="store_true", help="skip (c1) and (c2): --skip c1 --skip c2"
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        type=_skip_option,
        metavar="[CORPUS:]RUN",
        help=f"do not run RUN (one of {', '.join(SKIPPABLE)}) on CORPUS (default: on every "
        "corpus); repeatable",
    )
    args = parser.parse_args(argv)
    if args.no_cached:
        args.skip += ["c1", "c2"]
    return args


def run_header(args: argparse.Namespace, frozen: str | None) -> dict[str, object]:
    """What the results were measured on and with."""
    return {
        "format": 2,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": ["benchmarks/run.py", *sys.argv[1:]],
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "jobs": args.jobs,
        "repeat": args.repeat,
        "small_repeat": args.small_repeat,
        "versions": _versions(),
        "package_snapshot_sha256": frozen,
        "corpora": [],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    names = [*args.corpus, *(name for name, _ in args.corpus_dir)]
    if len(set(names)) != len(names):  # their files in the results folder would collide
        sys.exit(f"each corpus needs a name of its own: {' '.join(names)}")
    frozen = None if args.live else snapshot_package(args.workdir)
    if args.live:  # this checkout's package, not whichever one the interpreter would find
        SNAPSHOT_ENV["PYTHONPATH"] = str(REPO)
    out_dir = args.results / time.strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    results = run_header(args, frozen)
    corpora = [(name, ensure_corpus(name, args.workdir)) for name in args.corpus]
    corpora += args.corpus_dir
    if not corpora:
        corpora = [("transformers", ensure_corpus("transformers", args.workdir))]
    out = out_dir / "results.json"
    for name, root in corpora:
        print(f"== {name}: {root}", flush=True)
        entry = corpus_entry(name, root, args, out_dir)
        results["corpora"].append(entry)  # type: ignore[attr-defined]
        # written after every corpus: a run stopped early keeps the corpora it finished
        out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(entry, indent=2), flush=True)
    print(f"results: {out}\ntable: python benchmarks/table.py {out}")
    return 0


def soundness(name: str, root: Path, jobs: int, out_dir: Path) -> dict[str, object]:
    """Convert every file without the pre-filter: it must change exactly the same files."""
    with_filter = out_dir / f"{name}-report.json"
    without = out_dir / f"{name}-no-prefilter-report.json"
    argv = ["ml_switcheroo", "convert", "--check", "--no-prefilter"]
    argv.append("--no-cache")  # the full analysis of every file, not results of earlier runs
    run = measure(
        [*argv, "-j", str(jobs), "--report", str(without), str(root)],
        scratch_dir(out_dir),
        out_dir / f"{name}-no-prefilter.log",
    )

    def changed(report: Path) -> set[str]:
        data = json.loads(report.read_text(encoding="utf-8"))
        return {f["file"] for f in data["files"] if f["changed"]}

    missed = sorted(changed(without) - changed(with_filter))
    return {
        "wall_seconds_without_prefilter": run["wall_seconds"],
        "cpu_seconds_without_prefilter": run["cpu_seconds"],
        "changed_without_prefilter": len(changed(without)),
        "changed_with_prefilter": len(changed(with_filter)),
        "missed_by_prefilter": missed,  # must be empty
    }


def corpus_stats_simple(root: Path) -> float:
    return round(sum(p.stat().st_size for p in root.rglob("*.py")) / 1e6, 3)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("libcst", "ml-switcheroo", "torch", "pyyaml"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "-"
    found["ml_switcheroo_commit"] = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return found


if __name__ == "__main__":
    sys.exit(main())
