"""The files of a ``python -m libcst.tool codemod`` run, pinned as they were when it started.

libcst's runner writes each converted file as soon as its worker is done, in the order of the
files' paths, with several workers at once. A question about another file of the repository
(does the optimizer it builds translate? does its function step the optimizer handed to it?)
must see that file as the user wrote it, not as a worker of the same run already rewrote it:
otherwise the output depends on the order of the files and on which worker is faster.

``RunSnapshot`` is a metadata provider only for its ``gen_cache``: libcst calls it once, in the
process its workers fork from, with every file of the run, before the first one is converted
(``FullRepoManager.resolve_cache``, with the ``repo_root`` of ``.libcst.codemod.yaml``). It pins
their bytes in the repository index (``analysis.repository.pin_sources``) and gives no metadata.
``ml-switcheroo convert`` pins the files it hands libcst itself.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from libcst.metadata import BatchableMetadataProvider

from ml_switcheroo.analysis.repository import pin_sources


class RunSnapshot(BatchableMetadataProvider[None]):
    """Pins the files of a libcst run before it writes any (no metadata of its own)."""

    def __init__(self, cache: object = None) -> None:
        # libcst refuses a provider with ``gen_cache`` but no cache for the file: there is none
        super().__init__(cache=() if cache is None else cache)

    @classmethod
    def gen_cache(  # type: ignore[override]
        cls, root_path: Path, paths: Collection[str], timeout: int | None = None, **_: Any
    ) -> Mapping[str, object]:
        pin_sources(os.path.join(root_path, path) for path in paths)
        return {}
