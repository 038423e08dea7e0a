"""What libcst's deep copy of the tree costs, and what skipping the per-instance matcher scan
saves, on the files the pre-filter keeps (the only ones that reach the engine).

    python benchmarks/metadata_copy.py [CORPUS_DIR ...]   # default: the corpora of run.py

Per corpus, in this process, best of 3: parse; ``Module.deep_clone()`` (what
``MetadataWrapper(module)`` does); TorchToOptax with the copy (a tree handed over by hand, as
``CodemodTest`` does) and without it (the tree fresh from libcst's runner); and the command's
construction with and without libcst's matcher scan (it happens once per file of the corpus,
kept or not).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod import transform_module as libcst_transform_module
from libcst.matchers import MatcherDecoratableTransformer
from run import built_corpora, default_workdir

from ml_switcheroo.analysis.prefilter import prefilter_for
from ml_switcheroo.codemods.optimizer import TorchToOptax
from ml_switcheroo.targets.catalogue import load_semantic_map


def best(function, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    roots = [Path(p) for p in sys.argv[1:]] or built_corpora(default_workdir())
    for root in roots:
        measure_corpus(root)
    return 0


def measure_corpus(root: Path) -> None:
    prefilter = prefilter_for(load_semantic_map())
    paths = sorted(p for p in root.rglob("*.py") if p.is_file())
    kept = [(p, p.read_text(encoding="utf-8")) for p in paths if prefilter.matches(p.read_bytes())]
    trees = [cst.parse_module(code) for _, code in kept]

    def parse() -> None:
        for _, code in kept:
            cst.parse_module(code)

    def clone() -> None:
        for tree in trees:
            tree.deep_clone()

    def with_copy() -> None:
        for (path, _), tree in zip(kept, trees, strict=True):
            TorchToOptax(CodemodContext(filename=str(path))).transform_module(tree)

    def without_copy() -> None:  # libcst's own runner function: parse, then no copy
        for path, code in kept:
            libcst_transform_module(TorchToOptax(CodemodContext(filename=str(path))), code)

    def construct() -> None:
        for _ in range(200):
            TorchToOptax(CodemodContext())

    def construct_scanning() -> None:
        for _ in range(200):
            command = TorchToOptax.__new__(TorchToOptax)
            MatcherDecoratableTransformer.__init__(command)

    size = sum(len(code) for _, code in kept) / 1e6
    print(f"{root.name}: {len(kept)} of {len(paths)} files kept, {size:.2f} MB")
    t_parse, t_clone = best(parse), best(clone)
    t_copy, t_fresh = best(with_copy), best(without_copy)
    print(f"  parse                          {t_parse:7.2f} s")
    print(f"  deep_clone                     {t_clone:7.2f} s")
    print(f"  TorchToOptax, with the copy    {t_copy:7.2f} s (on trees parsed beforehand)")
    print(f"  parse + TorchToOptax, no copy  {t_fresh:7.2f} s (libcst's transform_module)")
    print(f"  the copy / (parse + transform) {t_clone / (t_parse + t_copy):7.1%}")
    per_file = best(construct) / 200 * 1e6
    scan = best(construct_scanning) / 200 * 1e6
    print(f"  command construction           {per_file:7.0f} us per file")
    print(f"  libcst's matcher scan          {scan:7.0f} us per file (skipped)")


if __name__ == "__main__":
    sys.exit(main())
