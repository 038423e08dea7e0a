"""An optimizer built and returned by a method of the model's class (issue 12, nanoGPT:
``optimizer = model.configure_optimizers(...)`` with ``model = GPT(conf)``): followed when
every call of the method in the repository is on an instance of its class and its value is only
stepped and zeroed; otherwise the method's ``return`` keeps its escape, naming the place."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo import convert
from ml_switcheroo.app import cache
from tests.support import convert_in_process, write_package
from tests.test_cross_file import escape_reasons
from tests.test_nnx_cross_file import convert_in_process as nnx_convert_in_process
from tests.test_nnx_cross_file import step_reasons

MODEL = """\
import torch


class GPT:
    def __init__(self, config):
        self.config = config

    def configure_optimizers(self, weight_decay, learning_rate):
        optimizer = torch.optim.AdamW(self.parameters(), lr=learning_rate, weight_decay=weight_decay)
        return optimizer
"""

MODEL_AFTER = """\
import optax


class GPT:
    def __init__(self, config):
        self.config = config

    def configure_optimizers(self, weight_decay, learning_rate):
        optimizer = optax.adamw(learning_rate=learning_rate, weight_decay=weight_decay)
        return optimizer
"""

TRAIN = """\
from pkg.model import GPT

model = GPT(conf)
optimizer = model.configure_optimizers(0.1, 6e-4)


def fit(loader):
    for batch in loader:
        loss = model(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
"""

RETURN_ESCAPE = "this code uses it as a torch optimizer: `return optimizer`"


def converted(tmp_path: Path, model: str = MODEL, train: str = TRAIN) -> tuple[dict, list[str]]:
    write_package(tmp_path, {"model.py": model, "train.py": train})
    outputs, records = convert_in_process(tmp_path)
    return outputs, escape_reasons(records)


def return_reason(reasons: list[str]) -> str:
    """The one escape of the method's ``return optimizer`` (it must be there)."""
    found = [r for r in reasons if RETURN_ESCAPE in r]
    assert len(found) == 1, reasons
    return found[0]


# ---------------------------------------------------------------------- the shape converts


def test_a_method_builder_of_another_file_converts(tmp_path: Path) -> None:
    outputs, _ = converted(tmp_path)
    assert outputs["model.py"] == MODEL_AFTER


def test_the_method_builders_caller_loses_zero_grad_and_escapes_step(tmp_path: Path) -> None:
    outputs, reasons = converted(tmp_path)
    assert "zero_grad" not in outputs["train.py"]
    assert "optimizer_state = optimizer.init(params)" in outputs["train.py"]
    assert len(reasons) == 1 and "`optimizer.step()` applies them" in reasons[0]


def test_a_method_builder_called_in_its_own_file_converts(tmp_path: Path) -> None:
    # the caller's name differs from the method's local `optimizer`: `_returned_use` reads
    # the module's nested scopes too, where a second binding of the name is a rebinding
    train = TRAIN.replace("from pkg.model import GPT\n", "")
    train = train.replace("optimizer =", "opt =").replace("optimizer.", "opt.")
    outputs, reasons = converted(tmp_path, MODEL + "\n\n" + train, "")
    assert "optimizer = optax.adamw(" in outputs["model.py"]
    assert not any(RETURN_ESCAPE in r for r in reasons)
    assert "zero_grad" not in outputs["model.py"]


def test_a_caller_naming_its_value_like_the_methods_local_converts(tmp_path: Path) -> None:
    # build-nanogpt: `optimizer = model.configure_optimizers(...)` in the file of the method,
    # whose own `optimizer` is a local of the method, another variable
    train = TRAIN.replace("from pkg.model import GPT\n", "")
    outputs, reasons = converted(tmp_path, MODEL + "\n\n" + train, "")
    assert "optimizer = optax.adamw(" in outputs["model.py"]
    assert not any(RETURN_ESCAPE in r for r in reasons)


def test_a_function_rebinding_the_callers_value_through_global_escapes(tmp_path: Path) -> None:
    train = TRAIN + "\n\ndef swap():\n    global optimizer\n    optimizer = None\n"
    _, reasons = converted(tmp_path, train=train)
    assert "pkg/train.py:17 rebinds `optimizer`" in return_reason(reasons)


def test_convert_selects_the_method_builders_caller_without_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_package(tmp_path, {"model.py": MODEL, "train.py": TRAIN})
    monkeypatch.chdir(tmp_path)
    assert convert.main(["-j", "1", "-i", "--no-cache", "-q", "."]) == 0
    assert "zero_grad" not in (tmp_path / "pkg" / "train.py").read_text(encoding="utf-8")
    assert (tmp_path / "pkg" / "model.py").read_text(encoding="utf-8") == MODEL_AFTER


def test_a_receiver_bound_on_every_branch_to_the_class_converts(tmp_path: Path) -> None:
    train = TRAIN.replace(
        "model = GPT(conf)\n", "if resume:\n    model = GPT(old)\nelse:\n    model = GPT(conf)\n"
    )
    outputs, _ = converted(tmp_path, train=train)
    assert outputs["model.py"] == MODEL_AFTER


def test_changing_the_caller_changes_the_method_builders_facts(tmp_path: Path) -> None:
    write_package(tmp_path, {"model.py": MODEL, "train.py": TRAIN})
    model = str(tmp_path / "pkg" / "model.py")
    before = cache.facts_from_other_files(model)
    (tmp_path / "pkg" / "train.py").write_text(TRAIN + "# changed\n", encoding="utf-8")
    assert cache.facts_from_other_files(model) not in ("", before)


def test_changing_the_method_builder_changes_the_callers_facts(tmp_path: Path) -> None:
    write_package(tmp_path, {"model.py": MODEL, "train.py": TRAIN})
    train = str(tmp_path / "pkg" / "train.py")
    before = cache.facts_from_other_files(train)
    (tmp_path / "pkg" / "model.py").write_text(MODEL + "# changed\n", encoding="utf-8")
    assert cache.facts_from_other_files(train) not in ("", before)


# ---------------------------------------------------------------------- trap twins escape


def test_a_method_building_lbfgs_leaves_the_caller_as_it_is(tmp_path: Path) -> None:
    model = MODEL.replace(
        "torch.optim.AdamW(self.parameters(), lr=learning_rate, weight_decay=weight_decay)",
        "torch.optim.LBFGS(self.parameters(), lr=learning_rate)",
    )
    outputs, _ = converted(tmp_path, model=model)
    assert outputs["train.py"] == TRAIN


def test_a_receiver_bound_to_two_classes_escapes_naming_the_binding(tmp_path: Path) -> None:
    train = TRAIN.replace(
        "model = GPT(conf)\n", "if big:\n    model = GPT(conf)\nelse:\n    model = Small(conf)\n"
    )
    outputs, reasons = converted(tmp_path, train=train)
    assert "pkg/train.py:6 binds `model` to `Small(conf)`, not proven a `GPT`" in (
        return_reason(reasons)
    )
    assert "zero_grad" in outputs["train.py"]


def test_a_subclass_overriding_the_method_escapes_naming_the_override(tmp_path: Path) -> None:
    model = MODEL + (
        "\n\nclass TinyGPT(GPT):\n"
        "    def configure_optimizers(self, weight_decay, learning_rate):\n"
        "        return torch.optim.SGD(self.parameters(), lr=learning_rate)\n"
    )
    outputs, reasons = converted(tmp_path, model=model)
    assert "defines `configure_optimizers` again" in " ".join(reasons)
    assert "zero_grad" in outputs["train.py"]


def test_an_override_in_another_file_spelled_with_odd_spacing_still_escapes(
    tmp_path: Path,
) -> None:
    # files are searched for `def <method>(` by bytes before parsing: spacing and line
    # continuations must not hide a second definition
    tiny = (
        "import torch\nfrom pkg.model import GPT\n\n\nclass TinyGPT(GPT):\n"
        "    def \\\n  configure_optimizers (self, weight_decay, learning_rate):\n"
        "        return torch.optim.SGD(self.parameters(), lr=learning_rate)\n"
    )
    write_package(tmp_path, {"model.py": MODEL, "tiny.py": tiny, "train.py": TRAIN})
    outputs, records = convert_in_process(tmp_path)
    assert "defines `configure_optimizers` again" in " ".join(escape_reasons(records))
    assert "zero_grad" in outputs["train.py"]


def test_a_method_returning_an_optimizer_chosen_by_an_argument_escapes(tmp_path: Path) -> None:
    model = MODEL.replace(
        "        optimizer = torch.optim.AdamW(",
        "        if weight_decay == 0:\n"
        "            return torch.optim.SGD(self.parameters(), lr=learning_rate)\n"
        "        optimizer = torch.optim.AdamW(",
    )
    outputs, reasons = converted(tmp_path, model=model)
    assert "and line 10 returns `torch.optim.SGD(...)`" in return_reason(reasons)
    assert outputs["train.py"] == TRAIN


def test_the_returned_optimizer_stored_in_a_global_list_escapes(tmp_path: Path) -> None:
    train = TRAIN.replace(
        "optimizer = model.configure_optimizers(0.1, 6e-4)\n",
        "OPTIMIZERS = []\nOPTIMIZERS.append(model.configure_optimizers(0.1, 6e-4))\n",
    )
    _, reasons = converted(tmp_path, train=train)
    assert "pkg/train.py:5 uses its value other than by assigning it to a name" in (
        return_reason(reasons)
    )


CALL = "optimizer = model.configure_optimizers(0.1, 6e-4)\n"


def rebound(before: str = "", after: str = "") -> str:
    """``TRAIN`` importing torch, with statements before and after the method's call."""
    return "import torch\n" + TRAIN.replace(CALL, before + CALL + after)


def test_a_receiver_rebound_after_the_call_converts(tmp_path: Path) -> None:
    # nanoGPT: `model = torch.compile(model)` and `model = DDP(model)` come after the call
    after = "model = torch.compile(model)\nif ddp:\n    model = DDP(model, device_ids=[0])\n"
    outputs, _ = converted(tmp_path, train=rebound(after=after))
    assert outputs["model.py"] == MODEL_AFTER


def test_a_receiver_compiled_before_the_call_converts(tmp_path: Path) -> None:
    # build-nanogpt: torch.compile's wrapper forwards `configure_optimizers` to the model
    outputs, _ = converted(tmp_path, train=rebound(before="model = torch.compile(model)\n"))
    assert outputs["model.py"] == MODEL_AFTER


def test_a_receiver_moved_to_a_device_before_the_call_converts(tmp_path: Path) -> None:
    train = rebound(before="model = model.to(device)\n").replace(
        "model = GPT(conf)", "model = GPT(conf).cuda()"
    )
    outputs, _ = converted(tmp_path, train=train)
    assert outputs["model.py"] == MODEL_AFTER


def test_a_receiver_rebound_after_the_call_in_a_loop_escapes_naming_the_binding(
    tmp_path: Path,
) -> None:
    train = TRAIN.replace(CALL, "for stage in range(2):\n    " + CALL + "    model = Small(conf)\n")
    outputs, reasons = converted(tmp_path, train=train)
    assert "pkg/train.py:6 binds `model` to `Small(conf)`, not proven a `GPT`" in (
        return_reason(reasons)
    )
    assert "zero_grad" in outputs["train.py"]


def test_a_receiver_wrapped_by_ddp_before_the_call_escapes_naming_the_binding(
    tmp_path: Path,
) -> None:
    # DDP does not forward attribute lookup to the model it wraps
    _, reasons = converted(tmp_path, train=rebound(before="model = DDP(model)\n"))
    assert "pkg/train.py:5 binds `model` to `DDP(model)`, not proven a `GPT`" in (
        return_reason(reasons)
    )


def test_a_compiled_other_model_escapes_naming_the_binding(tmp_path: Path) -> None:
    _, reasons = converted(tmp_path, train=rebound(before="model = torch.compile(other)\n"))
    assert "pkg/train.py:5 binds `model` to `torch.compile(other)`" in return_reason(reasons)


# `apply` is nn.Module's on `OptimizedModule`, not the model's method of that name; a name with
# a leading underscore may be the wrapper's own (`_orig_mod`, `_call_impl`)
@pytest.mark.parametrize("method", ["apply", "_configure"])
def test_a_method_the_compiled_wrapper_may_answer_itself_escapes(
    method: str, tmp_path: Path
) -> None:
    model = MODEL.replace("def configure_optimizers(", f"def {method}(")
    train = rebound(before="model = torch.compile(model)\n").replace(
        "model.configure_optimizers(", f"model.{method}("
    )
    _, reasons = converted(tmp_path, model=model, train=train)
    assert "pkg/train.py:5 binds `model` to `torch.compile(model)`" in return_reason(reasons)


def test_a_self_method_the_repository_redefines_escapes(tmp_path: Path) -> None:
    model = MODEL + "\n    def to(self, device):\n        return Small(self.config)\n"
    _, reasons = converted(tmp_path, model=model, train=rebound(before="model = model.to(d)\n"))
    assert "pkg/train.py:5 binds `model` to `model.to(d)`" in return_reason(reasons)


def test_a_receiver_built_by_a_classmethod_escapes_naming_the_binding(tmp_path: Path) -> None:
    train = TRAIN.replace("model = GPT(conf)", "model = GPT.from_pretrained('gpt2')")
    _, reasons = converted(tmp_path, train=train)
    assert "pkg/train.py:3 binds `model` to `GPT.from_pretrained('gpt2')`" in (
        return_reason(reasons)
    )


FROM_PRETRAINED = """

    @classmethod
    def from_pretrained(cls, name):
        model = cls(name)
        model.load(name)
        return model
"""


def test_a_receiver_built_by_a_classmethod_returning_cls_converts(tmp_path: Path) -> None:
    model = MODEL + FROM_PRETRAINED
    train = TRAIN.replace("model = GPT(conf)", "model = GPT.from_pretrained('gpt2')")
    outputs, _ = converted(tmp_path, model=model, train=train)
    assert outputs["model.py"] == MODEL_AFTER + FROM_PRETRAINED


def test_a_classmethod_returning_another_class_escapes_naming_the_binding(
    tmp_path: Path,
) -> None:
    model = MODEL + FROM_PRETRAINED.replace("cls(name)", "Other(name)")
    train = TRAIN.replace("model = GPT(conf)", "model = GPT.from_pretrained('gpt2')")
    _, reasons = converted(tmp_path, model=model, train=train)
    assert "pkg/train.py:3 binds `model` to `GPT.from_pretrained('gpt2')`" in (
        return_reason(reasons)
    )


def test_a_receiver_rebound_through_global_in_a_function_escapes(tmp_path: Path) -> None:
    train = TRAIN + "\n\ndef swap():\n    global model\n    model = Small(conf)\n"
    _, reasons = converted(tmp_path, train=train)
    assert "pkg/train.py:16 may rebind `model` (`global`/`nonlocal`)" in return_reason(reasons)


def test_the_method_reached_through_getattr_escapes(tmp_path: Path) -> None:
    train = TRAIN + "\nbuild = getattr(model, 'configure_optimizers')\n"
    _, reasons = converted(tmp_path, train=train)
    assert "reaches `configure_optimizers` through `getattr(" in return_reason(reasons)


def test_the_method_replaced_through_setattr_escapes(tmp_path: Path) -> None:
    train = TRAIN + "\nsetattr(model, 'configure_optimizers', print)\n"
    _, reasons = converted(tmp_path, train=train)
    assert "pkg/train.py:14 names `configure_optimizers` in a string" in return_reason(reasons)


def test_a_subclass_in_the_callers_file_overriding_the_method_escapes(tmp_path: Path) -> None:
    train = TRAIN + (
        "\n\nclass Tiny(GPT):\n"
        "    def configure_optimizers(self, weight_decay, learning_rate):\n"
        "        return None\n"
    )
    _, reasons = converted(tmp_path, train=train)
    assert "pkg/train.py:16 defines `configure_optimizers` again" in return_reason(reasons)


def test_a_receiver_that_is_a_parameter_escapes(tmp_path: Path) -> None:
    train = (
        "def setup(model):\n"
        "    optimizer = model.configure_optimizers(0.1, 6e-4)\n"
        "    optimizer.step()\n"
    )
    _, reasons = converted(tmp_path, train=train)
    assert "on the parameter `model`, not proven a `GPT`" in return_reason(reasons)


def test_a_caller_reading_param_groups_of_the_built_value_escapes(tmp_path: Path) -> None:
    train = TRAIN + "\nprint(optimizer.param_groups[0]['lr'])\n"
    outputs, reasons = converted(tmp_path, train=train)
    assert (
        "pkg/train.py:14 uses `optimizer` as a torch object: `optimizer.param_groups`"
        in return_reason(reasons)
    )
    assert outputs["train.py"] == train


LR_LOOP = "\nfor param_group in optimizer.param_groups:\n    param_group['lr'] = 1e-3\n"


def test_an_lr_loop_in_another_file_than_the_method_escapes(tmp_path: Path) -> None:
    """nanoGPT's train.py writes the lr of the optimizer model.py's method builds: only a
    write in the method's own file is followed (a target injects the lr there)."""
    train = TRAIN + LR_LOOP
    outputs, reasons = converted(tmp_path, train=train)
    assert "pkg/train.py:14 uses `optimizer` as a torch object" in return_reason(reasons)
    assert outputs["train.py"] == train
    write_package(tmp_path, {"model.py": MODEL, "train.py": train})
    outputs, records = nnx_convert_in_process(tmp_path)
    assert any(RETURN_ESCAPE in r for r in escape_reasons(records))


def test_an_lr_loop_in_the_methods_own_file_is_followed(tmp_path: Path) -> None:
    """The same loop where the method is defined: the method's optimizer translates and the
    loop escapes on its own in the optax target (no mutable param groups)."""
    own = MODEL + "\n\n" + TRAIN.replace("from pkg.model import GPT\n", "") + LR_LOOP
    write_package(tmp_path, {"model.py": own})
    outputs, records = convert_in_process(tmp_path)
    reasons = escape_reasons(records)
    assert not any(RETURN_ESCAPE in r for r in reasons), reasons
    assert "optimizer = optax.adamw(" in outputs["model.py"]
    assert any("optimizer.param_groups" in r for r in reasons), reasons


def test_a_method_nobody_calls_keeps_the_return_escape(tmp_path: Path) -> None:
    _, reasons = converted(tmp_path, train="x = 1\n")
    assert return_reason(reasons).endswith("`return optimizer`")


# ---------------------------------------------------------------------- NNX


def test_nnx_builds_the_optimizer_over_self_in_the_method(tmp_path: Path) -> None:
    write_package(tmp_path, {"model.py": MODEL, "train.py": TRAIN})
    outputs, records = nnx_convert_in_process(tmp_path)
    assert "optimizer = nnx.Optimizer(self, optax.adamw(" in outputs["model.py"]
    assert not any(RETURN_ESCAPE in r for r in escape_reasons(records))


def test_nnx_keeps_the_callers_step_in_an_escape(tmp_path: Path) -> None:
    write_package(tmp_path, {"model.py": MODEL, "train.py": TRAIN})
    outputs, records = nnx_convert_in_process(tmp_path)
    assert step_reasons(records) == [
        "the optimizer comes from a method of `model`, and `GPT` is not one class of this file "
        "bound once (the NNX step follows a method of its own file)"
    ]
    assert "        optimizer.step()\n        # ml_switcheroo: ESCAPE-END" in outputs["train.py"]
