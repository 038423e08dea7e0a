"""The repository index (``analysis/repository.py``): modules, call sites, parameter uses, and
the places that make a fact unknown."""

from __future__ import annotations

import os
from pathlib import Path

from ml_switcheroo.analysis.repository import (
    _WORD,
    Constructed,
    RepositoryIndex,
    Unknown,
    calls_of,
    identifiers,
    may_change_across_files,
    repository_root,
    selecting,
)
from tests.support import write_package

ENGINE = """\
def train_one_epoch(model, optimizer, loader):
    for batch in loader:
        optimizer.zero_grad()
        model(batch).backward()
        optimizer.step()
"""
STEPS = frozenset({"step", "zero_grad"})


def package(root: Path, files: dict[str, str]) -> RepositoryIndex:
    """``files`` written under ``root/pkg`` (a package); the index of ``root``."""
    return RepositoryIndex(str(write_package(root, files)))


def caller(import_line: str, call: str = "train_one_epoch") -> str:
    return (
        f"import torch\n{import_line}\n"
        "def main(model, loader):\n"
        "    opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        f"    {call}(model, opt, loader)\n"
    )


def sites(index: RepositoryIndex) -> list[Constructed] | Unknown:
    return index.call_sites("pkg.engine", "train_one_epoch", "optimizer")


def test_root_is_above_the_outermost_package(tmp_path: Path) -> None:
    package(tmp_path, {"sub/__init__.py": "", "sub/deep.py": ""})
    assert repository_root(str(tmp_path / "pkg" / "sub" / "deep.py")) == str(tmp_path)


def test_calls_are_counted_once_per_content_of_the_files(tmp_path: Path) -> None:
    index = package(
        tmp_path,
        {"engine.py": ENGINE, "train.py": caller("from pkg.engine import train_one_epoch")},
    )
    assert calls_of(index, "pkg.engine", "train_one_epoch") == 1
    index.facts_unkept = None  # type: ignore[assignment,method-assign]  # answered from the memo
    assert calls_of(index, "pkg.engine", "train_one_epoch") == 1
    del index.facts_unkept
    path = tmp_path / "pkg" / "train.py"
    path.write_text(path.read_text() + "    train_one_epoch(model, opt, loader)  # twice\n")
    os.utime(path, ns=(os.stat(path).st_mtime_ns + 10**9,) * 2)  # a new stat: read again
    assert calls_of(index, "pkg.engine", "train_one_epoch") == 2


def test_module_names_of_files_and_packages(tmp_path: Path) -> None:
    index = package(tmp_path, {"engine.py": ENGINE})
    assert index.module_of(str(tmp_path / "pkg" / "engine.py")) == "pkg.engine"
    assert index.file_of("pkg") == str(tmp_path / "pkg" / "__init__.py")


def test_absolute_import_call_site_is_the_constructor(tmp_path: Path) -> None:
    index = package(
        tmp_path, {"engine.py": ENGINE, "main.py": caller("from pkg.engine import train_one_epoch")}
    )
    (site,) = sites(index)  # type: ignore[misc]
    assert site.constructor == "torch.optim.SGD"
    assert site.place.named(str(tmp_path)) == "pkg/main.py:4"


def test_relative_import_call_site_is_found(tmp_path: Path) -> None:
    index = package(
        tmp_path, {"engine.py": ENGINE, "main.py": caller("from .engine import train_one_epoch")}
    )
    (site,) = sites(index)  # type: ignore[misc]
    assert site.constructor == "torch.optim.SGD"


def test_from_package_import_module_call_site_is_found(tmp_path: Path) -> None:
    index = package(
        tmp_path,
        {
            "engine.py": ENGINE,
            "main.py": caller("from pkg import engine", "engine.train_one_epoch"),
        },
    )
    (site,) = sites(index)  # type: ignore[misc]
    assert site.call_site.named(str(tmp_path)) == "pkg/main.py:5"


def test_every_call_site_of_the_repository_is_listed(tmp_path: Path) -> None:
    index = package(
        tmp_path,
        {
            "engine.py": ENGINE,
            "main.py": caller("from pkg.engine import train_one_epoch"),
            "other.py": caller("import pkg.engine", "pkg.engine.train_one_epoch"),
        },
    )
    found = sites(index)
    assert isinstance(found, list)
    assert sorted(s.call_site.named(str(tmp_path)) for s in found) == [
        "pkg/main.py:5",
        "pkg/other.py:5",
    ]


def test_a_call_site_passing_an_unknown_value_is_named(tmp_path: Path) -> None:
    index = package(
        tmp_path,
        {
            "engine.py": ENGINE,
            "main.py": "from pkg.engine import train_one_epoch\n"
            "train_one_epoch(model, make_optimizer(), loader)\n",
        },
    )
    found = sites(index)
    assert isinstance(found, Unknown)
    assert found.describe(str(tmp_path)).startswith("pkg/main.py:2 passes `make_optimizer()`")


def test_a_name_bound_twice_is_unknown(tmp_path: Path) -> None:
    index = package(
        tmp_path,
        {
            "engine.py": ENGINE,
            "main.py": "import torch\nfrom pkg.engine import train_one_epoch\n"
            "opt = torch.optim.SGD(p, lr=0.1)\nif x:\n    opt = torch.optim.LBFGS(p)\n"
            "train_one_epoch(model, opt, loader)\n",
        },
    )
    found = sites(index)
    assert isinstance(found, Unknown)
    assert "not bound once" in found.why


def test_star_import_is_unknown_naming_the_line(tmp_path: Path) -> None:
    index = package(
        tmp_path,
        {
            "engine.py": ENGINE,
            "main.py": "import torch\nfrom pkg.engine import *\ntrain_one_epoch(m, o, l)\n",
        },
    )
    found = sites(index)
    assert isinstance(found, Unknown)
    assert found.describe(str(tmp_path)) == "pkg/main.py:2 imports `*` from `pkg.engine`"


def test_getattr_by_name_is_unknown(tmp_path: Path) -> None:
    index = package(
        tmp_path,
        {"engine.py": ENGINE, "main.py": "import pkg.engine as e\ngetattr(e, 'train_one_epoch')\n"},
    )
    found = sites(index)
    assert isinstance(found, Unknown)
    assert "getattr" in found.why


def test_use_as_a_value_is_unknown(tmp_path: Path) -> None:
    index = package(
        tmp_path,
        {
            "engine.py": ENGINE,
            "main.py": "from pkg.engine import train_one_epoch\nf = train_one_epoch\n",
        },
    )
    found = sites(index)
    assert isinstance(found, Unknown)
    assert found.why == "uses it without calling it"


def test_a_file_that_fails_to_parse_is_named(tmp_path: Path) -> None:
    index = package(
        tmp_path,
        {"engine.py": ENGINE, "broken.py": "train_one_epoch(\ndef :\n"},
    )
    found = sites(index)
    assert isinstance(found, Unknown)
    assert found.describe(str(tmp_path)).startswith("pkg/broken.py:")
    assert found.why == "fails to parse"


def test_recursion_is_unknown(tmp_path: Path) -> None:
    recursive = ENGINE + "    if loader:\n        train_one_epoch(model, optimizer, loader[1:])\n"
    index = package(tmp_path, {"engine.py": recursive})
    found = sites(index)
    assert isinstance(found, Unknown)
    assert found.why.startswith("recursion: ")


def test_import_cycle_terminates(tmp_path: Path) -> None:
    index = package(
        tmp_path,
        {
            "engine.py": "from pkg.main import helper\n" + ENGINE,
            "main.py": "from pkg.engine import train_one_epoch\ndef helper():\n    pass\n"
            + caller("")[len("import torch\n") :],
        },
    )
    assert isinstance(sites(index), list)
    assert index.dependencies(str(tmp_path / "pkg" / "engine.py"), [b"torch"]) == [
        str(tmp_path / "pkg" / "__init__.py"),  # importing pkg.engine runs it
        str(tmp_path / "pkg" / "main.py"),
    ]


def test_symlink_loop_is_not_followed(tmp_path: Path) -> None:
    index = package(tmp_path, {"engine.py": ENGINE})
    (tmp_path / "pkg" / "loop").symlink_to(tmp_path / "pkg", target_is_directory=True)
    assert len(index.files) == 2


def test_only_step_and_zero_grad_is_no_misuse(tmp_path: Path) -> None:
    index = package(tmp_path, {"engine.py": ENGINE})
    assert index.parameter_misuse("pkg.engine", "train_one_epoch", "optimizer", STEPS) is None


def test_reading_param_groups_is_a_misuse_naming_the_line(tmp_path: Path) -> None:
    engine = ENGINE + "    print(optimizer.param_groups[0]['lr'])\n"
    index = package(tmp_path, {"engine.py": engine})
    misuse = index.parameter_misuse("pkg.engine", "train_one_epoch", "optimizer", STEPS)
    assert misuse is not None
    assert misuse.describe(str(tmp_path)).startswith("pkg/engine.py:6 uses `optimizer`")


def test_storing_the_optimizer_is_a_misuse(tmp_path: Path) -> None:
    engine = ENGINE + "    state.opt = optimizer\n"
    index = package(tmp_path, {"engine.py": engine})
    misuse = index.parameter_misuse("pkg.engine", "train_one_epoch", "optimizer", STEPS)
    assert misuse is not None
    assert "`optimizer` as a torch object" in misuse.why


def test_a_file_calling_with_torch_may_change_the_callee(tmp_path: Path) -> None:
    index = package(
        tmp_path, {"engine.py": ENGINE, "main.py": caller("from pkg.engine import train_one_epoch")}
    )
    assert index.may_change(str(tmp_path / "pkg" / "engine.py"), [b"torch"])


def test_a_file_nobody_with_torch_imports_cannot_change(tmp_path: Path) -> None:
    index = package(
        tmp_path,
        {"engine.py": ENGINE, "main.py": "from pkg.engine import train_one_epoch\n"},
    )
    assert not index.may_change(str(tmp_path / "pkg" / "engine.py"), [b"torch"])


def test_the_question_for_a_cheap_stage_answers_without_an_index_at_hand(tmp_path: Path) -> None:
    package(
        tmp_path, {"engine.py": ENGINE, "main.py": caller("from pkg.engine import train_one_epoch")}
    )
    assert may_change_across_files(str(tmp_path / "pkg" / "engine.py"), [b"torch"])
    assert not may_change_across_files(str(tmp_path / "pkg" / "main.py"), [b"torch"])


def test_an_imported_name_also_assigned_is_unknown(tmp_path: Path) -> None:
    index = package(
        tmp_path,
        {
            "engine.py": ENGINE,
            "main.py": caller("from pkg.engine import train_one_epoch")
            + "def other():\n    train_one_epoch = None\n",
        },
    )
    found = sites(index)
    assert isinstance(found, Unknown)
    assert "binds `train_one_epoch` more than once" in found.why


def test_a_name_imported_from_two_places_is_unknown(tmp_path: Path) -> None:
    main = caller(
        "try:\n    from pkg.engine import train_one_epoch\n"
        "except ImportError:\n    from other import train_one_epoch"
    )
    index = package(tmp_path, {"engine.py": ENGINE, "main.py": main})
    found = sites(index)
    assert isinstance(found, Unknown)
    assert "more than once" in found.why


def test_the_digest_of_dependencies_keeps_no_tree_of_the_files_it_reads(tmp_path: Path) -> None:
    index = package(
        tmp_path,
        {"engine.py": ENGINE, "main.py": caller("from pkg.engine import train_one_epoch")},
    )
    engine = str(tmp_path / "pkg" / "engine.py")
    digest = index.digest_of_dependencies(engine, (b"torch",))
    assert digest  # main.py imports the engine: its content is part of the digest
    assert (
        index._facts == {}
    )  # the import graph alone: no parsed tree held (the memory of a run filling a cache)


def test_the_imports_of_an_edited_file_are_read_again(tmp_path: Path) -> None:
    index = package(tmp_path, {"engine.py": ENGINE, "main.py": "import torch\n"})
    main = tmp_path / "pkg" / "main.py"
    assert "train_one_epoch" not in index.imports_of(str(main)).imports
    main.write_text(caller("from pkg.engine import train_one_epoch"), encoding="utf-8")
    imports = index.imports_of(str(main))
    assert imports.imports["train_one_epoch"] == "pkg.engine.train_one_epoch"
    assert imports.defines


def test_closures_found_by_components_are_the_walks(tmp_path: Path) -> None:
    # cycles (a <-> b, c -> d -> e -> c), a subpackage whose __init__ imports back, a file
    # importing itself, and chains into them: during a selection each file's closure comes
    # from the components of the import graph; it must be the breadth-first walk's set
    files = {
        "__init__.py": "",
        "a.py": "from . import b\nfrom .sub import c\n",
        "b.py": "from . import a\n",
        "sub/__init__.py": "from .. import a\n",
        "sub/c.py": "from . import d\n",
        "sub/d.py": "from . import e\n",
        "sub/e.py": "from . import c\nimport pkg.f\n",
        "f.py": "import pkg.f\n",
        "g.py": "from .sub import e\n",
        "h.py": "import os\n",
    }
    index = package(tmp_path, files)
    walked = {path: set(index.imported_closure(path)) for path in index.files}
    with selecting():
        found = {path: set(index._closure_set(path)) for path in reversed(index.files)}
    assert found == walked
    assert walked[str(tmp_path / "pkg" / "g.py")] >= {str(tmp_path / "pkg" / "a.py")}


def test_identifiers_are_the_words_the_regular_expression_finds() -> None:
    """``identifiers`` (the word table's split) finds what ``_WORD.findall`` finds: runs led
    by digits, non-ASCII bytes, every byte value, and this repository's own files."""
    samples = [
        b"",
        b"1e5 9abc _9 a1 0x1F 123 x\x00y __init__ \xc3\xa9t\xc3\xa9 caf\xc3\xa9x 7_ 42",
        bytes(range(256)),
        bytes(range(255, -1, -1)) * 2,
    ]
    here = Path(__file__).resolve().parent.parent / "ml_switcheroo"
    samples += [path.read_bytes() for path in sorted(here.rglob("*.py"))]
    for data in samples:
        assert identifiers(data) == frozenset(_WORD.findall(data))
