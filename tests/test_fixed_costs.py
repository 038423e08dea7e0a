"""Per-file fixed costs removed outside the engine: libcst's scan of the batchable metadata
providers for their visitor methods is done once per class (``command_support``)."""

from __future__ import annotations

import libcst as cst
import pytest
from libcst import BatchableCSTVisitor
from libcst.metadata import ExpressionContextProvider, ParentNodeProvider

from ml_switcheroo.analysis.resolver import BindingProvider
from ml_switcheroo.rewrite import command_support


@pytest.mark.parametrize("provider", [BindingProvider, ExpressionContextProvider])
def test_visitor_methods_scanned_once_per_class_are_the_instances_own(provider: type) -> None:
    command_support.fast_batched_visitors()
    first, second = provider(), provider()
    assert first.get_visitors() == command_support._scan_visitor_methods(first)
    methods = second.get_visitors()
    assert methods == command_support._scan_visitor_methods(second)
    assert all(method.__self__ is second for method in methods.values())


def test_metadata_resolved_with_the_per_class_scan_is_the_same() -> None:
    code = "import torch\nclass T:\n    def f(self):\n        self.opt = torch.optim.Adam(p)\n"
    BatchableCSTVisitor.get_visitors = command_support._scan_visitor_methods  # type: ignore[method-assign]
    try:
        before = cst.MetadataWrapper(cst.parse_module(code))
        plain = {type(k).__name__ for k in before.resolve(BindingProvider)}
    finally:
        command_support.fast_batched_visitors()
    after = cst.MetadataWrapper(cst.parse_module(code))
    assert {type(k).__name__ for k in after.resolve(BindingProvider)} == plain
    assert len(after.resolve(ParentNodeProvider)) > 0


def test_a_provider_that_is_not_batchable_costs_no_empty_walk(monkeypatch) -> None:
    from libcst.metadata import PositionProvider

    command_support.fast_batched_visitors()
    walks: list[int] = []
    real = cst.MetadataWrapper.visit_batched

    def counted(self, visitors, *args, **kwargs):  # type: ignore[no-untyped-def]
        walks.append(len(list(visitors)))
        return real(self, visitors, *args, **kwargs)

    monkeypatch.setattr(cst.MetadataWrapper, "visit_batched", counted)
    wrapper = cst.MetadataWrapper(cst.parse_module("x = f(1)\n"))
    positions = wrapper.resolve(PositionProvider)
    assert walks == []
    assert positions[wrapper.module.body[0]].start.line == 1


def test_batchable_metadata_is_still_resolved_in_a_walk_after_the_patch() -> None:
    command_support.fast_batched_visitors()
    wrapper = cst.MetadataWrapper(cst.parse_module("import torch\nopt = torch.optim.SGD(p)\n"))
    parents = wrapper.resolve(ParentNodeProvider)
    assert parents[wrapper.module.body[0]] is wrapper.module


def _walks_resolving_scopes(monkeypatch) -> list[list[str]]:  # type: ignore[no-untyped-def]
    from libcst.metadata import ScopeProvider

    walks: list[list[str]] = []
    real = cst.MetadataWrapper.visit_batched

    def counted(self, visitors, *args, **kwargs):  # type: ignore[no-untyped-def]
        visitors = list(visitors)
        walks.append([type(v).__name__ for v in visitors])
        return real(self, visitors, *args, **kwargs)

    monkeypatch.setattr(cst.MetadataWrapper, "visit_batched", counted)
    wrapper = cst.MetadataWrapper(cst.parse_module("import torch\nopt = torch.optim.SGD(p)\n"))
    scopes = wrapper.resolve(ScopeProvider)
    assert scopes[wrapper.module.body[1]] is not None
    return walks


def test_scopes_cost_no_batched_walk_of_the_tree(monkeypatch) -> None:
    # ExpressionContextProvider and ScopeProvider each do their own walk in visit_Module.
    command_support.fast_batched_visitors()
    assert _walks_resolving_scopes(monkeypatch) == []


def test_scopes_cost_two_batched_walks_without_the_patch(monkeypatch) -> None:
    from libcst.metadata import wrapper as metadata_wrapper

    monkeypatch.setattr(metadata_wrapper, "_gen_batchable", command_support._walk_batchable)
    walks = _walks_resolving_scopes(monkeypatch)
    assert walks == [["ExpressionContextProvider"], ["ScopeProvider"]]


def test_a_batch_with_a_provider_of_other_nodes_is_walked(monkeypatch) -> None:
    from libcst.metadata import ScopeProvider

    command_support.fast_batched_visitors()
    walks: list[list[str]] = []
    real = cst.MetadataWrapper.visit_batched

    def counted(self, visitors, *args, **kwargs):  # type: ignore[no-untyped-def]
        visitors = list(visitors)
        walks.append(sorted(type(v).__name__ for v in visitors))
        return real(self, visitors, *args, **kwargs)

    monkeypatch.setattr(cst.MetadataWrapper, "visit_batched", counted)
    wrapper = cst.MetadataWrapper(cst.parse_module("import torch\nopt = torch.optim.SGD(p)\n"))
    wrapper.resolve_many([ScopeProvider, _CallsProvider])
    assert walks == [["ExpressionContextProvider", "_CallsProvider"]]


class _CallsProvider(cst.BatchableMetadataProvider[bool]):
    """A batchable provider of other nodes than the module."""

    def visit_Call(self, node: cst.Call) -> None:
        self.set_metadata(node, True)


def test_binding_facts_cost_no_batched_walk_of_the_tree(monkeypatch) -> None:
    command_support.fast_batched_visitors()
    walks: list[int] = []
    real = cst.MetadataWrapper.visit_batched

    def counted(self, visitors, *args, **kwargs):  # type: ignore[no-untyped-def]
        walks.append(len(list(visitors)))
        return real(self, visitors, *args, **kwargs)

    monkeypatch.setattr(cst.MetadataWrapper, "visit_batched", counted)
    wrapper = cst.MetadataWrapper(cst.parse_module("import torch\nopt = torch.optim.SGD(p)\n"))
    bindings = wrapper.resolve(BindingProvider)
    assert walks == []
    assert isinstance(bindings[wrapper.module.body[1].body[0].targets[0].target], cst.Call)


_SCOPED = """
import torch
from typing import List
G = 1
class Net(torch.nn.Module):
    size: "List[int]" = []
    def forward(self, x, *a, k=G, **kw):
        global G
        y = [x * i for i in range(G) if i]
        def inner():
            nonlocal y
            y = lambda z: z + x
        return {k: v for k, v in kw.items()}, y
opt = torch.optim.SGD(Net().parameters(), lr=0.1)
del G
"""


def _scope_facts(code: str) -> list[tuple[str, ...]]:
    """Per node of the parsed tree (in walk order): its scope's kind, assignments, accesses."""
    from libcst.metadata import ScopeProvider

    wrapper = cst.MetadataWrapper(cst.parse_module(code), unsafe_skip_copy=True)
    scopes = wrapper.resolve(ScopeProvider)
    facts = []

    class _Nodes(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            scope = scopes.get(node)
            if scope is None:
                facts.append((type(node).__name__,))
                return True
            assigned = sorted(a.name for a in scope.assignments)
            accessed = sorted(
                (cst.Module([]).code_for_node(a.node), len(a.referents)) for a in scope.accesses
            )
            facts.append((type(node).__name__, type(scope).__name__, str(assigned), str(accessed)))
            return True

    wrapper.module.visit(_Nodes())
    return facts


def test_scopes_resolved_without_the_walk_are_libcsts() -> None:
    from libcst.metadata import wrapper as metadata_wrapper

    metadata_wrapper._gen_batchable = command_support._walk_batchable
    try:
        walked = _scope_facts(_SCOPED)
    finally:
        command_support.fast_batched_visitors()
    assert metadata_wrapper._gen_batchable is command_support._gen_batchable_unless_none
    assert _scope_facts(_SCOPED) == walked


def _contexts(code: str) -> list[tuple[str, str]]:
    """Each node's expression context (libcst's ``ExpressionContextProvider``), in walk order."""
    from libcst.metadata import ExpressionContextProvider

    from ml_switcheroo.analysis import cst_walk

    wrapper = cst.MetadataWrapper(cst.parse_module(code), unsafe_skip_copy=True)
    contexts = wrapper.resolve(ExpressionContextProvider)
    return [(type(n).__name__, str(contexts.get(n))) for n in cst_walk.walk(wrapper.module)]


@pytest.mark.parametrize("facts", [_scope_facts, _contexts])
def test_scopes_and_contexts_walked_in_place_are_libcsts(monkeypatch, facts) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from tests.test_cst_walk import _SYNTAX

    sources = [_SCOPED, _SYNTAX, Path(command_support.__file__).read_text()]
    command_support.fast_batched_visitors()
    assert cst.CSTNode.visit is command_support._visit
    ours = [facts(code) for code in sources]
    monkeypatch.setattr(cst.CSTNode, "visit", command_support._libcst_visit)
    assert [facts(code) for code in sources] == ours


def _convert_with_libcst_runner(path, results_dir, monkeypatch):  # type: ignore[no-untyped-def]
    """What libcst's runner gets back from ``convert``'s command for ``path``: the tree."""
    from libcst.codemod._cli import ExecutionConfig, _execute_transform

    from ml_switcheroo.app import convert_command

    handed: list[cst.Module] = []
    real = convert_command._handed_back

    def spy(*args):  # type: ignore[no-untyped-def]
        handed.append(real(*args))
        return handed[-1]

    monkeypatch.setattr(convert_command, "_handed_back", spy)
    args = {"results_dir": str(results_dir), "mode": "check"}
    config = ExecutionConfig(unified_diff=1)
    result = _execute_transform(convert_command.ConvertCommand, str(path), config, {}, args, None)
    return handed[0], result


def test_convert_hands_libcst_a_tree_it_writes_out_without_code_generation(
    tmp_path, monkeypatch
) -> None:
    from ml_switcheroo.rewrite.command_support import _Verbatim

    path = tmp_path / "train.py"
    path.write_bytes(b"import torch\nopt = torch.optim.SGD(p, lr=0.1)\nopt.step()\n")
    handed, result = _convert_with_libcst_runner(path, tmp_path, monkeypatch)
    assert isinstance(handed, _Verbatim) and handed.bytes == path.read_bytes()
    assert result.changed is False


def test_convert_hands_libcst_the_parsed_tree_when_the_file_changed_after_its_read(
    tmp_path, monkeypatch
) -> None:
    from ml_switcheroo.rewrite import command_support

    path = tmp_path / "train.py"
    path.write_bytes(b"import torch\nopt = torch.optim.SGD(p, lr=0.1)\n")
    monkeypatch.setattr(command_support, "bytes_read_by_libcst_cli", lambda frame: b"other")
    handed, _ = _convert_with_libcst_runner(path, tmp_path, monkeypatch)
    assert not isinstance(handed, command_support._Verbatim)


def _count_code_generations(monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    """One entry per module written out (``cst.Module.code``) from now on."""
    written: list[int] = []
    real = cst.Module.code.fget

    def counted(module: cst.Module) -> str:
        written.append(1)
        return real(module)

    monkeypatch.setattr(cst.Module, "code", property(counted))
    return written


def test_convert_writes_a_changed_file_out_once(tmp_path, monkeypatch) -> None:
    """The check that the file did not change on disk during the run does not write the parsed
    tree out again: it is libcst's parse of the very bytes the command read."""
    import json

    from ml_switcheroo.app import convert_command

    path = tmp_path / "train.py"
    path.write_bytes(b"import torch\nopt = torch.optim.SGD(p, lr=0.1)\nopt.zero_grad()\n")
    written = _count_code_generations(monkeypatch)
    _, result = _convert_with_libcst_runner(path, tmp_path, monkeypatch)
    saved = convert_command.result_path(str(tmp_path), str(path))
    with open(saved, encoding="utf-8") as handle:
        assert json.load(handle)["changed"] is True
    assert result.changed is False  # the command reports the change itself
    assert len(written) == 1  # the new code, nothing else


def test_convert_still_refuses_a_file_changed_after_libcsts_read(tmp_path, monkeypatch) -> None:
    """When the bytes libcst's runner parsed are not the ones the command read, the tree is
    written out and compared with them: a file saved in between is left alone."""
    import json

    from libcst.codemod import TransformFailure
    from libcst.codemod._cli import ExecutionConfig, _execute_transform

    from ml_switcheroo.app import convert_command

    path = tmp_path / "train.py"
    path.write_bytes(b"import torch\nopt = torch.optim.SGD(p, lr=0.1)\nopt.zero_grad()\n")
    parse = cst.parse_module

    def parse_then_save(data, config=None):  # type: ignore[no-untyped-def]
        tree = parse(data)
        path.write_bytes(data + b"# saved meanwhile\n")
        return tree

    monkeypatch.setattr("libcst.codemod._cli.parse_module", parse_then_save)
    args = {"results_dir": str(tmp_path), "mode": "check"}
    config = ExecutionConfig(unified_diff=1)
    result = _execute_transform(convert_command.ConvertCommand, str(path), config, {}, args, None)
    assert isinstance(result.transform_result, TransformFailure)
    saved = convert_command.result_path(str(tmp_path), str(path))
    with open(saved, encoding="utf-8") as handle:
        assert "changed on disk during the run" in json.load(handle)["error"]
