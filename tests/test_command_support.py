"""The shortcuts in front of the engine: no matcher scan, no deep copy for libcst's own parses."""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodContext, transform_module
from libcst.matchers._visitors import (
    _gather_constructed_leave_funcs,
    _gather_constructed_visit_funcs,
    _gather_matchers,
)

from ml_switcheroo.codemods.optimizer import OptimizerStep, TorchToOptax
from ml_switcheroo.rewrite import command_support

CODE = "import torch\nopt = torch.optim.SGD(params, lr=0.1)\nopt.step()\n"


def test_the_instance_gets_what_libcsts_scan_would_find() -> None:
    for command_class in (TorchToOptax, OptimizerStep):
        command = command_class(CodemodContext())
        assert command._extra_visit_funcs == _gather_constructed_visit_funcs(command) == {}
        assert command._extra_leave_funcs == _gather_constructed_leave_funcs(command) == {}
        assert command._matchers == _gather_matchers(command) == {}


def test_a_subclass_with_matcher_decorators_gets_the_real_scan() -> None:
    seen: list[str] = []

    class Noticing(TorchToOptax):
        @m.visit(m.Name("opt"))
        def notice(self, node: cst.Name) -> None:
            seen.append(node.value)

    command = Noticing(CodemodContext())
    assert len(command._extra_visit_funcs) == 1
    assert not command_support.init_without_matcher_scan(command, CodemodContext())


def test_the_copy_is_skipped_only_for_libcsts_own_parses(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fresh: list[bool] = []
    original = command_support.transform_fresh_tree

    def spy(command, tree):  # type: ignore[no-untyped-def]
        fresh.append(True)
        return original(command, tree)

    monkeypatch.setattr(command_support, "transform_fresh_tree", spy)
    by_libcst = transform_module(TorchToOptax(CodemodContext()), CODE)
    assert fresh == [True]
    by_hand = TorchToOptax(CodemodContext()).transform_module(cst.parse_module(CODE))
    assert fresh == [True]  # a tree handed over by anyone else is copied, as libcst does
    assert getattr(by_libcst, "code", None) == by_hand.code
    assert "optax.sgd(learning_rate=0.1)" in by_hand.code


def test_a_tree_with_a_shared_node_is_still_handled_by_the_copying_path() -> None:
    """A composed codemod may hand over a tree holding one node object twice."""
    call = cst.parse_expression("torch.optim.SGD(params, lr=0.1)")
    line = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name("opt"))], call)])
    tree = cst.parse_module("import torch\n").with_changes(
        body=[*cst.parse_module("import torch\n").body, line, line]
    )
    out = TorchToOptax(CodemodContext()).transform_module(tree).code
    assert out.count("optax.sgd(learning_rate=0.1)") == 2


def test_the_map_is_compiled_once_per_process_not_once_per_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ml_switcheroo.targets import catalogue as semantic_map

    user_map = tmp_path / "extra.yaml"
    user_map.write_text("apis: {}\n", encoding="utf-8")
    TorchToOptax(CodemodContext(), semantic_map=[str(user_map)])  # the first file: compiled
    before = semantic_map._load_cached.cache_info()
    for _ in range(20):  # every further file of the run
        TorchToOptax(CodemodContext(), semantic_map=[str(user_map)])
    after = semantic_map._load_cached.cache_info()
    assert after.misses == before.misses and after.hits == before.hits + 20


def test_the_collector_is_paused_for_a_file_of_libcsts_runner_and_resumed_after(
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    """Point 8: libcst's runner makes the command (collector paused), parses the file and
    transforms it (collector resumed at the end); a command made by hand pauses nothing."""
    import gc

    from libcst.codemod import _cli

    source = tmp_path / "train.py"
    source.write_text(CODE, encoding="utf-8")
    seen: list[bool] = []
    original = command_support.prefiltered_transform

    def spy(command, tree, caller):  # type: ignore[no-untyped-def]
        seen.append(gc.isenabled())
        return original(command, tree, caller)

    assert gc.isenabled()
    TorchToOptax(CodemodContext())  # by hand: nothing paused
    assert gc.isenabled()
    config = _cli.ExecutionConfig(unified_diff=1, format_code=False)
    try:
        command_support.prefiltered_transform = spy  # type: ignore[assignment]
        result = _cli._execute_transform(TorchToOptax, str(source), config, {}, {}, None)
    finally:
        command_support.prefiltered_transform = original  # type: ignore[assignment]
    assert seen == [False]  # paused while the file is converted
    assert gc.isenabled()  # and resumed after
    assert "optax.sgd(learning_rate=0.1)" in str(getattr(result.transform_result, "code", ""))
    with command_support.file_collector_paused():
        with command_support.file_collector_paused():  # nested: resumes nothing
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


_SCOPES = """\
import os, sys as system
from collections import OrderedDict as od
x: int = 1
y = x
y += 2
def f(a, *b, c=y, **d):
    global x
    z = [i for i in b if (j := i)]
    def g():
        nonlocal z
        z = lambda k: k + j
    with open(a) as h:
        pass
    return z, h, os, system, od
class C(object):
    w = f
    for m in range(3):
        pass
"""


def test_scope_leave_numbers_assignments_as_libcst() -> None:
    """Point 9: with ``_scope_on_leave`` libcst's scopes number every assignment and access
    as with libcst's own ``ScopeVisitor.on_leave`` (what orders them, ``_index``)."""
    from libcst.metadata import MetadataWrapper, ScopeProvider

    assert command_support._SCOPE_VISITOR is not None  # the libcst the project pins
    visitor, _, libcst_leave = command_support._SCOPE_VISITOR

    def numbered() -> list[tuple[str, int, str, list[int]]]:
        wrapper = MetadataWrapper(cst.parse_module(_SCOPES))
        scopes = {s for s in wrapper.resolve(ScopeProvider).values() if s is not None}
        found = []
        for scope in scopes:
            for a in scope.assignments:
                uses = sorted(access._index for access in a.references)
                found.append((type(scope).__name__, a._index, a.name, uses))
        return sorted(found)

    command_support.fast_batched_visitors()
    assert visitor.on_leave is command_support._scope_on_leave
    patched = numbered()
    try:
        visitor.on_leave = libcst_leave  # type: ignore[method-assign]
        original = numbered()
    finally:
        visitor.on_leave = command_support._scope_on_leave  # type: ignore[method-assign]
    assert patched == original
    assert len(original) > 15
