"""Startup overhead, heavy imports, and how often each process loads the semantic map.

    python benchmarks/startup.py [--repeat 10]

* wall time (median of N) of ``python -c pass``, ``python -c "import libcst"``,
  ``ml-switcheroo --help``, ``ml-switcheroo convert --check`` on one small file (with a cache
  of its own: the first run fills it, the others are cached runs; and with ``--no-cache``),
  and libcst's own ``codemod`` (noop.NOOPCommand, optimizer.TorchToOptax) on the same file;
* whether torch, jax, optax or numpy get imported on those paths (``python -X importtime``);
* semantic-map loads per process in libcst's parallel runner with ``-j 2`` (and in
  ``ml-switcheroo convert -j 2``), with the default start method and with ``spawn``: a
  ``sitecustomize`` on ``PYTHONPATH`` counts calls of the map compiler and command
  instantiations per process id.

Results go to ``benchmarks/results/`` (git-ignored) and stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import LIBCST_CONFIG, RESULTS  # noqa: E402

HEAVY = ("torch", "jax", "jaxlib", "optax", "numpy")
SMALL = textwrap.dedent(
    """\
    import torch

    def fit(model, data, epochs):
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
        for _ in range(epochs):
            for batch in data:
                opt.zero_grad()
                model(batch).backward()
                opt.step()
    """
)
SITECUSTOMIZE = """\
import os

if os.environ.get("MLS_COUNT"):
    if os.environ.get("MLS_START_METHOD"):
        import multiprocessing

        multiprocessing.set_start_method(os.environ["MLS_START_METHOD"], force=True)
    import ml_switcheroo.spec.semantic_map as semantic_map
    from ml_switcheroo.rewrite.engine import SwitcherooCommand

    def log(what):
        with open(os.environ["MLS_COUNT"], "a") as handle:
            handle.write(f"{os.getpid()} {what}\\n")

    compile_file = semantic_map._compile_file

    def counting_compile(path, base, hooks):
        log(f"load {os.path.basename(str(path))}")
        return compile_file(path, base, hooks)

    semantic_map._compile_file = counting_compile
    init = SwitcherooCommand.__init__

    def counting_init(self, *args, **kwargs):
        log("file")
        init(self, *args, **kwargs)

    SwitcherooCommand.__init__ = counting_init
"""


def console() -> list[str]:
    script = shutil.which("ml-switcheroo", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "ml_switcheroo"]


def timed(argv: list[str], cwd: Path, repeat: int, env: dict[str, str] | None = None) -> dict:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = subprocess.run(argv, cwd=cwd, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return {
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "exit": result.returncode,
    }


def heavy_imports(argv: list[str], cwd: Path) -> list[str]:
    """Top-level packages of ``HEAVY`` that ``argv`` (``python ...``) imports."""
    result = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]], cwd=cwd, capture_output=True, text=True
    )
    found = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:"):
            name = line.rsplit("|", 1)[-1].strip().split(".")[0]
            if name in HEAVY:
                found.add(name)
    return sorted(found)


def map_loads(argv: list[str], cwd: Path, start_method: str | None, site: Path) -> dict:
    log = cwd / "loads.log"
    log.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
        "MLS_COUNT": str(log),
    }
    if start_method:
        env["MLS_START_METHOD"] = start_method
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env)
    per_pid: dict[str, Counter[str]] = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        pid, what = line.split(" ", 1)
        per_pid.setdefault(pid, Counter())[what] += 1
    return {
        "exit": result.returncode,
        "processes": [
            {"files": counts["file"], "map_loads": sum(v for k, v in counts.items() if k != "file")}
            for _, counts in sorted(per_pid.items())
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        (work / ".libcst.codemod.yaml").write_text(LIBCST_CONFIG, encoding="utf-8")
        (work / "train.py").write_text(SMALL, encoding="utf-8")
        many = work / "many"
        many.mkdir()
        for index in range(12):
            (many / f"m{index}.py").write_text(SMALL, encoding="utf-8")
        site = work / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
        py = sys.executable
        libcst = [py, "-m", "libcst.tool", "codemod"]
        lib_opts = ["--no-format", "--hide-progress", "--unified-diff", "1"]
        commands = {
            "python -c pass": [py, "-c", "pass"],
            "python -c 'import libcst'": [py, "-c", "import libcst"],
            "ml-switcheroo --help": [*console(), "--help"],
            # with the default cache: the first run fills it, the others hit
            "ml-switcheroo convert --check train.py": [
                *console(),
                *("convert", "--check", "--cache", str(work / "cache"), "train.py"),
            ],
            "ml-switcheroo convert --check --no-cache train.py": [
                *console(),
                *("convert", "--check", "--no-cache", "train.py"),
            ],
            "libcst codemod noop.NOOPCommand train.py": [
                *libcst,
                "noop.NOOPCommand",
                *lib_opts,
                "train.py",
            ],
            "libcst codemod optimizer.TorchToOptax train.py": [
                *libcst,
                "optimizer.TorchToOptax",
                *lib_opts,
                "train.py",
            ],
        }
        results["timings"] = {k: timed(v, work, args.repeat) for k, v in commands.items()}
        results["heavy_imports"] = {
            "ml-switcheroo convert --check train.py": heavy_imports(
                [py, "-m", "ml_switcheroo", "convert", "--check", "train.py"], work
            ),
            "libcst codemod optimizer.TorchToOptax train.py": heavy_imports(
                commands["libcst codemod optimizer.TorchToOptax train.py"], work
            ),
        }
        loads = {}
        for method in (None, "spawn"):
            label = method or "default"
            loads[f"libcst -j 2 ({label})"] = map_loads(
                [*libcst, "optimizer.TorchToOptax", "-j", "2", *lib_opts, "many"],
                work,
                method,
                site,
            )
            loads[f"convert -j 2 ({label})"] = map_loads(
                [py, "-m", "ml_switcheroo", "convert", "--check", "-j", "2", "many"],
                work,
                method,
                site,
            )
        results["map_loads_per_process"] = loads
    text = json.dumps(results, indent=2)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"startup-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
