"""The cache's repository records (``ml_switcheroo.app.cache.Repository``): the cross-file
answers of a second run come from the record while the repository's files are unchanged, and
are computed again, to the answer of an uncached run, when one is edited, added, removed or
renamed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ml_switcheroo.app import cache
from tests.test_cache import open_run_cache, report_of, second_run_opened
from tests.test_convert_cli import tree
from tests.test_cross_file import BUILDERS, ENGINE, FIT, LBFGS_CALLER, MAIN

# A builder whose optimizer the map always escapes: its caller (FIT) has nothing to change.
LBFGS_BUILDERS = BUILDERS.replace(
    "torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.05)",
    "torch.optim.LBFGS(model.parameters())",
)
PACKAGE = {"pkg/__init__.py": ""}


@pytest.fixture
def trusting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by the test count as old enough to be known by their stat."""
    monkeypatch.setattr(cache, "RACY_NS", -(10**18))


def cached_and_uncached(capsys: pytest.CaptureFixture[str], root: Path) -> tuple[str, str]:
    """The JSON reports of a cached and an uncached ``--check`` run over ``root/src``."""
    cached = report_of(capsys, root, "--cache", ".c")[1]
    return cached, report_of(capsys, root, "--no-cache")[1]


def changes(report: str, name: str) -> bool:
    """Whether the report says ``src/pkg/<name>`` would change."""
    files = json.loads(report)["files"]
    return any(f["file"] == f"src/pkg/{name}" and f["changed"] for f in files)


# --------------------------------------------------------------------------- edits


def test_an_edited_builder_makes_its_pre_filtered_caller_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    tree(tmp_path / "src", {**PACKAGE, "pkg/builders.py": LBFGS_BUILDERS, "pkg/train.py": FIT})
    assert not changes(report_of(capsys, tmp_path, "--cache", ".c")[1], "train.py")
    (tmp_path / "src" / "pkg" / "builders.py").write_text(BUILDERS, encoding="utf-8")
    cached, uncached = cached_and_uncached(capsys, tmp_path)
    assert changes(cached, "train.py") and cached == uncached


def test_an_edited_builder_stops_its_caller_changing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    tree(tmp_path / "src", {**PACKAGE, "pkg/builders.py": BUILDERS, "pkg/train.py": FIT})
    assert changes(report_of(capsys, tmp_path, "--cache", ".c")[1], "train.py")
    (tmp_path / "src" / "pkg" / "builders.py").write_text(LBFGS_BUILDERS, encoding="utf-8")
    cached, uncached = cached_and_uncached(capsys, tmp_path)
    assert not changes(cached, "train.py") and cached == uncached


def test_a_touched_builder_with_the_same_bytes_is_the_only_source_read_again(
    tmp_path: Path,
) -> None:
    layout = {**PACKAGE, "pkg/builders.py": BUILDERS, "pkg/train.py": FIT}
    touch = "import os; os.utime('src/pkg/builders.py', ns=(10**18, 10**18))"
    code, opened = second_run_opened(tmp_path, layout, touch)
    assert code == "1" and set(opened) == {"pkg/builders.py"}


def test_a_touched_builder_with_the_same_bytes_gives_the_same_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    tree(tmp_path / "src", {**PACKAGE, "pkg/builders.py": BUILDERS, "pkg/train.py": FIT})
    first = report_of(capsys, tmp_path, "--cache", ".c")[1]
    os.utime(tmp_path / "src" / "pkg" / "builders.py", ns=(10**18, 10**18))
    assert report_of(capsys, tmp_path, "--cache", ".c")[1] == first


# --------------------------------------------------------------------------- files come and go


def test_an_added_caller_passing_lbfgs_stops_the_callee_changing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    tree(tmp_path / "src", {**PACKAGE, "pkg/engine.py": ENGINE, "pkg/main.py": MAIN})
    assert changes(report_of(capsys, tmp_path, "--cache", ".c")[1], "engine.py")
    tree(tmp_path / "src", {"pkg/finetune.py": LBFGS_CALLER})
    cached, uncached = cached_and_uncached(capsys, tmp_path)
    assert not changes(cached, "engine.py") and cached == uncached


def test_an_added_file_calling_the_builder_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    tree(tmp_path / "src", {**PACKAGE, "pkg/builders.py": BUILDERS, "pkg/train.py": FIT})
    report_of(capsys, tmp_path, "--cache", ".c")
    tree(tmp_path / "src", {"pkg/train2.py": FIT.replace("def fit", "def fit2")})
    cached, uncached = cached_and_uncached(capsys, tmp_path)
    assert changes(cached, "train2.py") and cached == uncached


def test_a_deleted_caller_passing_lbfgs_lets_the_callee_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    layout = {"pkg/engine.py": ENGINE, "pkg/main.py": MAIN, "pkg/finetune.py": LBFGS_CALLER}
    tree(tmp_path / "src", {**PACKAGE, **layout})
    assert not changes(report_of(capsys, tmp_path, "--cache", ".c")[1], "engine.py")
    (tmp_path / "src" / "pkg" / "finetune.py").unlink()
    cached, uncached = cached_and_uncached(capsys, tmp_path)
    assert changes(cached, "engine.py") and cached == uncached


def test_a_renamed_builder_file_stops_its_caller_changing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    tree(tmp_path / "src", {**PACKAGE, "pkg/builders.py": BUILDERS, "pkg/train.py": FIT})
    assert changes(report_of(capsys, tmp_path, "--cache", ".c")[1], "train.py")
    pkg = tmp_path / "src" / "pkg"
    (pkg / "builders.py").rename(pkg / "optimizers.py")
    cached, uncached = cached_and_uncached(capsys, tmp_path)
    assert not changes(cached, "train.py") and cached == uncached


# --------------------------------------------------------------------------- the record itself


def test_a_file_edited_after_the_listing_leaves_no_record(tmp_path: Path, trusting: None) -> None:
    tree(tmp_path / "src", {**PACKAGE, "pkg/builders.py": BUILDERS, "pkg/train.py": FIT})
    run_cache = open_run_cache(tmp_path)
    train = tmp_path / "src" / "pkg" / "train.py"
    run_cache.across_files(cache.FACTS, str(train), lambda: "answer")
    (tmp_path / "src" / "pkg" / "builders.py").write_text(BUILDERS + "# edited\n")
    run_cache.save_repositories()
    assert not (tmp_path / ".c" / "v1" / "repositories").exists()


def test_a_recorded_answer_is_served_while_the_files_are_unchanged(
    tmp_path: Path, trusting: None
) -> None:
    tree(tmp_path / "src", {**PACKAGE, "pkg/builders.py": BUILDERS, "pkg/train.py": FIT})
    train = str(tmp_path / "src" / "pkg" / "train.py")
    first = open_run_cache(tmp_path)
    first.across_files(cache.FACTS, train, lambda: "recorded")
    first.save_repositories()
    assert open_run_cache(tmp_path).across_files(cache.FACTS, train, lambda: "new") == "recorded"


def test_a_recorded_answer_is_not_served_after_an_edit(tmp_path: Path, trusting: None) -> None:
    tree(tmp_path / "src", {**PACKAGE, "pkg/builders.py": BUILDERS, "pkg/train.py": FIT})
    train = str(tmp_path / "src" / "pkg" / "train.py")
    first = open_run_cache(tmp_path)
    first.across_files(cache.FACTS, train, lambda: "recorded")
    first.save_repositories()
    (tmp_path / "src" / "pkg" / "builders.py").write_text(BUILDERS + "# edited\n")
    assert open_run_cache(tmp_path).across_files(cache.FACTS, train, lambda: "new") == "new"


def test_a_record_with_an_answer_of_the_wrong_type_is_a_miss(
    tmp_path: Path, trusting: None
) -> None:
    tree(tmp_path / "src", {**PACKAGE, "pkg/train.py": FIT})
    train = str(tmp_path / "src" / "pkg" / "train.py")
    first = open_run_cache(tmp_path)
    first.across_files(cache.MAY_CHANGE, train, lambda: "not a bool")
    first.save_repositories()
    assert open_run_cache(tmp_path).across_files(cache.MAY_CHANGE, train, lambda: True) is True


# --------------------------------------------------------------------------- linked-file facts

STAR_MAIN = (
    "import torch\nfrom torch.optim import SGD\nfrom pkg.other import *\n\n"
    "model = make_model()\nopt = SGD(model.parameters(), lr=0.1)\n"
)


def reason_of(report: str, name: str, api: str) -> str:
    """The reason of the record of ``api`` in ``src/pkg/<name>`` ("" when converted)."""
    records = json.loads(report)["records"]
    (found,) = [r for r in records if r["file"] == f"src/pkg/{name}" and r["api"] == api]
    return found["reason"]


def test_an_edit_of_a_star_imported_module_is_read_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    # what `from pkg.other import *` binds decides main's SGD (probe s33 C1): the cache's
    # answer for main follows the star-imported file
    other = "def helper():\n    return 1\n"
    tree(tmp_path / "src", {**PACKAGE, "pkg/other.py": other, "pkg/main.py": STAR_MAIN})
    first = report_of(capsys, tmp_path, "--cache", ".c")[1]
    assert reason_of(first, "main.py", "torch.optim.SGD") == ""
    (tmp_path / "src" / "pkg" / "other.py").write_text(other + "SGD = None\n", encoding="utf-8")
    cached, uncached = cached_and_uncached(capsys, tmp_path)
    assert "(`import *`)" in reason_of(cached, "main.py", "torch.optim.SGD")
    assert cached == uncached


def test_an_edit_of_an_imported_file_adding_a_patch_is_read_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trusting: None
) -> None:
    main = "import torch\nimport pkg.patch\n\nmodel = make_model()\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    tree(tmp_path / "src", {**PACKAGE, "pkg/patch.py": "import torch\n", "pkg/main.py": main})
    assert (
        reason_of(report_of(capsys, tmp_path, "--cache", ".c")[1], "main.py", "torch.optim.SGD")
        == ""
    )
    patched = "import torch\ntorch.optim.SGD = MySGD\n"
    (tmp_path / "src" / "pkg" / "patch.py").write_text(patched, encoding="utf-8")
    cached, uncached = cached_and_uncached(capsys, tmp_path)
    assert "replaces torch's" in reason_of(cached, "main.py", "torch.optim.SGD")
    assert cached == uncached
