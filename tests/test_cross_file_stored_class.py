"""An optimizer handed to a class of another file of the repository that stores it in
``self.optimizer`` and steps it (issue 12, deliverable 1; ``analysis/stored_ast.py``): the
construction ``Trainer(model, loader, opt)`` is no hand-over when every construction in the
repository passes a translated optimizer and the class only steps and zeroes it; in the class,
``zero_grad()`` goes and ``step()`` is that optimizer's step. Anything the index cannot follow
escapes, naming the ``file:line`` that decided."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo import convert
from ml_switcheroo.analysis.prefilter import prefilter_for
from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.rewrite.report import Record
from ml_switcheroo.targets.catalogue import load_semantic_map
from tests.support import convert_in_process, run_libcst_tool, write_package

TRAINER = """\
class Trainer:
    def __init__(self, model, loader, optimizer):
        self.model = model
        self.loader = loader
        self.optimizer = optimizer{extra}

    def run_batch(self, x, y):
        self.optimizer.zero_grad()
        loss = ((self.model(x) - y) ** 2).mean()
        loss.backward()
        self.optimizer.step()

    def train(self, epochs):
        for epoch in range(epochs):
            for x, y in self.loader:
                self.run_batch(x, y)
"""

TRAINER_AFTER = """\
class Trainer:
    def __init__(self, model, loader, optimizer):
        self.model = model
        self.loader = loader
        self.optimizer = optimizer

    def run_batch(self, x, y):
        loss = ((self.model(x) - y) ** 2).mean()
        # ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.step
        # ml_switcheroo: reason: torch computes gradients into .grad (`loss.backward()`) and `self.optimizer.step()` applies them in place; JAX takes gradients of a loss function and optax returns updates to apply
        # ml_switcheroo: suggestion:
        # ml_switcheroo: |   def loss_fn(params):  # the forward pass that computes `loss`, as a function of the parameters
        # ml_switcheroo: |       ...
        # ml_switcheroo: |       return loss
        # ml_switcheroo: |   loss, grads = jax.value_and_grad(loss_fn)(params)
        # ml_switcheroo: |   updates, self.optimizer_state = self.optimizer.update(grads, self.optimizer_state, params)
        # ml_switcheroo: |   params = optax.apply_updates(params, updates)
        # ml_switcheroo: |   # once, after `self.optimizer` is built: self.optimizer_state = self.optimizer.init(params)
        loss.backward()
        self.optimizer.step()
        # ml_switcheroo: ESCAPE-END

    def train(self, epochs):
        for epoch in range(epochs):
            for x, y in self.loader:
                self.run_batch(x, y)
"""

MAIN = """\
import torch
from pkg.trainer import Trainer


def main(model, loader):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer = {construction}
    trainer.train(3){extra}
"""

MAIN_AFTER = """\
from pkg.trainer import Trainer
import optax


def main(model, loader):
    opt = optax.sgd(learning_rate=0.1, momentum=0.9)
    trainer = Trainer(model, loader, opt)
    trainer.train(3)
"""

CONSTRUCTION = "Trainer(model, loader, opt)"


def trainer(extra: str = "") -> str:
    return TRAINER.format(extra=extra)


def main(construction: str = CONSTRUCTION, extra: str = "") -> str:
    return MAIN.format(construction=construction, extra=extra)


def hand_over_reasons(records: list[Record]) -> list[str]:
    return [r.reason for r in records if r.kind == "escaped" and "`Trainer(...)` gets" in r.reason]


def untouched(outputs: dict[str, str]) -> bool:
    """Whether the class keeps its torch calls (no fact typed its optimizer)."""
    return outputs["trainer.py"] == trainer()


# ---------------------------------------------------------------------- the shape converts


def test_both_files_convert(tmp_path: Path) -> None:
    write_package(tmp_path, {"trainer.py": trainer(), "main.py": main()})
    outputs, records = convert_in_process(tmp_path)
    assert outputs["trainer.py"] == TRAINER_AFTER
    assert outputs["main.py"] == MAIN_AFTER
    assert hand_over_reasons(records) == []


def test_the_order_of_the_files_changes_nothing(tmp_path: Path) -> None:
    write_package(tmp_path, {"trainer.py": trainer(), "main.py": main()})
    assert convert_in_process(tmp_path, order=-1)[0] == convert_in_process(tmp_path)[0]


def test_the_class_converted_after_its_constructor_was_written_is_the_same(
    tmp_path: Path,
) -> None:
    write_package(tmp_path, {"trainer.py": trainer(), "main.py": MAIN_AFTER})
    outputs, _ = convert_in_process(tmp_path)
    assert outputs["trainer.py"] == TRAINER_AFTER


def test_the_constructor_converted_after_the_class_was_written_is_the_same(
    tmp_path: Path,
) -> None:
    write_package(tmp_path, {"trainer.py": TRAINER_AFTER, "main.py": main()})
    outputs, _ = convert_in_process(tmp_path)
    assert outputs["main.py"] == MAIN_AFTER


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    write_package(tmp_path, {"trainer.py": TRAINER_AFTER, "main.py": MAIN_AFTER})
    outputs, _ = convert_in_process(tmp_path)
    assert outputs == {"__init__.py": "", "trainer.py": TRAINER_AFTER, "main.py": MAIN_AFTER}


def test_the_class_file_has_no_bytes_the_prefilter_needs() -> None:
    """So ``convert`` keeps it only through ``may_change_through_other_files``."""
    assert not prefilter_for(load_semantic_map()).matches(trainer().encode())


def test_libcst_tool_rewrites_both_files(tmp_path: Path) -> None:
    write_package(tmp_path, {"trainer.py": trainer(), "main.py": main()})
    run_libcst_tool(tmp_path, "optimizer.TorchToOptax")
    assert (tmp_path / "pkg" / "trainer.py").read_text(encoding="utf-8") == TRAINER_AFTER
    assert (tmp_path / "pkg" / "main.py").read_text(encoding="utf-8") == MAIN_AFTER


@pytest.mark.parametrize("cache_flag", ["--no-cache", "--cache=.cache"])
def test_convert_in_place_rewrites_both_files_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_flag: str
) -> None:
    write_package(tmp_path, {"trainer.py": trainer(), "main.py": main()})
    monkeypatch.chdir(tmp_path)
    assert convert.main(["-j", "1", "-q", "--check", cache_flag, "."]) == 1
    assert convert.main(["-j", "1", "-q", "-i", cache_flag, "."]) == 0
    assert (tmp_path / "pkg" / "trainer.py").read_text(encoding="utf-8") == TRAINER_AFTER
    assert (tmp_path / "pkg" / "main.py").read_text(encoding="utf-8") == MAIN_AFTER


def test_a_cached_run_sees_a_construction_added_in_another_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_package(tmp_path, {"trainer.py": trainer(), "main.py": main()})
    monkeypatch.chdir(tmp_path)
    assert convert.main(["-j", "1", "-q", "--check", "--cache=.cache", "."]) == 1
    other = "\n\n\ndef other(model, loader):\n    return Trainer(model, loader, None)"
    (tmp_path / "pkg" / "main.py").write_text(main(extra=other), encoding="utf-8")
    capsys.readouterr()
    convert.main(["-j", "1", "-q", "--diff", "--cache=.cache", "."])
    diff = capsys.readouterr().out
    assert "main.py" in diff and "trainer.py" not in diff, diff


# ---------------------------------------------------------------------- trap twins


def assert_hand_over(tmp_path: Path, files: dict[str, str], place: str) -> None:
    """``Trainer(...)`` in main.py keeps its escape, naming ``place``; the class is left."""
    write_package(tmp_path, files)
    outputs, records = convert_in_process(tmp_path)
    reasons = hand_over_reasons(records)
    assert reasons and place in reasons[0], reasons
    assert untouched(outputs), outputs["trainer.py"]


def test_another_construction_passing_none_escapes(tmp_path: Path) -> None:
    other = "from pkg.trainer import Trainer\n\n\ndef other(model, loader):\n"
    other += "    return Trainer(model, loader, None)\n"
    files = {"trainer.py": trainer(), "main.py": main(), "other.py": other}
    assert_hand_over(tmp_path, files, "pkg/other.py:5 passes `None`")


def test_another_construction_passing_an_escaped_lbfgs_escapes(tmp_path: Path) -> None:
    other = "import torch\nfrom pkg.trainer import Trainer\n\n\ndef other(model, loader):\n"
    other += "    opt = torch.optim.LBFGS(model.parameters())\n"
    other += "    return Trainer(model, loader, opt)\n"
    files = {"trainer.py": trainer(), "main.py": main(), "other.py": other}
    assert_hand_over(tmp_path, files, "pkg/other.py:7 passes `torch.optim.LBFGS(...)`")


def test_a_scheduler_built_in_the_class_escapes(tmp_path: Path) -> None:
    extra = "\n        self.sched = torch.optim.lr_scheduler.StepLR(self.optimizer, 10)"
    files = {"trainer.py": "import torch\n" + trainer(extra), "main.py": main()}
    write_package(tmp_path, files)
    outputs, records = convert_in_process(tmp_path)
    reasons = hand_over_reasons(records)
    assert reasons and "pkg/trainer.py:7 uses `self.optimizer` otherwise" in reasons[0], reasons
    assert "self.optimizer.zero_grad()" in outputs["trainer.py"]


def test_the_attribute_read_in_another_file_escapes(tmp_path: Path) -> None:
    files = {"trainer.py": trainer(), "main.py": main(extra="\n    print(trainer.optimizer)")}
    assert_hand_over(tmp_path, files, "pkg/main.py:9 reads `.optimizer` outside the class")


def test_setattr_on_the_instance_in_another_file_escapes(tmp_path: Path) -> None:
    extra = "\n    setattr(trainer, 'optimizer', None)"
    files = {"trainer.py": trainer(), "main.py": main(extra=extra)}
    assert_hand_over(tmp_path, files, "pkg/main.py:9 `setattr(...)` reaches an attribute")


def test_a_subclass_in_another_file_escapes(tmp_path: Path) -> None:
    sub = "from pkg.trainer import Trainer\n\n\nclass Sub(Trainer):\n    pass\n"
    files = {"trainer.py": trainer(), "main.py": main(), "sub.py": sub}
    assert_hand_over(tmp_path, files, "pkg/sub.py:4 uses it without calling it")


def test_the_attribute_stored_on_an_instance_in_another_file_escapes(tmp_path: Path) -> None:
    sub = (
        "from pkg.trainer import Trainer\n\n\ndef make(model, loader, opt, other):\n"
        "    t = Trainer(model, loader, opt)\n    t.optimizer = other\n    return t\n"
    )
    files = {"trainer.py": trainer(), "main.py": main(), "sub.py": sub}
    assert_hand_over(tmp_path, files, "pkg/sub.py:6 stores `.optimizer` again")


def test_a_star_import_of_the_class_escapes(tmp_path: Path) -> None:
    star = "from pkg.trainer import *\n\n\ndef other(model, loader, opt):\n"
    star += "    return Trainer(model, loader, opt)\n"
    files = {"trainer.py": trainer(), "main.py": main(), "star.py": star}
    assert_hand_over(tmp_path, files, "pkg/star.py:1 imports `*` from `pkg.trainer`")


def test_the_class_used_as_a_value_in_another_file_escapes(tmp_path: Path) -> None:
    other = "from pkg.trainer import Trainer\n\nFACTORIES = {'default': Trainer}\n"
    files = {"trainer.py": trainer(), "main.py": main(), "other.py": other}
    assert_hand_over(tmp_path, files, "pkg/other.py:3 uses it without calling it")


# ---------------------------------------------------------------------- NNX


NNX_TRAINER_STEP = """\
    def run_batch(self, x, y):
        def loss_fn(model):
            loss = ((model(x) - y) ** 2).mean()
            return loss
        loss, grads = nnx.value_and_grad(loss_fn)(self.model)
        self.optimizer.update(self.model, grads)
"""


def nnx_step_converted(text: str) -> bool:
    return NNX_TRAINER_STEP in text


def test_nnx_converts_the_step_in_the_class(tmp_path: Path) -> None:
    write_package(tmp_path, {"trainer.py": trainer(), "main.py": main()})
    outputs, _ = convert_in_process(tmp_path, TorchToNNX)
    assert nnx_step_converted(outputs["trainer.py"]), outputs["trainer.py"]
    assert "nnx.Optimizer(model, optax.sgd(" in outputs["main.py"]
    assert convert_in_process(tmp_path, TorchToNNX, order=-1)[0] == outputs


def test_nnx_each_file_converted_after_the_other_was_written_is_the_same(
    tmp_path: Path,
) -> None:
    write_package(tmp_path, {"trainer.py": trainer(), "main.py": main()})
    outputs, _ = convert_in_process(tmp_path, TorchToNNX)
    write_package(tmp_path, {"main.py": outputs["main.py"]})
    assert convert_in_process(tmp_path, TorchToNNX)[0]["trainer.py"] == outputs["trainer.py"]
    write_package(tmp_path, {"main.py": main(), "trainer.py": outputs["trainer.py"]})
    assert convert_in_process(tmp_path, TorchToNNX)[0]["main.py"] == outputs["main.py"]


def test_nnx_a_construction_passing_another_model_escapes_the_step(tmp_path: Path) -> None:
    construction = "Trainer(torch.nn.Linear(2, 1), loader, opt)"
    write_package(tmp_path, {"trainer.py": trainer(), "main.py": main(construction)})
    outputs, _ = convert_in_process(tmp_path, TorchToNNX)
    assert not nnx_step_converted(outputs["trainer.py"])
    assert "pkg/main.py:7 passes no plain names" in outputs["trainer.py"], outputs["trainer.py"]


def test_nnx_the_model_stored_again_in_another_file_escapes_the_step(tmp_path: Path) -> None:
    main_text = main(extra="\n    trainer.model = None")
    write_package(tmp_path, {"trainer.py": trainer(), "main.py": main_text})
    outputs, _ = convert_in_process(tmp_path, TorchToNNX)
    assert not nnx_step_converted(outputs["trainer.py"])
    assert "pkg/main.py:9 stores `.model` again" in outputs["trainer.py"], outputs["trainer.py"]


def test_nnx_a_wrapped_model_escapes_naming_the_line(tmp_path: Path) -> None:
    extra = "\n        self.model = torch.nn.parallel.DistributedDataParallel(self.model)"
    write_package(tmp_path, {"trainer.py": "import torch\n" + trainer(extra), "main.py": main()})
    outputs, _ = convert_in_process(tmp_path, TorchToNNX)
    assert not nnx_step_converted(outputs["trainer.py"])
    assert "`self.model` holds more than one object" in outputs["trainer.py"]
    assert "at trainer.py:7" in outputs["trainer.py"], outputs["trainer.py"]
