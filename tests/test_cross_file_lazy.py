"""The files linked to a file (``CrossFile._linked_files``) and the closure ``_looks_up``
reads are read only as far as a question goes (issue 14, cost): a question the first linked
file answers (a package ``__init__.py``) reads no import of the rest of the repository, and
the walk, read to its end, lists the same files in the same order as reading them all first."""

from __future__ import annotations

import os
from itertools import chain
from pathlib import Path

import pytest

from ml_switcheroo.analysis import cross_file, repository
from ml_switcheroo.analysis.cross_file import CrossFile
from ml_switcheroo.analysis.repository import index_for, repository_root
from ml_switcheroo.targets.catalogue import load_semantic_map


def _repository(root: Path, replaced_in_init: bool) -> str:
    pkg = root / "pkg"
    (pkg / "sub").mkdir(parents=True)
    init = "import torch\ntorch.optim.SGD = object\n" if replaced_in_init else "import torch\n"
    (pkg / "__init__.py").write_text(init)
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "train.py").write_text(
        "import torch\nfrom pkg import a\n\n\ndef fit(model):\n"
        "    opt = torch.optim.SGD(model.parameters(), lr=0.1)\n    return opt\n"
    )
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("import torch\n\ntorch.optim.Adam = object\n")
    (pkg / "main.py").write_text("from pkg.train import fit\n")
    return str(pkg / "train.py")


def _cross(path: str) -> CrossFile:
    semantic_map = load_semantic_map()
    index = index_for(repository_root(os.path.abspath(path)))
    methods = cross_file.cross_file_methods(semantic_map)
    absolute = os.path.abspath(path)
    return CrossFile(index, absolute, semantic_map, lambda p, line: True, methods, "")


def _eager_linked(cross: CrossFile) -> list[str]:
    """``_linked_files`` as it was made before: every linked file read first."""
    files = list(cross.index.walk_imported_closure(cross.path))
    for caller in cross.index.importing_closure(cross.path) or ():
        files.append(caller)
        files.extend(cross.index.walk_imported_closure(caller))
    return [f for f in dict.fromkeys(files) if f != cross.path]


def test_a_replacement_in_the_package_init_reads_no_import_of_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _repository(tmp_path, replaced_in_init=True)
    read: list[str] = []
    original = repository._read_imports

    def counted(file: str, module: str, data: bytes):  # type: ignore[no-untyped-def]
        read.append(os.path.basename(file))
        return original(file, module, data)

    monkeypatch.setattr(repository, "_read_imports", counted)
    found = _cross(path).replaced_elsewhere()
    assert found is not None and found[2].startswith(os.path.join("pkg", "__init__.py"))
    assert "b.py" not in read and "main.py" not in read


def test_the_first_linked_replacement_is_found_past_the_init(tmp_path: Path) -> None:
    path = _repository(tmp_path, replaced_in_init=False)
    found = _cross(path).replaced_elsewhere()
    assert found is not None and found[2].startswith(os.path.join("pkg", "sub", "b.py"))


@pytest.mark.parametrize("replaced_in_init", [True, False])
def test_the_lazy_walk_lists_the_files_read_all_first(
    tmp_path: Path, replaced_in_init: bool
) -> None:
    path = _repository(tmp_path, replaced_in_init)
    cross = _cross(path)
    cross.replaced_elsewhere()  # a question that may stop the walk early
    assert list(cross._linked_files()) == _eager_linked(_cross(path))
    assert list(cross._linked_files()) == list(cross._linked_files())  # kept, read again


def test_looks_up_stops_at_the_first_file_looking_names_up(tmp_path: Path) -> None:
    path = _repository(tmp_path, replaced_in_init=False)
    (tmp_path / "pkg" / "a.py").write_text(
        "from pkg.sub import b\n\n\ndef run(name):\n    return globals()[name]()\n"
    )
    cross = _cross(path)
    walked = cross_file._Walked(cross.index.walk_imported_closure(cross.path))
    looks = cross._looks_up(walked)
    eager = cross._looks_up(list(chain(cross.index.walk_imported_closure(cross.path))))
    assert looks == eager
    if looks:
        assert len(walked.files) < len(walked.everything())
