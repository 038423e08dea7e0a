"""Every test gets a cache directory of its own: ``convert --check`` caches by default under
``$XDG_CACHE_HOME``, and a test must neither read another test's results nor fill the user's.

The session shares one JAX compilation cache, fresh for the session: code run eagerly (the NNX
loops' translations) recompiles the same XLA computation at every step when it calls a
control-flow primitive (``optax.MultiSteps``' ``lax.cond``), and the cache hands back the
executable compiled the first time instead (the same binary, so the same numbers).

Each executable JAX keeps in memory holds memory mappings of its own, and Linux caps a process
at ``vm.max_map_count`` of them (65,530 by default): one test module of scheduler runs left
19,296 in its process, and an xdist worker that ran several such modules got
``Failed to materialize symbols`` from XLA and then ``MemoryError`` from Python with 19 GB
free. After each module, a process holding many mappings drops JAX's in-memory caches
(``jax.clear_caches()``: 19,296 -> 715); the compiles stay in the session's disk cache."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import pytest

# JAX reads these when it is imported; ``_share_jax_compiles`` also sets them on a JAX already
# imported. A minimum of 0 s and -1 B: every compile is kept (the repeated ones are small).
JAX_CACHE_SETTINGS = {
    "jax_persistent_cache_min_compile_time_secs": 0,
    "jax_persistent_cache_min_entry_size_bytes": -1,
}


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_JAX_CACHE] = _share_jax_compiles(tempfile.mkdtemp(prefix="jax-compiles-"))


def pytest_unconfigure(config: pytest.Config) -> None:
    directory = config.stash.get(_JAX_CACHE, None)
    if directory:
        shutil.rmtree(directory, ignore_errors=True)


_JAX_CACHE = pytest.StashKey[str]()


def _share_jax_compiles(directory: str) -> str:
    """``directory`` as JAX's compilation cache for this process (and the processes it starts)."""
    settings = {"jax_compilation_cache_dir": directory, **JAX_CACHE_SETTINGS}
    for name, value in settings.items():
        os.environ[name.upper()] = str(value)
    if "jax" in sys.modules:
        for name, value in settings.items():
            sys.modules["jax"].config.update(name, value)
    return directory


# mappings of this process above which a module's end drops JAX's in-memory caches
MAPPINGS_KEPT = 20_000


def _mappings() -> int:
    """The memory mappings of this process (0 where /proc is not there)."""
    try:
        with open("/proc/self/maps", "rb") as maps:
            return sum(1 for _ in maps)
    except OSError:
        return 0


@pytest.fixture(autouse=True, scope="module")
def _jax_mappings_bounded():
    yield
    if "jax" in sys.modules and _mappings() > MAPPINGS_KEPT:
        sys.modules["jax"].clear_caches()


@pytest.fixture(autouse=True)
def _own_cache_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
