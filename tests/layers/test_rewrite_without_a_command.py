"""The rewrite layer's parts used directly: finding a call's map entry without a command,
turning what a hook returns into one result type, publishing records, questions about other
files."""

from __future__ import annotations

import libcst as cst
import pytest
from libcst.codemod import CodemodContext
from libcst.metadata import MetadataWrapper, PositionProvider, ScopeProvider

from ml_switcheroo.analysis.resolver import BindingProvider, Resolver
from ml_switcheroo.rewrite.cross_file_questions import CrossFileQuestions
from ml_switcheroo.rewrite.dispatch import Wiring, module_level_import_roots, wired_call
from ml_switcheroo.rewrite.engine import SwitcherooCommand
from ml_switcheroo.rewrite.publish import publish, records_of
from ml_switcheroo.rewrite.report import Record
from ml_switcheroo.rewrite.statements import Frame
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.targets.catalogue import DEFAULT_TARGET, load_semantic_map
from ml_switcheroo.targets.hooks import Escape, Keep, Remove, Replace, as_result, run_hook

SOURCE = """\
import torch
opt = torch.optim.AdamW(ps, lr=1e-3)
opt.zero_grad()
print(opt)
"""


def calls_of(module: cst.Module) -> list[cst.Call]:
    found: list[cst.Call] = []

    class Calls(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            found.append(node)

    module.visit(Calls())
    return found


def wire_all(source: str, hooks: frozenset[str] | None = None) -> list[object]:
    """``wired_call`` for every call of ``source``, with the entries of ``hooks``."""
    wrapper = MetadataWrapper(cst.parse_module(source))
    semantic_map = load_semantic_map()
    resolver = Resolver(
        semantic_map, wrapper.resolve(ScopeProvider), wrapper.resolve(BindingProvider)
    )
    roots = module_level_import_roots(wrapper.module)
    wiring = Wiring(semantic_map, semantic_map.for_hooks(hooks), roots)
    return [wired_call(wiring, resolver, call, None) for call in calls_of(wrapper.module)]


def test_a_constructor_call_is_wired_to_its_entry_without_a_receiver() -> None:
    constructor = wire_all(SOURCE)[0]
    assert constructor is not None
    assert (constructor.name, constructor.receiver) == ("torch.optim.AdamW", None)


def test_a_method_call_on_a_constructed_optimizer_is_wired_with_its_receiver() -> None:
    method = wire_all(SOURCE)[1]
    assert method is not None
    assert (method.entry.hook, method.receiver, method.probable) == (
        "optimizer_zero_grad",
        "opt",
        False,
    )


def test_a_call_the_map_does_not_know_is_not_wired() -> None:
    assert wire_all(SOURCE)[2] is None


def test_a_call_whose_hook_the_command_does_not_run_is_not_wired() -> None:
    wired = wire_all(SOURCE, frozenset({"optimizer_step"}))
    assert wired[:2] == [None, None]


def test_a_name_bound_by_another_import_is_not_taken_for_torch() -> None:
    assert wire_all("from apex.optimizers import AdamW\nopt = AdamW(ps)\n") == [None]


NODE = cst.parse_expression("opt.zero_grad()")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (NODE, Keep()),
        (cst.Name("None"), Remove()),
        (Escape("why", "what"), Escape("why", "what")),
    ],
    ids=["the-call-itself-keeps", "None-removes", "a-result-passes-through"],
)
def test_a_hook_output_becomes_one_result(output: object, expected: object) -> None:
    assert as_result(NODE, output) == expected  # type: ignore[arg-type]


def test_any_other_expression_replaces_the_call() -> None:
    expression = cst.parse_expression("optax.adam(1e-3)")
    assert as_result(NODE, expression) == Replace(expression)


def test_an_untranslatable_hook_becomes_an_escape_with_its_reason_and_suggestion() -> None:
    def refusing_hook(node: cst.Call, ctx: object) -> cst.BaseExpression:
        raise Untranslatable("no optax equivalent", "port it by hand")

    result = run_hook(refusing_hook, NODE, None)  # type: ignore[arg-type]
    assert result == Escape("no optax equivalent", "port it by hand")


def test_published_records_are_placed_at_their_nodes_and_escapes_warn() -> None:
    module = cst.parse_module("x = 1\nopt.step()\n")
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    call = calls_of(module)[0]
    frame = Frame()
    frame.records.append((call, Record("torch.optim.Optimizer.step", "escaped", "escape", "s")))
    context = CodemodContext(filename="train.py")
    warnings: list[str] = []
    publish(frame, context, positions.get, warnings.append)
    (record,) = records_of(context)
    assert (record.file, record.line, record.column) == ("train.py", 2, 1)
    assert warnings == ["line 2: escape hatch for torch.optim.Optimizer.step: "]


def test_no_cross_file_facts_apply_to_a_file_not_on_disk() -> None:
    questions = CrossFileQuestions(
        filename=lambda: "not/on/disk.py",
        enabled=True,
        semantic_map=load_semantic_map(),
        target=DEFAULT_TARGET,
        prefilter=None,
        map_files=(),
        options={"exact": False, "steps_per_epoch": None},
        dry_command=SwitcherooCommand,
    )
    assert questions.repository_file() is None
    assert questions.cross_file() is None
    assert not questions.may_change_across_files()
