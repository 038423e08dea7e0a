"""Monorepo benchmark: ml_switcheroo against libcst's own floor, on real public code.

    python benchmarks/run.py                       # transformers corpus, -j 2
    python benchmarks/run.py --corpus torch --corpus transformers --repeat 3

Creates the corpus when it is missing (never inside the repository; default
``$ML_SWITCHEROO_BENCH_DIR`` or ``~/.cache/ml-switcheroo-bench``):

* ``transformers``: ``pip install --no-deps transformers==<pinned>`` into a scratch venv, then
  its ``.py`` files copied to ``corpus/transformers``;
* ``torch``: the ``.py`` files of the torch installed in the running interpreter (found
  without importing it), copied to ``corpus/torch``;
* ``checkout``: a checkout-like corpus (tests, examples, scripts next to the package): the
  source distributions of ``CHECKOUT_SDISTS`` (pinned), fetched with ``pip download --no-deps
  --no-binary :all:`` and unpacked, their ``.py`` files copied to ``corpus/checkout/<name>``.

``--corpus-dir NAME=DIR`` measures an existing directory as corpus NAME instead (nothing is
copied; e.g. ``--corpus-dir torch=/tmp/layers-torch/torch``).

Measured per corpus, in one run, each a separate process tree timed by wall clock:

(a) ``python -m libcst.tool codemod noop.NOOPCommand -j J --no-format --hide-progress
    --unified-diff CORPUS``: libcst's floor, parse + code generation of every file;
(b) ``python -m libcst.tool codemod optimizer.TorchToOptax`` with the same options (both write
    nothing: ``--unified-diff`` prints diffs to stdout, sent to a file);
(c) ``ml-switcheroo convert --check -j J --no-cache CORPUS``;
(c1) the same with ``--cache DIR`` on an empty DIR (a first run, filling the cache);
(c2) the same with the DIR a first run left, over the unchanged corpus (the second run);

and, in this process, what each pre-filter stage keeps: the byte filter (``prefilter.py``)
and then the ``ast`` stage (``second_stage.py``), with the seconds each takes; the files (c)
hands to libcst's parser (its report's ``parsed``; (a) and (b) parse every file);

then (a) and (b) again on a copy of only the files that (c) finds would change ("optimizer
files"): the cost where there is work to do. With ``--soundness``, ``convert --check
--no-prefilter`` over the whole corpus must find the same files to change as (c).

Unless ``--live``, the commands run a copy of ``ml_switcheroo/`` frozen at the start (on
``PYTHONPATH``), so that edits made during the run do not change what is measured.

Peak memory: the peak resident set size (VmHWM) of every process of the tree, sampled from
/proc every 20 ms; reported for the main process and the largest worker. Results go to
``benchmarks/results/`` (git-ignored) and stdout.
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
import threading
import time
from contextlib import suppress
from importlib.util import find_spec
from pathlib import Path

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


def ensure_corpus(name: str, workdir: Path) -> Path:
    target = workdir / "corpus" / name
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


def stage_keep_rates(root: Path) -> dict[str, object]:
    """What the byte filter and then the ``ast`` stage keep of ``root`` (this checkout's code)."""
    sys.path.insert(0, str(REPO))
    from benchmarks.stage_soundness import stage_counts

    counts = stage_counts(root)
    files = max(int(counts["files"]), 1)  # type: ignore[call-overload]
    counts["byte_keep_rate"] = round(int(counts["kept_by_bytes"]) / files, 4)  # type: ignore[call-overload]
    counts["stage_keep_rate"] = round(int(counts["kept_by_stage"]) / files, 4)  # type: ignore[call-overload]
    return counts


# --------------------------------------------------------------------------- measuring


class TreeMemory:
    """Peak RSS (VmHWM, kB) of a process and all its descendants, sampled from /proc."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self._tree():
                peak = _hwm(pid)
                if peak:
                    self.peaks[pid] = max(self.peaks.get(pid, 0), peak)
            self._stop.wait(self.interval)

    def _tree(self) -> list[int]:
        pids, frontier = [], [self.pid]
        while frontier:
            pid = frontier.pop()
            pids.append(pid)
            with suppress(OSError):  # the process may be gone by now
                for task in Path(f"/proc/{pid}/task").glob("*/children"):
                    with suppress(OSError):
                        frontier.extend(int(c) for c in task.read_text().split())
        return pids

    def summary(self) -> dict[str, float | int]:
        main = self.peaks.get(self.pid, 0)
        workers = [v for k, v in self.peaks.items() if k != self.pid]
        return {
            "main_mb": round(main / 1024, 1),
            "max_worker_mb": round(max(workers) / 1024, 1) if workers else 0.0,
            "processes": len(self.peaks),
        }


def _hwm(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


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


def measure(argv: list[str], cwd: Path, log: Path) -> dict[str, object]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **SNAPSHOT_ENV}
    load = round(os.getloadavg()[0], 2)
    with open(log, "wb") as out:
        start = time.perf_counter()
        process = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        with TreeMemory(process.pid) as memory:
            code = process.wait()
        seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 3),
        "exit": code,
        **memory.summary(),
        "load_before": load,  # 1-minute load average: other work on the machine
    }


def best_of(runs: list[dict[str, object]]) -> dict[str, object]:
    """The median run by time (its memory numbers with it), plus every time."""
    ordered = sorted(runs, key=lambda r: float(r["seconds"]))  # type: ignore[arg-type]
    middle = dict(ordered[(len(ordered) - 1) // 2])
    middle["all_seconds"] = [r["seconds"] for r in runs]
    return middle


def bench_corpus(
    root: Path,
    jobs: int,
    repeat: int,
    out_dir: Path,
    cached: bool = False,
    skip: tuple[str, ...] = (),
) -> dict[str, object]:
    """(a), (b), (c) on ``root`` (with ``cached``: (c1) and (c2) too); the commands run from a
    scratch dir holding a libcst config. Commands named in ``skip`` are not run."""
    scratch = out_dir / "cwd"
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / ".libcst.codemod.yaml").write_text(LIBCST_CONFIG, encoding="utf-8")
    py = sys.executable
    common = ["-j", str(jobs), "--no-format", "--hide-progress", "--unified-diff", "1"]
    report = out_dir / f"{root.name}-report.json"
    commands = {
        "a_libcst_noop": [py, "-m", "libcst.tool", "codemod", "noop.NOOPCommand", *common],
        "b_libcst_torch_to_optax": [
            *(py, "-m", "libcst.tool", "codemod", "optimizer.TorchToOptax"),
            *common,
        ],
        "c_convert_check": [
            *(py, "-m", "ml_switcheroo", "convert", "--check", "-j", str(jobs), "--no-cache"),
            *("--report", str(report)),
        ],
    }
    cold, warm = out_dir / f"{root.name}-cache-cold", out_dir / f"{root.name}-cache-warm"
    if cached:
        convert_check = [py, "-m", "ml_switcheroo", "convert", "--check", "-j", str(jobs)]
        # (c1) a first run that fills an empty cache; (c2) a run over the unchanged tree with
        # the cache a first run left.
        commands["c1_convert_check_cold_cache"] = [*convert_check, "--cache", str(cold)]
        commands["c2_convert_check_cached"] = [*convert_check, "--cache", str(warm)]
        shutil.rmtree(warm, ignore_errors=True)
        measure([*commands["c2_convert_check_cached"], str(root)], scratch, out_dir / "prime.log")
    commands = {key: argv for key, argv in commands.items() if key not in skip}
    runs: dict[str, list[dict[str, object]]] = {key: [] for key in commands}
    for index in range(repeat):  # interleaved, so that a busy spell hits every command alike
        for key, argv in commands.items():
            log = out_dir / f"{root.name}-{key}-{index}.log"
            shutil.rmtree(cold, ignore_errors=True)
            runs[key].append(measure([*argv, str(root)], scratch, log))
    return {key: best_of(value) for key, value in runs.items()}


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


def ratio(x: dict[str, object], y: dict[str, object]) -> float:
    return round(float(x["seconds"]) / float(y["seconds"]), 3)  # type: ignore[arg-type]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
        metavar="NAME=DIR",
        help="measure the .py files under DIR as corpus NAME, as they are (repeatable)",
    )
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement (median)")
    parser.add_argument("--small-repeat", type=int, default=5, help="runs on optimizer files")
    parser.add_argument("--workdir", type=Path, default=default_workdir())
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
        "--no-cached",
        action="store_true",
        help="skip (c1) convert --check filling an empty cache and (c2) convert --check with "
        "the cache of a first run, over the unchanged corpus",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["b_libcst_torch_to_optax", "c1_convert_check_cold_cache"],
        help="do not run this measurement on the whole corpus (repeatable)",
    )
    args = parser.parse_args()
    args.skip = tuple(args.skip)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    frozen = None if args.live else snapshot_package(args.workdir)
    out_dir = RESULTS / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, object] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "jobs": args.jobs,
        "versions": _versions(),
        "package_snapshot_sha256": frozen,
        "corpora": {},
    }
    corpora = [(name, ensure_corpus(name, args.workdir)) for name in args.corpus]
    for pair in args.corpus_dir:
        name, _, folder = pair.partition("=")
        corpora.append((name, Path(folder).resolve()))
    if not corpora:
        corpora = [("transformers", ensure_corpus("transformers", args.workdir))]
    for name, root in corpora:
        stats = {**corpus_stats(root), **stage_keep_rates(root)}
        print(f"== {name}: {stats}", flush=True)
        results = bench_corpus(
            root, args.jobs, args.repeat, out_dir, cached=not args.no_cached, skip=args.skip
        )
        a = results["a_libcst_noop"]
        parsed = json.loads((out_dir / f"{root.name}-report.json").read_text(encoding="utf-8"))
        entry: dict[str, object] = {
            **stats,
            "c_files_parsed_by_libcst": parsed["summary"]["parsed"],
            **results,
            **{  # (b), (c), (c1), (c2) over the floor (a)
                f"ratio_{key.split('_')[0]}_over_a": ratio(value, a)  # type: ignore[arg-type]
                for key, value in results.items()
                if key != "a_libcst_noop"
            },
            "files_per_second": {
                k: round(int(stats["files"]) / float(v["seconds"]), 1)  # type: ignore[arg-type, index]
                for k, v in results.items()
            },
        }
        small = args.workdir / "corpus" / f"{name}-optimizer-files"
        count = optimizer_files(out_dir / f"{name}-report.json", root, small)
        entry["optimizer_files"] = count
        if count:
            entry["optimizer_files_mb"] = corpus_stats_simple(small)
            restricted = bench_corpus(small, args.jobs, args.small_repeat, out_dir / "small")
            restricted.pop("c_convert_check", None)
            ra, rb = restricted["a_libcst_noop"], restricted["b_libcst_torch_to_optax"]
            entry["optimizer_files_runs"] = restricted
            entry["optimizer_files_ratio_b_over_a"] = ratio(rb, ra)  # type: ignore[arg-type]
        if args.soundness:
            entry["soundness"] = soundness(root, args.jobs, out_dir)
        summary["corpora"][name] = entry  # type: ignore[index]
        print(json.dumps(entry, indent=2), flush=True)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"results: {out_dir}")
    return 0


def soundness(root: Path, jobs: int, out_dir: Path) -> dict[str, object]:
    """Convert every file without the pre-filter: it must change exactly the same files."""
    with_filter = out_dir / f"{root.name}-report.json"
    without = out_dir / f"{root.name}-no-prefilter-report.json"
    argv = [sys.executable, "-m", "ml_switcheroo", "convert", "--check", "--no-prefilter"]
    argv.append("--no-cache")  # the full analysis of every file, not results of earlier runs
    run = measure(
        [*argv, "-j", str(jobs), "--report", str(without), str(root)],
        out_dir / "cwd",
        out_dir / f"{root.name}-no-prefilter.log",
    )

    def changed(report: Path) -> set[str]:
        data = json.loads(report.read_text(encoding="utf-8"))
        return {f["file"] for f in data["files"] if f["changed"]}

    missed = sorted(changed(without) - changed(with_filter))
    return {
        "seconds_without_prefilter": run["seconds"],
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
