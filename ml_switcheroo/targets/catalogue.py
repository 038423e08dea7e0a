"""The semantic map validated against the shipped target's hooks, cached per process."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from ml_switcheroo.spec.semantic_map import BUILTIN_MAP, SemanticMap, compile_semantic_map
from ml_switcheroo.targets.optax.target import OPTAX
from ml_switcheroo.targets.target import Target

DEFAULT_TARGET: Target = OPTAX


def load_semantic_map(extra_paths: Iterable[str | Path] = ()) -> SemanticMap:
    """The shipped map plus ``extra_paths`` (later ones override), validated; cached per process."""
    paths = tuple(Path(p).resolve() for p in extra_paths)
    stamps = tuple(_stamp(p) for p in (BUILTIN_MAP, *paths))
    return _load_cached(paths, stamps)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


@cache
def _load_cached(paths: tuple[Path, ...], stamps: tuple[Any, ...]) -> SemanticMap:
    return compile_semantic_map(paths, DEFAULT_TARGET.specs)
