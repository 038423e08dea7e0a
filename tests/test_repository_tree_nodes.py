"""One walk per parsed file (issue 14): ``analysis/ast_nodes.py`` and the repository index's
``TreeNodes``, which answer the cross-file questions in the order a walk of the whole file
would (the first place that makes a fact unknown is the one named)."""

from __future__ import annotations

import ast
from pathlib import Path

import ml_switcheroo
from ml_switcheroo.analysis import ast_nodes
from ml_switcheroo.analysis.cross_file import CrossFile, cross_file_methods
from ml_switcheroo.analysis.repository import RepositoryIndex, Unknown, calls_of
from ml_switcheroo.targets.catalogue import DEFAULT_TARGET, load_semantic_map
from tests.support import write_package

SOURCES = sorted(Path(ml_switcheroo.__file__).parent.rglob("*.py"))


def index_of(root: Path, files: dict[str, str]) -> RepositoryIndex:
    """``files`` written under ``root/pkg`` (a package); the index of ``root``."""
    return RepositoryIndex(str(write_package(root, files)))


def test_walk_is_ast_walk_without_expression_contexts() -> None:
    for path in SOURCES:
        tree = ast.parse(path.read_bytes())
        expected = [n for n in ast.walk(tree) if not isinstance(n, ast.expr_context)]
        assert [id(n) for n in ast_nodes.walk(tree)] == [id(n) for n in expected], path


def test_walk_records_every_parent_but_of_contexts() -> None:
    tree = ast.parse(SOURCES[0].read_bytes())
    parents: dict[int, ast.AST] = {}
    ast_nodes.walk_with_parents(tree, parents)
    expected = {
        id(child): node
        for node in ast.walk(tree)
        for child in ast.iter_child_nodes(node)
        if not isinstance(child, ast.expr_context)
    }
    assert parents == expected


def test_calls_of_counts_what_a_walk_counts(tmp_path: Path) -> None:
    index = index_of(
        tmp_path,
        {
            "engine.py": "def train(o):\n    o.step()\n",
            "main.py": (
                "from pkg.engine import train\nimport pkg.engine as e\n"
                "train(a)\ne.train(b)\nf(train)\nx = [train(c) for c in d]\n"
            ),
        },
    )
    assert calls_of(index, "pkg.engine", "train") == 3


def test_the_first_unknown_in_walk_order_is_named(tmp_path: Path) -> None:
    """A `getattr` by name on line 6, a use as a value on line 4 (less deep in the tree: an
    `ast.walk` meets it first): the use is named, as by a walk of the whole file."""
    index = index_of(
        tmp_path,
        {
            "engine.py": "def train(o):\n    o.step()\n",
            "main.py": (
                "from pkg.engine import train\nimport torch\nimport pkg.engine as e\n"
                "handler = train\n"
                "def go(m):\n    getattr(e, 'train')(m, torch.optim.SGD(m.parameters()))\n"
            ),
        },
    )
    found = index.call_sites("pkg.engine", "train", "o")
    assert isinstance(found, Unknown)
    assert (found.place.line, found.why) == (4, "uses it without calling it")


def test_tree_nodes_are_built_once_per_file_content(tmp_path: Path) -> None:
    index = index_of(tmp_path, {"engine.py": "def train(o):\n    o.step()\n"})
    facts = index.facts(str(tmp_path / "pkg" / "engine.py"))
    assert facts.nodes() is facts.nodes()


def test_a_changed_file_gets_new_tree_nodes(tmp_path: Path) -> None:
    index = index_of(tmp_path, {"engine.py": "def train(o):\n    o.step()\n"})
    path = str(tmp_path / "pkg" / "engine.py")
    before = index.facts(path).nodes()
    Path(path).write_text("def train(o):\n    o.step()\n    o.zero_grad()\n", encoding="utf-8")
    assert index.facts(path).nodes() is not before


def cross_file(index: RepositoryIndex, path: Path) -> CrossFile:
    semantic_map = load_semantic_map((), DEFAULT_TARGET)
    methods = cross_file_methods(semantic_map)
    return CrossFile(index, str(path), semantic_map, lambda p, n: True, methods, "optax")


def test_a_callee_file_naming_no_scheduler_is_not_parsed_for_a_factory(tmp_path: Path) -> None:
    index = index_of(
        tmp_path,
        {"util.py": "def build(optimizer, n):\n    return helper(optimizer, n)\n", "main.py": ""},
    )
    asking = cross_file(index, tmp_path / "pkg" / "main.py")
    assert asking.factory_of("pkg.util.build") is None
    assert str(tmp_path / "pkg" / "util.py") not in index._facts


def test_a_factory_importing_its_scheduler_under_another_name_is_read(tmp_path: Path) -> None:
    index = index_of(
        tmp_path,
        {
            "util.py": (
                "from torch.optim.lr_scheduler import StepLR as S\n"
                "def build(optimizer, n):\n    return S(optimizer, step_size=n)\n"
            ),
            "main.py": "",
        },
    )
    found = cross_file(index, tmp_path / "pkg" / "main.py").factory_of("pkg.util.build")
    assert found is not None and found[0].constructor == "torch.optim.lr_scheduler.StepLR"


# ``imported_freeze`` walks the imported closure one breadth at a time (issue 14: torch's
# ``torch/__init__.py`` freezes through a computed ``setattr``: its importers stopped there,
# after 1,213 files of torch had been parsed for their imports).
FREEZING_CHAIN = {
    "main.py": "from pkg import helpers, middle\nimport torch\nopt = torch.optim.SGD(p, lr=0.1)\n",
    "helpers.py": "import torch\nLAYER.requires_grad_(False)\n",
    "middle.py": "from pkg import deep\n",
    "deep.py": "from pkg import deeper\n",
    "deeper.py": "X = 1\n",
}


def test_the_imported_closure_is_walked_in_its_order(tmp_path: Path) -> None:
    index = index_of(tmp_path, FREEZING_CHAIN)
    main = str(tmp_path / "pkg" / "main.py")
    walked = list(index.walk_imported_closure(main))
    assert walked == index.imported_closure(main)
    names = ["__init__.py", "helpers.py", "middle.py", "deep.py", "deeper.py"]
    assert [Path(p).name for p in walked] == names  # the package's __init__.py first


def test_a_freeze_in_a_directly_imported_file_stops_the_walk(tmp_path: Path) -> None:
    index = index_of(tmp_path, FREEZING_CHAIN)
    found = cross_file(index, tmp_path / "pkg" / "main.py").imported_freeze(
        load_semantic_map((), DEFAULT_TARGET).parameters
    )
    assert found == "LAYER.requires_grad_(False)` in `pkg/helpers.py:2"
    read = {Path(p).name for p in index._imports} | {Path(p).name for p in index._facts}
    assert "deeper.py" not in read and "deep.py" not in read, read


def test_a_freezer_named_only_deep_in_the_closure_is_found_after_the_whole_walk(
    tmp_path: Path,
) -> None:
    """The twin: ``helpers.freeze_all`` freezes, and only ``deeper.py`` names it (the file
    runs it through the closure): the rest of the walk is read, and the freeze escapes."""
    files = {
        **FREEZING_CHAIN,
        "helpers.py": "def freeze_all(m):\n    m.requires_grad_(False)\n",
        "deeper.py": "from pkg.helpers import freeze_all\nfreeze_all(M)\n",
    }
    index = index_of(tmp_path, files)
    found = cross_file(index, tmp_path / "pkg" / "main.py").imported_freeze(
        load_semantic_map((), DEFAULT_TARGET).parameters
    )
    assert found == "m.requires_grad_(False)` in `pkg/helpers.py:2"
    unnamed = index_of(tmp_path / "twin", {**files, "deeper.py": "X = 1\n"})
    assert (
        cross_file(unnamed, tmp_path / "twin" / "pkg" / "main.py").imported_freeze(
            load_semantic_map((), DEFAULT_TARGET).parameters
        )
        is None
    )
