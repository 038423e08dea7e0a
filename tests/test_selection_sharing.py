"""What the pre-filter stages of ``convert`` share while they select files (issue 14): the
bytes the byte filter read (the ``ast`` stage and the repository index take them, not the
file again), answers about the repository kept for the selection only
(``repository.selecting``), and a table of each file's ``def`` names read once. Every shared
answer is the one asked without the sharing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ml_switcheroo import convert
from ml_switcheroo.analysis import cross_file, method_builders, repository
from ml_switcheroo.analysis.repository import index_for, remembered, selecting
from ml_switcheroo.analysis.second_stage import second_stage_for
from ml_switcheroo.codemods.optimizer import TorchToOptax
from ml_switcheroo.targets.catalogue import load_semantic_map
from tests.support import write_package
from tests.test_convert_cli import run, summary_numbers

KEPT = b"import torch\nopt = torch.optim.SGD(params, lr=0.1)\n"
DROPPED = b"import torch\nx = torch.zeros(3)\n"


@pytest.fixture(autouse=True)
def _fresh_indexes() -> None:
    index_for.cache_clear()


def _stage_keeps(path: Path, data: bytes | None) -> bool:
    stage = second_stage_for(load_semantic_map(), TorchToOptax.HOOKS)
    return convert._stage_keeps(str(path), stage, None, data)


# --------------------------------------------------------------------------- remembered answers


def test_an_answer_is_asked_once_while_selecting() -> None:
    asked: list[int] = []
    with selecting():
        answers = [remembered("q", lambda: asked.append(1) or len(asked)) for _ in range(3)]
    assert answers == [1, 1, 1] and len(asked) == 1


def test_an_answer_is_asked_every_time_outside_a_selection() -> None:
    asked: list[int] = []
    with selecting():
        remembered("q", lambda: asked.append(1) or len(asked))
    assert remembered("q", lambda: asked.append(1) or len(asked)) == 2
    assert remembered("q", lambda: asked.append(1) or len(asked)) == 3


def test_the_conversion_runs_outside_the_selection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_package(tmp_path, {"train.py": KEPT.decode()})
    during: list[bool] = []
    real = convert._convert

    def spy(*args: object, **kwargs: object) -> dict[str, dict[str, object]]:
        during.append(repository.is_selecting())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(convert, "_convert", spy)
    code, _, _ = run(capsys, "--check", "--no-cache", "pkg", cwd=tmp_path)
    assert code == 1 and during == [False]


# --------------------------------------------------------------------------- the bytes read once


def test_the_stage_decides_on_the_bytes_the_byte_filter_read(tmp_path: Path) -> None:
    path = tmp_path / "train.py"
    path.write_bytes(DROPPED)  # changed on disk after the byte filter read KEPT
    assert _stage_keeps(path, KEPT) is True
    path.write_bytes(KEPT)
    assert _stage_keeps(path, DROPPED) is False


def test_the_stage_reads_a_file_it_was_not_handed(tmp_path: Path) -> None:
    path = tmp_path / "train.py"
    path.write_bytes(KEPT)
    assert _stage_keeps(path, None) is True


def test_the_stage_keeps_a_file_it_cannot_read(tmp_path: Path) -> None:
    assert _stage_keeps(tmp_path / "gone.py", None) is True


def _prescan(path: Path) -> tuple[str, object, bytes | None]:
    stages = convert._Stages({"prefilter": True})
    return convert._prescan(str(path), stages, None, None, "check")


def test_the_prescan_hands_its_bytes_to_the_repository_index(tmp_path: Path) -> None:
    write_package(tmp_path, {"train.py": KEPT.decode()})
    path = tmp_path / "pkg" / "train.py"
    _, _, data = _prescan(path)
    assert data == KEPT
    assert index_for(str(tmp_path)).source(str(path)) is data


def test_the_index_reads_a_file_changed_after_the_prescan_again(tmp_path: Path) -> None:
    write_package(tmp_path, {"train.py": KEPT.decode()})
    path = tmp_path / "pkg" / "train.py"
    _prescan(path)
    path.write_bytes(DROPPED + b"# longer\n")
    assert index_for(str(tmp_path)).source(str(path)) == DROPPED + b"# longer\n"


def test_the_prescan_hands_nothing_without_the_stages(tmp_path: Path) -> None:
    write_package(tmp_path, {"train.py": KEPT.decode()})
    path = tmp_path / "pkg" / "train.py"
    stages = convert._Stages({"prefilter": False})
    _, _, data = convert._prescan(str(path), stages, None, None, "check")
    assert data == KEPT
    assert index_for(str(tmp_path)).sources_read() == {}


# --------------------------------------------------------------------------- `def` names


def _per_method(method: str, data: bytes) -> bool:
    """The pattern each method was looked for with before the table (one search per method)."""
    pattern = rb"\bdef[\s\\]+" + re.escape(method.encode()) + rb"[\s\\]*[(\[]"
    return re.search(pattern, data) is not None


SAMPLES = [
    b"class A:\n    def configure(self):\n        pass\n",
    b"def  configure (x): pass\n",
    b"def \\\n    configure[T](x): pass\n",
    b"undef configure(x)\n",
    b"x = 'def configure('\n",
    b"def configure_more(x): pass\n",
    b"def def configure(x)\n",
    b"def deffoo(x): pass\ndef\tfoo(y): pass\n",
    b"async def configure(x): pass\n",
    b"def configure\n(x)\n",
    b"defconfigure(x)\n",
]


@pytest.mark.parametrize("data", SAMPLES)
def test_the_def_table_finds_what_the_per_method_pattern_found(data: bytes) -> None:
    names = method_builders._defined_names("m.py", data)
    for method in ("configure", "configure_more", "foo", "deffoo", "def", "x"):
        assert (method.encode() in names) == _per_method(method, data), method


def test_the_def_table_follows_a_file_changed_between_reads() -> None:
    assert b"configure" in method_builders._defined_names("m.py", SAMPLES[0])
    assert b"configure" not in method_builders._defined_names("m.py", b"x = 1\n")


MODEL = """\
import torch


class GPT:
    def configure_optimizers(self, lr):
        return torch.optim.AdamW(self.parameters(), lr=lr)

    def helper(self):
        return 1
"""

OTHER = """\
class Other:
    def unrelated(self):
        return 2

    def helper(self):
        return 3
"""


def test_methods_that_may_build_are_the_same_while_selecting(tmp_path: Path) -> None:
    write_package(tmp_path, {"model.py": MODEL, "other.py": OTHER})
    index = index_for(str(tmp_path))
    words = cross_file._constructor_words(load_semantic_map(), "optax")
    methods = ["configure_optimizers", "helper", "unrelated", "missing", "déf", "GPT"]
    outside = [cross_file._may_build_in_a_method(index, m, words) for m in methods]
    with selecting():
        inside = [cross_file._may_build_in_a_method(index, m, words) for m in methods]
    assert inside == outside == [True, True, False, False, False, False]


TRAIN = """\
from pkg.model import GPT

model = GPT(conf)
optimizer = model.configure_optimizers(6e-4)
for batch in loader:
    model(batch).backward()
    optimizer.step()
    optimizer.zero_grad()
"""


def test_a_file_typed_by_a_method_builder_is_kept_by_the_selection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_package(tmp_path, {"model.py": MODEL, "train.py": TRAIN, "other.py": OTHER})
    code, _, err = run(capsys, "--check", "--no-cache", "pkg", cwd=tmp_path)
    assert code == 1
    assert "would convert pkg/train.py" in err
    assert summary_numbers(err)["parsed"] == 2  # model.py and train.py


def test_a_question_asked_by_two_files_is_answered_alike(tmp_path: Path) -> None:
    """``method_call_type`` through two files' ``CrossFile`` during one selection: the second
    takes the first's answer, equal to one asked without the selection."""
    write_package(tmp_path, {"model.py": MODEL, "train.py": TRAIN, "b.py": TRAIN})
    semantic_map = load_semantic_map()
    paths = [str(tmp_path / "pkg" / name) for name in ("train.py", "b.py")]
    outside = [cross_file.may_change_through_other_files(p, semantic_map, "optax") for p in paths]
    index_for.cache_clear()
    with selecting():
        inside = [
            cross_file.may_change_through_other_files(p, semantic_map, "optax") for p in paths
        ]
    assert inside == outside == [True, True]


@pytest.mark.parametrize("method", ["configure_optimizers", "helper", "unrelated", "missing"])
def test_a_method_builder_is_positive_alike_while_selecting(tmp_path: Path, method: str) -> None:
    """Inside a selection the files are parsed smallest first: the same builder, or no
    builder (an ``Unknown`` or None), as in the engine's order."""
    write_package(tmp_path, {"model.py": MODEL, "other.py": OTHER})
    index = index_for(str(tmp_path))
    outside = method_builders.method_builder(index, method)
    with selecting():
        inside = method_builders.method_builder(index, method)
    builder = method_builders.MethodBuilder
    assert isinstance(inside, builder) == isinstance(outside, builder)
    if isinstance(inside, builder) and isinstance(outside, builder):
        assert (inside.path, inside.owner) == (outside.path, outside.owner)
    assert isinstance(outside, builder) == (method in ("configure_optimizers", "unrelated"))
