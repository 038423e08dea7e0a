"""The imports read of a file, shared by the processes of one run through a folder
(``repository.share_imports``): a second index (another worker) reads them without parsing the
file, gets the same answer, and parses again when the entry is unreadable or the bytes differ."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ml_switcheroo.analysis import repository
from ml_switcheroo.analysis.repository import FileImports, RepositoryIndex, share_imports
from tests.support import write_package

FILES = {
    "engine.py": "import os.path\nfrom .model import Net\nfrom . import data as d\ndef fit():\n"
    "    import json\n",
    "model.py": "import torch\nclass Net: ...\n",
    "data.py": "x = 1\n",
}


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[str]:
    folder = tmp_path / "shared"
    folder.mkdir()
    share_imports(str(folder))
    try:
        yield str(folder)
    finally:
        share_imports(None)


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    parsed: list[str] = []
    read = repository._read_imports

    def counted(path: str, module: str, data: bytes) -> FileImports:
        parsed.append(os.path.basename(path))
        return read(path, module, data)

    monkeypatch.setattr(repository, "_read_imports", counted)
    return parsed


def test_a_second_index_reads_the_shared_answer(
    tmp_path: Path, shared: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = str(write_package(tmp_path / "repo", FILES))
    parsed = _counting(monkeypatch)
    first = RepositoryIndex(root)
    engine = os.path.join(root, "pkg", "engine.py")
    closure = first.imported_closure(engine)
    answers = {p: first.imports_of(p) for p in first.files}
    assert sorted(parsed) == ["__init__.py", "data.py", "engine.py", "model.py"]
    second = RepositoryIndex(root)  # another worker: nothing parsed again
    assert second.imported_closure(engine) == closure
    assert {p: second.imports_of(p) for p in second.files} == answers
    assert len(parsed) == 4
    unshared = RepositoryIndex(root)
    share_imports(None)
    assert {p: unshared.imports_of(p) for p in unshared.files} == answers
    assert len(parsed) == 8


def test_an_unreadable_entry_or_other_bytes_are_parsed(
    tmp_path: Path, shared: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = str(write_package(tmp_path / "repo", FILES))
    parsed = _counting(monkeypatch)
    model = os.path.join(root, "pkg", "model.py")
    expected = RepositoryIndex(root).imports_of(model)
    for entry in os.listdir(shared):
        Path(shared, entry).write_bytes(b"not a pickle")
    assert RepositoryIndex(root).imports_of(model) == expected
    Path(model).write_text("import numpy\n", encoding="utf-8")
    changed = RepositoryIndex(root).imports_of(model)
    assert changed.imports == {"numpy": "numpy"} and not changed.defines
    assert parsed == ["model.py", "model.py", "model.py"]
