"""How fast the pre-filter scans, and how much it keeps, against simpler scans.

    python benchmarks/prefilter_scan.py [CORPUS_DIR ...]   # default: the corpora of run.py

Variants, all over bytes already in memory (reading is timed apart):

* ``shipped``: ``ml_switcheroo.analysis.prefilter`` (``bytes.find`` for every name, word and
  attribute checks only around hits; every segment of a call API; methods as attributes);
* ``regex-ab``: one compiled ``re`` per rule of the plain design: a root as a word, and the last
  segment of a call API or a method name as a word;
* ``find-ab``: the same rule as ``regex-ab`` with ``bytes.find`` loops.

Prints files kept, bytes kept and milliseconds per variant (best of 3).
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from run import built_corpora, default_workdir

from ml_switcheroo.analysis.prefilter import _has_word, prefilter_for
from ml_switcheroo.targets.catalogue import load_semantic_map


def main() -> int:
    roots = [Path(p) for p in sys.argv[1:]] or built_corpora(default_workdir())
    prefilter = prefilter_for(load_semantic_map())
    roots_b = [r.encode() for r in sorted(prefilter.roots)]
    tokens = sorted({*prefilter.names, *prefilter.methods})
    root_re = re.compile(rb"\b(?:" + b"|".join(re.escape(r) for r in roots_b) + rb")\b")
    token_re = re.compile(rb"\b(?:" + b"|".join(re.escape(t.encode()) for t in tokens) + rb")\b")

    def regex_ab(data: bytes) -> bool:
        return bool(token_re.search(data)) and bool(root_re.search(data))

    def find_ab(data: bytes) -> bool:
        return any(_has_word(data, t.encode()) for t in tokens) and any(
            _has_word(data, r) for r in roots_b
        )

    variants = {"shipped": prefilter.matches, "regex-ab": regex_ab, "find-ab": find_ab}
    for root in roots:
        paths = sorted(p for p in root.rglob("*.py") if p.is_file())
        start = time.perf_counter()
        contents = [p.read_bytes() for p in paths]
        read_ms = (time.perf_counter() - start) * 1000
        total = sum(map(len, contents))
        print(f"{root.name}: {len(paths)} files, {total / 1e6:.1f} MB, read {read_ms:.0f} ms")
        for name, function in variants.items():
            best, kept = float("inf"), []
            for _ in range(3):
                start = time.perf_counter()
                kept = [data for data in contents if function(data)]
                best = min(best, time.perf_counter() - start)
            size = sum(map(len, kept))
            print(
                f"  {name:9} kept {len(kept):5} files {size / 1e6:6.2f} MB "
                f"({100 * size / total:4.1f}% of bytes)  {best * 1000:7.0f} ms  "
                f"{total / 1e6 / best:6.0f} MB/s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
