"""The semantic map validated against the shipped target's hooks, cached per process."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from ml_switcheroo.spec.semantic_map import BUILTIN_MAP, SemanticMap, compile_semantic_map
from ml_switcheroo.targets.nnx.target import NNX
from ml_switcheroo.targets.optax.target import OPTAX
from ml_switcheroo.targets.target import Target

DEFAULT_TARGET: Target = OPTAX
TARGETS: dict[str, Target] = {target.name: target for target in (OPTAX, NNX)}


def load_semantic_map(
    extra_paths: Iterable[str | Path] = (), target: Target = DEFAULT_TARGET
) -> SemanticMap:
    """The shipped map plus the target's maps and ``extra_paths`` (later ones override),
    validated against the target's hooks; cached per process."""
    paths = tuple(Path(p).resolve() for p in (*target.maps, *extra_paths))
    stamps = tuple(_stamp(p) for p in (BUILTIN_MAP, *paths))
    return _load_cached(paths, stamps, target)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


@cache
def _load_cached(paths: tuple[Path, ...], stamps: tuple[Any, ...], target: Target) -> SemanticMap:
    return compile_semantic_map(paths, target.specs)
