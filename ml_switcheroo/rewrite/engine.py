"""The engine: one visit per file that dispatches wired calls to their hooks.

``SwitcherooCommand`` is a libcst ``VisitorBasedCodemodCommand``. For every call it asks the
resolver which map entry (if any) the call is wired to, runs that entry's hook, and keeps
the bookkeeping that makes output safe:

* statement frames: everything a statement's rewrites need (imports, removed names,
  report records) is committed only when the statement is translated as a whole; when any
  construct in it escapes, the original statement is kept, wrapped in an escape hatch;
* removed statements (``opt.zero_grad()``) hand their comments to the next statement (except
  pragmas such as ``# type: ignore``, which go with them: ``layout.is_pragma``), and a block
  that would become empty gets ``pass``;
* imports: the map's imports are added once after the leading import block, and torch
  imports whose every use was rewritten are removed, unless ``__all__`` re-exports them
  (``ml_switcheroo.analysis.exports``);
* a file libcst would not write back byte for byte is never returned changed
  (``ml_switcheroo.rewrite.round_trip``).
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, NoReturn

import libcst as cst
from libcst.codemod import CodemodContext, SkipFile, VisitorBasedCodemodCommand
from libcst.metadata import (
    Assignment,
    BuiltinScope,
    GlobalScope,
    ImportAssignment,
    PositionProvider,
    ScopeProvider,
)

from ml_switcheroo.analysis import flow
from ml_switcheroo.analysis.exports import exported_names
from ml_switcheroo.analysis.plan import Plan, PlanItem, Planner, Region, Site
from ml_switcheroo.analysis.prefilter import Prefilter, prefilter_for
from ml_switcheroo.analysis.resolver import BindingProvider, Resolver
from ml_switcheroo.analysis.second_stage import SecondStage, second_stage_for
from ml_switcheroo.analysis.torch_only import TorchOnlyUse
from ml_switcheroo.model.hygiene import UserExpression, hygienic
from ml_switcheroo.rewrite import command_support, round_trip
from ml_switcheroo.rewrite.layout import carry_layout, comments, is_pragma, lost_comments
from ml_switcheroo.rewrite.parse_guard import SourceTooDeep, check_file
from ml_switcheroo.rewrite.report import Record
from ml_switcheroo.spec import escape_hatch
from ml_switcheroo.spec.errors import SemanticMapError, Untranslatable
from ml_switcheroo.spec.semantic_map import ApiEntry, SemanticMap
from ml_switcheroo.spec.signature import code_of, dotted_name
from ml_switcheroo.targets.catalogue import DEFAULT_TARGET, load_semantic_map
from ml_switcheroo.targets.hooks import HookContext
from ml_switcheroo.targets.target import Target

_SCRATCH_RECORDS = "ml_switcheroo.records"
# What a RecursionError in libcst's (or the engine's) tree walks means, in one line.
TOO_DEEP = "not converted: nested too deeply for libcst (maximum recursion depth exceeded)"


@dataclass
class _Frame:
    """Effects of the rewrites inside one statement, committed when it is left."""

    escapes: list[escape_hatch.Escape] = field(default_factory=list)
    escape_nodes: list[cst.CSTNode] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)
    discarded: Counter[str] = field(default_factory=Counter)
    records: list[tuple[cst.CSTNode, Record]] = field(default_factory=list)
    lost_comments: list[str] = field(default_factory=list)
    folded: set[int] = field(default_factory=set)  # ids of calls folded into an optimizer
    translated: set[int] = field(default_factory=set)  # ids of calls rewritten
    skip: bool = False

    def absorb(self, child: _Frame) -> None:
        self.imports.extend(child.imports)
        self.discarded.update(child.discarded)
        self.folded.update(child.folded)
        self.translated.update(child.translated)
        self.records.extend(child.records)


def _python_expression(text: str) -> str:
    """argparse ``type=``: a single Python expression."""
    try:
        cst.parse_expression(text)
    except cst.ParserSyntaxError:
        raise argparse.ArgumentTypeError(f"not a Python expression: {text!r}") from None
    return text


def _map_argument(path: str) -> str:
    """argparse ``type=``: validate a user map before any file is touched."""
    try:
        load_semantic_map([path])
    except SemanticMapError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return path


def _map_errors_in_one_line(parser: argparse.ArgumentParser) -> None:
    """A broken semantic map stops the run with one line (and exit code 2), not argparse's
    usage text followed by the error, in ``libcst.tool``'s parser too."""
    usage_error = parser.error

    def error(message: str) -> NoReturn:
        if "semantic map error:" in message:
            parser.exit(2, f"{parser.prog}: error: {' '.join(message.splitlines())}\n")
        usage_error(message)

    parser.error = error  # type: ignore[method-assign]


class SwitcherooCommand(VisitorBasedCodemodCommand):
    """Base of every ml_switcheroo command; subclasses choose the hooks they run."""

    DESCRIPTION: str = "Translate PyTorch optimizer code to JAX/Optax."
    #: Hook names this command runs; None runs every hook in the map.
    HOOKS: ClassVar[frozenset[str] | None] = None
    METADATA_DEPENDENCIES = (ScopeProvider,)
    TARGET: ClassVar[Target] = DEFAULT_TARGET  # the hooks that render the map entries

    @staticmethod
    def add_args(arg_parser: argparse.ArgumentParser) -> None:
        arg_parser.add_argument(
            "--semantic-map",
            dest="semantic_map",
            metavar="FILE",
            action="append",
            default=[],
            type=_map_argument,
            help="Extra semantic-map YAML that adds or overrides entries (repeatable).",
        )
        arg_parser.add_argument(
            "--exact",
            action="store_true",
            help="Emit torch-exact transforms from ml_switcheroo.optax_torch instead of "
            "escape hatches where stock optax has no exact equivalent.",
        )
        arg_parser.add_argument(
            "--steps-per-epoch",
            dest="steps_per_epoch",
            metavar="EXPR",
            default=None,
            type=_python_expression,
            help="Translate LR schedulers stepped once per epoch, with this many optimizer "
            "updates per epoch (a number or a Python expression, e.g. 'len(train_loader)'). "
            "Without it, such schedulers get an escape hatch.",
        )
        arg_parser.add_argument(
            "--no-prefilter",
            dest="prefilter",
            action="store_false",
            help="Analyse every file, also those the map's byte pre-filter proves unchanged "
            "(to check the pre-filter: the output is the same).",
        )
        _map_errors_in_one_line(arg_parser)
        try:  # fail before any file is touched when the shipped map is broken
            load_semantic_map()
        except SemanticMapError as exc:
            arg_parser.error(str(exc))

    def __init__(
        self,
        context: CodemodContext,
        semantic_map: Sequence[str] = (),
        exact: bool = False,
        steps_per_epoch: str | None = None,
        prefilter: bool = True,
    ) -> None:
        if context.filename and os.path.isfile(context.filename):
            # libcst's runner makes the command right before it parses the file: refuse a file
            # that would crash its parser (and the whole run) while there is still time.
            check_file(context.filename)
        if not command_support.init_without_matcher_scan(self, context):
            super().__init__(context)
        self.semantic_map: SemanticMap = load_semantic_map(semantic_map)
        self.entries: dict[str, ApiEntry] = self.semantic_map.for_hooks(self.HOOKS)
        self.options: dict[str, Any] = {"exact": exact, "steps_per_epoch": steps_per_epoch}
        self._wired_methods = frozenset(
            e.method for e in self.entries.values() if e.method and not e.attribute
        )
        self._wired_attributes = frozenset(
            e.method for e in self.entries.values() if e.method and e.attribute
        )
        self.prefilter: Prefilter | None = (
            prefilter_for(self.semantic_map, self.HOOKS) if prefilter else None
        )
        self.second_stage: SecondStage = second_stage_for(self.semantic_map, self.HOOKS)

    def transform_module(self, tree: cst.Module) -> cst.Module:
        """libcst's entry point, with the map's pre-filter in front of the metadata.

        A file the pre-filter proves unchanged is returned as it is, before any metadata is
        computed; a tree fresh from libcst's parser skips libcst's deep copy
        (see ``ml_switcheroo.rewrite.command_support``).
        """
        caller = command_support.caller_frame()
        fresh = command_support.called_by_libcst_parser(caller)
        lossy: str | None = None  # why libcst would not write the file back as it is
        if self.prefilter is not None or fresh:
            data = command_support.source_bytes(self.context.filename, tree, from_file=fresh)
            tree = command_support.keep_final_cr(tree, data)
            if fresh:
                lossy = round_trip.lost_bytes(tree, data)
            if self.prefilter is not None and not self.may_change(data):
                unchanged = _unless_lossy(tree, tree, lossy)
                if command_support.called_by_libcst_cli(caller):
                    return command_support.verbatim(unchanged, data)
                return unchanged
        if fresh and self.context.filename and os.path.islink(self.context.filename):
            # libcst's runner would write through the link: into a file outside the paths
            # given, or into a file it also converts under its own name (two writers at once).
            raise SkipFile(
                f"a symbolic link to {os.path.realpath(self.context.filename)}: not converted "
                "through the link (run the codemod on the file itself)"
            )
        try:
            if fresh:
                result = command_support.transform_fresh_tree(self, tree)
            else:
                result = super().transform_module(tree)
        except RecursionError:
            raise SourceTooDeep(TOO_DEEP) from None
        return _unless_lossy(tree, result, lossy)

    def may_change(self, data: bytes) -> bool:
        """Whether the pre-filter's two stages (bytes, then ``ast``) keep the file."""
        assert self.prefilter is not None
        return self.prefilter.matches(data) and self.second_stage.keeps(data, self.context.filename)

    # ------------------------------------------------------------------ traversal plumbing

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        self._resolver: Resolver | None = None
        self._frames: list[_Frame] = [_Frame()]
        self._body_ids: set[int] = set()
        self._classes: list[cst.ClassDef] = []
        self._names: Counter[str] = Counter()
        self._noop_calls: set[int] = set()
        # Keyed by id(); the values keep the nodes alive so that ids are never reused.
        self._removed: dict[int, tuple[cst.CSTNode, list[cst.EmptyLine]]] = {}
        self._needs_end: dict[int, cst.CSTNode] = {}
        self._positions: Any = None
        self._body_ids.update(id(s) for s in tree.body)
        self._already_escaped: set[int] = escape_hatch.escaped_statements(tree.body)
        self._imported_roots = _module_level_import_roots(tree)
        self._exports: tuple[frozenset[str] | None] | None = None  # `__all__`, once read
        self._dynamic_code: bool | None = None  # the file calls exec/eval, once read
        self._tree = tree
        self._plan: Plan | None = None
        self._updated_of: dict[int, cst.CSTNode] = {}  # id(original statement) -> result
        self._escaped: set[int] = set()  # ids of original statements left in escape hatches
        self._translates: dict[int, bool] = {}  # constructor call id -> its hook succeeds
        # (call, one of its arguments) for every call of the plan: see _hygienic
        self._user_expressions: list[tuple[cst.Call, UserExpression]] | None = None
        self._constructor_types: dict[int, str | None] = {}  # call id -> the type it returns
        self._leaves: dict[int, list[flow.Leaf]] = {}  # call id -> bindings of its receiver
        self._dry_folded: dict[int, list[int]] = {}  # constructor call id -> what it folds
        self._dry_results: dict[int, str] = {}  # constructor call id -> its translation
        # A training-step region starts at the statement holding the backward pass, which may
        # come before the file's first wired call (`loss.backward(); clip(...); opt.step()` in
        # a function defined before the optimizer is built): a plan built on that call would
        # come too late for it. So a file that calls a backward method is planned up front.
        # Likewise a torch-only use of a translated optimizer (`pickle.dump(optimizer, f)` in a
        # function defined before the optimizer is built): files that import torch are planned
        # up front.
        if self.semantic_map.backward_methods & self._get_resolver().called_methods(tree) or (
            self._imported_roots & self.semantic_map.source_roots
        ):
            self._get_plan()
        return tree.visit(self)

    # Dispatch directly: this command uses no matchers, and the matcher bookkeeping of
    # MatcherDecoratableTransformer costs time on every node.
    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, cst.BaseStatement) and id(node) in self._body_ids:
            frame = _Frame()
            self._frames.append(frame)
            if id(node) in self._already_escaped:
                frame.skip = True
                self._names.update(_names_in(node))
                return False
            region = self._plan.region_of.get(id(node)) if self._plan else None
            if region is not None:
                frame.skip = True
                self._names.update(_names_in(node))
                return False
            uses = self._plan.torch_only.get(id(node)) if self._plan else None
            if uses:
                self._escape_torch_only_uses(frame, uses)
        return cst.CSTTransformer.on_visit(self, node)

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Any:
        is_statement = (
            isinstance(original_node, cst.BaseStatement) and id(original_node) in self._body_ids
        )
        if is_statement and self._frames[-1].skip:
            self._frames.pop()  # an escape hatch (earlier run or training step): left as it is
            region = self._plan.region_of.get(id(original_node)) if self._plan else None
            if region is not None:
                return self._region_statement(original_node, region)
            return updated_node
        result = cst.CSTTransformer.on_leave(self, original_node, updated_node)
        if is_statement:
            return self._leave_statement(original_node, result)
        return result

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        return None

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        return None

    # ------------------------------------------------------------------ bookkeeping visitors

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._body_ids.update(id(s) for s in node.body)
        self._already_escaped.update(escape_hatch.escaped_statements(node.body))

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.append(node)

    def leave_ClassDef(
        self, original_node: cst.ClassDef, updated_node: cst.ClassDef
    ) -> cst.ClassDef:
        self._classes.pop()
        return updated_node

    def visit_Import(self, node: cst.Import) -> bool:
        return False  # names in imports are not uses

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False

    def visit_Name(self, node: cst.Name) -> None:
        self._names[node.value] += 1

    def visit_Attribute(self, node: cst.Attribute) -> None:
        dotted = dotted_name(node)
        if dotted is not None:
            self._names[dotted] += 1

    # ------------------------------------------------------------------ calls

    def leave_Attribute(
        self, original_node: cst.Attribute, updated_node: cst.Attribute
    ) -> cst.BaseExpression:
        """Wired attribute reads (``opt.param_groups``) go to their hook like calls do."""
        if original_node.attr.value not in self._wired_attributes:
            return updated_node
        wired = self._wired_member(original_node, False, attribute=True)
        if wired is None:
            return updated_node
        return self._dispatch(original_node, updated_node, *wired)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        wired = self._wired_entry(original_node)
        if wired is None:
            return updated_node
        return self._dispatch(original_node, updated_node, *wired)

    def _dispatch(
        self,
        original_node: Any,
        updated_node: Any,
        entry: ApiEntry,
        qualified_name: str,
        receiver: str | None,
        probable: bool,
    ) -> Any:
        """Run ``entry``'s hook on a call (or attribute read) and record what happened."""
        plan = self._get_plan()
        frame = self._frames[-1]
        requested: list[str] = []
        context = self._hook_context(
            entry, qualified_name, plan.item_for(original_node), requested.append, receiver
        )
        context.receiver_translated = lambda: self._receiver_translated(original_node, probable)
        try:
            if receiver is None:
                self._check_one_import(original_node, qualified_name)
            planned = plan.escapes.get(id(original_node))
            if planned is not None:
                raise planned
            if receiver is not None:
                self._check_bindings_agree(original_node, entry, receiver)
            # Hooks see the original call, so metadata (scopes, bindings) applies to its parts;
            # rewrites already made inside its arguments are put back afterwards.
            result = self.TARGET.hook(entry.hook)(original_node, context)
            key = plan.attachment_key(original_node)
            if key is not None and not self._is_folded(key):
                raise Untranslatable(
                    "it belongs to an optimizer that was not translated together with it "
                    "(see the optimizer's statement)"
                )
            if receiver is not None and result is not original_node:
                self._check_receiver_translates(original_node, receiver, entry)
            if probable and result is not original_node:
                raise Untranslatable(
                    f"`{receiver}` is an unannotated parameter, taken for a "
                    f"{entry.receiver_type} only because of its name",
                    _probable_suggestion(result),
                )
            self._check_import_names(original_node, requested)
        except Untranslatable as exc:
            frame.escapes.append(escape_hatch.Escape(entry.name, exc.reason, exc.suggestion))
            frame.escape_nodes.append(original_node)
            return updated_node
        if result is original_node:
            return updated_node
        frame.translated.add(id(original_node))
        if context.folded:
            frame.folded.update(context.folded)
            frame.folded.add(id(original_node))
        if isinstance(result, cst.Name) and result.value == "None":
            self._noop_calls.add(id(original_node))
        if isinstance(original_node, cst.Call):
            result = _with_updated_arguments(
                carry_layout(original_node, result), original_node, updated_node
            )
        frame.imports.extend(requested)
        frame.discarded.update(_names_in(updated_node) - _names_in(result))
        frame.lost_comments.extend(lost_comments(updated_node, result))
        frame.records.append(
            (
                original_node,
                Record(
                    api=entry.name,
                    kind="converted",
                    status=entry.status_for(bool(self.options["exact"])),
                    snippet=code_of(original_node).strip(),
                    reason=entry.note or "",
                    suggestion=code_of(result).strip(),
                    warnings=tuple(context.warnings),
                ),
            )
        )
        return result

    def _wired_entry(
        self, call: cst.Call, enclosing: cst.ClassDef | None | bool = False
    ) -> tuple[ApiEntry, str, str | None, bool] | None:
        """The map entry ``call`` is wired to: (entry, API name, receiver source, probable)."""
        resolver = self._get_resolver()
        for name in resolver.imported_names(call.func):
            entry = self.entries.get(name)
            if entry is not None and entry.receiver_type is None:
                return entry, name, None, False
        func = call.func
        if not isinstance(func, cst.Attribute) or func.attr.value not in self._wired_methods:
            return None
        return self._wired_member(func, enclosing, attribute=False)

    def _wired_member(
        self, member: cst.Attribute, enclosing: cst.ClassDef | None | bool, *, attribute: bool
    ) -> tuple[ApiEntry, str, str | None, bool] | None:
        """The entry for ``receiver.name`` when the receiver's type is known."""
        if enclosing is False:
            enclosing = self._classes[-1] if self._classes else None
        resolver = self._get_resolver()
        receiver_type = resolver.receiver_type(member.value, enclosing or None)
        if receiver_type is None:
            # Bound to an optimizer and to something else: wired, so that the call escapes.
            receiver_type = resolver.mixed_receiver_type(member.value, enclosing or None)
        if receiver_type is None:
            return None
        root = receiver_type.name.partition(".")[0]
        if receiver_type.probable and root not in self._imported_roots:
            return None  # a guess from a name alone only in files that import torch at all
        entry = self.semantic_map.method(receiver_type.name, member.attr.value)
        if entry is None or entry.name not in self.entries or entry.attribute != attribute:
            return None
        return entry, entry.name, code_of(member.value).strip(), receiver_type.probable

    def _get_plan(self) -> Plan:
        """The file's plan, built on the first wired call (files without any never pay)."""
        if self._plan is None:
            backward = self.semantic_map.backward_methods
            self._plan = Planner(
                self._tree,
                wire=lambda call, enclosing: self._wired_entry(call, enclosing),
                resolver=self._get_resolver(),
                backward_methods=backward,
                steps_per_epoch=self.options.get("steps_per_epoch"),
                active_hooks=self.HOOKS,
            ).build()
        return self._plan

    def _check_receiver_translates(self, node: Any, receiver: str, entry: ApiEntry) -> None:
        """Rewrite ``opt.method()`` only if ``opt``'s construction in this file translates.

        An optimizer whose construction is left in an escape hatch is still a torch optimizer:
        removing its ``zero_grad()`` would change what the code does.
        """
        leaves = self._receiver_leaves(node, entry)
        if any(leaf.kind == flow.TRANSLATED for leaf in leaves):
            return  # a mix is refused before the hook runs (_check_bindings_agree)
        if not any(leaf.kind == flow.TORCH for leaf in leaves):
            member = node.func if isinstance(node, cst.Call) else node
            if not isinstance(member, cst.Attribute):
                return
            # Every constructor that reaches it, also through a parameter of a function of this
            # file (`train(model, opt)`): all must translate.
            enclosing = self._classes[-1] if self._classes else None
            values = self._get_resolver().origin_values(member.value, enclosing) or []
            if all(self._value_translates(v) for v in values if isinstance(v, cst.Call)):
                return
        raise Untranslatable(
            f"`{receiver}` is still a torch optimizer: its construction is left in an escape "
            "hatch, and this call must stay while it is",
            f"# drop this call once `{receiver}` is an optax GradientTransformation",
        )

    def _check_one_import(self, node: Any, qualified_name: str) -> None:
        """Refuse a call whose name another import binds too (apex's ``Adam`` on one path,
        torch's on the other): what runs there is decided at run time."""
        func = node.func if isinstance(node, cst.Call) else node
        others = self._get_resolver().other_imports(func, qualified_name)
        if not others:
            return
        root = (dotted_name(func) or "").partition(".")[0]
        where = "; ".join(f"from {other.module}{self._at_line(other.node)}" for other in others)
        raise Untranslatable(
            f"`{root}` is also imported {where}, so this may not be `{qualified_name}`; "
            "only torch's would be translated",
            f"import `{root}` from one place only (or rename the other import), "
            "then run the codemod again",
        )

    def _check_bindings_agree(self, node: Any, entry: ApiEntry, receiver: str) -> None:
        """Refuse ``opt.method()`` when ``opt`` is bound to a translated optimizer and also to
        something that is not one (torch's LBFGS, ``build()``, an untyped parameter): after
        the codemod the name holds an optax transformation on some paths only."""
        leaves = self._receiver_leaves(node, entry)
        translated = next((leaf for leaf in leaves if leaf.kind == flow.TRANSLATED), None)
        other = next((leaf for leaf in leaves if leaf.kind in (flow.TORCH, flow.OTHER)), None)
        if translated is None or other is None:
            return
        line = self._at_line(other.binding.node)
        if other.via is None:
            where = f"`{receiver}` is also bound{line} {flow.describe(other)}"
        else:
            where = f"`{receiver}` is a parameter, and a call passes it a value bound{line} "
            where += flow.describe(other)
        raise Untranslatable(
            f"{where}; the optimizer bound{self._at_line(translated.binding.node)} is "
            "translated to optax, so this call must stay until every binding of "
            f"`{receiver}` is translated",
            f"give the optimizers different names, or port `{receiver}` by hand",
        )

    def _receiver_leaves(self, node: Any, entry: ApiEntry) -> list[flow.Leaf]:
        """Every binding that reaches the receiver of ``node`` (a call or attribute read)."""
        known = self._leaves.get(id(node))
        if known is not None:
            return known
        member = node.func if isinstance(node, cst.Call) else node
        if not isinstance(member, cst.Attribute):
            return []
        check = flow.ReceiverBindings(
            self._get_resolver(),
            entry.receiver_type,
            self._constructor_type,
            self._value_translates,
        )
        leaves = check.leaves(member.value, self._classes[-1] if self._classes else None)
        self._leaves[id(node)] = leaves
        return leaves

    def _constructor_type(self, call: cst.Call) -> str | None:
        """The type a wired constructor call returns (None for any other call)."""
        if id(call) not in self._constructor_types:
            wired = self._wired_entry(call)
            constructor = wired is not None and wired[2] is None
            self._constructor_types[id(call)] = wired[0].returns if constructor else None  # type: ignore[index]
        return self._constructor_types[id(call)]

    def _at_line(self, node: cst.CSTNode) -> str:
        """`` at line N`` for a node of the file, or nothing when its position is unknown."""
        if self._positions is None and self.context.wrapper is not None:
            self._positions = self.context.wrapper.resolve(PositionProvider)
        position = self._positions.get(node) if self._positions else None
        return f" at line {position.start.line}" if position is not None else ""

    def _constructor_translates(self, call: cst.Call) -> bool:
        """Dry run of the hook of a constructor call (memoized per call node)."""
        known = self._translates.get(id(call))
        if known is not None:
            return known
        wired = self._wired_entry(call)
        translates = True
        if wired is not None and wired[2] is None:  # a constructor, not a method
            entry, name = wired[0], wired[1]
            plan = self._get_plan()
            context = self._hook_context(entry, name, plan.item_for(call), lambda key: None)
            try:
                if id(call) in plan.escapes:
                    raise plan.escapes[id(call)]
                self._check_one_import(call, name)
                result = self.TARGET.hook(entry.hook)(call, context)
                self._dry_results[id(call)] = code_of(result).strip()
            except Untranslatable:
                translates = False
            self._dry_folded[id(call)] = context.folded
        self._translates[id(call)] = translates
        return translates

    def _value_translates(self, call: cst.Call) -> bool:
        """Whether the value ``call`` builds becomes optax: its constructor translates, or (a
        scheduler) the optimizer it belongs to translates and folds it."""
        plan = self._get_plan()
        schedule = plan.scheduler_of.get(id(call))
        if schedule is None:
            return self._constructor_translates(call)
        optimizer = schedule.optimizer.call
        return self._constructor_translates(optimizer) and id(call) in self._dry_folded.get(
            id(optimizer), []
        )

    def _receiver_translated(self, node: Any, probable: bool) -> bool:
        """Whether the receiver of ``node`` (``opt.state_dict()``, ``sched.last_epoch``) is a
        translated value: not when it is only guessed from a name, or when every constructor
        that reaches it is left as torch code."""
        if probable:
            return False
        member = node.func if isinstance(node, cst.Call) else node
        if not isinstance(member, cst.Attribute):
            return True
        enclosing = self._classes[-1] if self._classes else None
        values = self._get_resolver().origin_values(member.value, enclosing)
        calls = [v for v in values or [] if isinstance(v, cst.Call)]
        return not calls or any(self._becomes_optax(call) for call in calls)

    def _becomes_optax(self, call: cst.Call) -> bool:
        """Whether this command translates the constructor ``call`` (and it translates)."""
        wired = self._wired_entry(call)
        return wired is not None and wired[2] is None and self._value_translates(call)

    def _hook_context(
        self,
        entry: ApiEntry,
        qualified_name: str,
        plan_item: PlanItem | None,
        request_import: Callable[[str], None],
        receiver: str | None = None,
    ) -> HookContext:
        """What the hook of ``entry`` sees; ``plan_item`` is what the file's plan holds for it."""
        return HookContext(
            entry=entry,
            qualified_name=qualified_name,
            filename=self.context.filename,
            semantic_map=self.semantic_map,
            options=self.options,
            request_import=request_import,
            lookup=self._lookup_value,
            receiver=receiver,
            plan=plan_item,
            qualify=self._get_resolver().imported_names,
            enclosing_class=self._classes[-1] if self._classes else None,
            hygiene=self._hygienic,
        )

    def _hygienic(
        self,
        expression: cst.BaseExpression,
        site: cst.CSTNode,
        shared: Sequence[cst.CSTNode],
        extra: Sequence[UserExpression],
    ) -> cst.BaseExpression:
        """``hygiene.hygienic`` for an expression that lands where call ``site`` is."""
        shared_ids = {id(call) for call in shared}
        users = [
            replace(user, shared=True) if id(owner) in shared_ids else user
            for owner, user in self._get_user_expressions()
        ]
        return hygienic(expression, [*users, *extra], self._visible_names(site))

    def _get_user_expressions(self) -> list[tuple[cst.Call, UserExpression]]:
        """The arguments (and their tuple/list elements) of the plan's calls, in source order."""
        if self._user_expressions is None:
            found: list[tuple[cst.Call, UserExpression]] = []
            for site in self._get_plan().sites:
                for hint, value in _argument_values(site):
                    found.append((site.call, UserExpression(value, hint, len(found))))
            self._user_expressions = found
        return self._user_expressions

    def _visible_names(self, node: cst.CSTNode) -> frozenset[str]:
        """Names assigned or read in the scope of ``node`` and its enclosing scopes."""
        scope = self.metadata[ScopeProvider].get(node)
        names: set[str] = set()
        while scope is not None and not isinstance(scope, BuiltinScope):
            names.update(assignment.name for assignment in scope.assignments)
            names.update(
                access.node.value for access in scope.accesses if isinstance(access.node, cst.Name)
            )
            scope = scope.parent if scope.parent is not scope else None
        return frozenset(names)

    def _lookup_value(self, node: cst.BaseExpression) -> cst.BaseExpression | None:
        """The one value a Name (or ``self.x``) is bound to, for hooks (``ctx.assigned_value``)."""
        enclosing = self._classes[-1] if self._classes else None
        return self._get_resolver().bound_value(node, enclosing)

    def _escape_torch_only_uses(self, frame: _Frame, uses: list[TorchOnlyUse]) -> None:
        """Uses of a translated optimizer (or scheduler) as the torch object: mark the statement
        (the map's text), unless the constructor is left as torch code."""
        for use in uses:
            if not self._becomes_optax(use.origin.call):
                continue  # still the torch object: nothing changes for that code
            translation = self._dry_results.get(id(use.origin.call), "")
            reason = use.render(use.text.reason, translation)
            suggest = use.render(use.text.suggest, translation)
            frame.escapes.append(escape_hatch.Escape(use.origin.entry.name, reason, suggest))
            frame.escape_nodes.append(use.node)

    def _is_folded(self, key: int) -> bool:
        """Whether the call with this id was folded into an optimizer translated so far."""
        return any(key in frame.folded for frame in self._frames)

    def _get_resolver(self) -> Resolver:
        if self._resolver is None:
            scopes = self.metadata[ScopeProvider]
            bindings = self.context.wrapper.resolve(BindingProvider) if self.context.wrapper else {}
            self._resolver = Resolver(self.semantic_map, scopes, bindings)  # type: ignore[arg-type]
        return self._resolver

    def _check_import_names(self, call: cst.Call, keys: list[str]) -> None:
        """Refuse to emit ``optax.x`` where ``optax`` already means something else."""
        scope = self.metadata[ScopeProvider].get(call)
        if scope is None:
            return
        for key in dict.fromkeys(keys):
            spec = self.semantic_map.imports[key]
            for assignment in scope[key]:
                if isinstance(assignment, ImportAssignment) and _import_matches(
                    assignment.node, spec.statement
                ):
                    continue
                raise Untranslatable(
                    f"the name `{key}` is already bound here to something else; "
                    f"the translation needs `{spec.statement}`",
                    f"rename the existing `{key}`, then run the codemod again",
                )

    # ------------------------------------------------------------------ statements

    def leave_Expr(self, original_node: cst.Expr, updated_node: cst.Expr) -> Any:
        if id(original_node.value) in self._noop_calls:
            return cst.RemovalSentinel.REMOVE  # `opt.zero_grad()` as a statement: drop it
        return updated_node

    def leave_SimpleStatementSuite(
        self, original_node: cst.SimpleStatementSuite, updated_node: cst.SimpleStatementSuite
    ) -> cst.SimpleStatementSuite:
        if not updated_node.body:
            return updated_node.with_changes(body=[cst.Pass()])
        return updated_node

    def _leave_statement(self, original: cst.BaseStatement, updated: Any) -> Any:
        result = self._settle_statement(original, updated)
        self._updated_of[id(original)] = result
        return result

    def _settle_statement(self, original: cst.BaseStatement, updated: Any) -> Any:
        frame = self._frames.pop()
        parent = self._frames[-1]
        if frame.escapes:
            self._escaped.add(id(original))
            return self._escape_statement(original, frame, parent)
        parent.absorb(frame)
        moved = [comment for comment in frame.lost_comments if not is_pragma(comment)]
        if moved:
            kept = escape_hatch.comment_lines(moved)
            updated = updated.with_changes(leading_lines=[*updated.leading_lines, *kept])
        if isinstance(updated, cst.SimpleStatementLine) and not updated.body:
            placeholder = cst.SimpleStatementLine(
                body=[cst.Pass()], leading_lines=updated.leading_lines
            )
            self._removed[id(placeholder)] = (placeholder, _carried_comments(updated))
            return placeholder
        return updated

    def _escape_statement(
        self, original: cst.BaseStatement, frame: _Frame, parent: _Frame
    ) -> cst.BaseStatement:
        markers = escape_hatch.comment_lines(escape_hatch.begin_lines(frame.escapes))
        escaped = original.with_changes(leading_lines=[*original.leading_lines, *markers])
        self._needs_end[id(escaped)] = escaped
        for node, escape in zip(frame.escape_nodes, frame.escapes, strict=True):
            record = Record(
                api=escape.api,
                kind="escaped",
                status="escape",
                snippet=code_of(node).strip(),
                reason=escape.reason,
                suggestion=escape.suggestion or "",
            )
            parent.records.append((node, record))
        return escaped

    def _region_statement(self, original: cst.BaseStatement, region: Region) -> cst.BaseStatement:
        """A statement of a training-step region: kept as is, the region marked once."""
        result: cst.BaseStatement = original
        if original is region.statements[0]:
            escape = self._with_binding_conflict(self._region_escape(region), region.anchor)
            markers = escape_hatch.comment_lines(escape_hatch.begin_lines([escape]))
            result = original.with_changes(leading_lines=[*original.leading_lines, *markers])
            record = Record(
                api=escape.api,
                kind="escaped",
                status="escape",
                snippet="\n".join(code_of(s).strip() for s in region.statements),
                reason=escape.reason,
                suggestion=escape.suggestion or "",
            )
            self._frames[-1].records.append((region.anchor.call, record))
        if original is region.statements[-1]:
            if result is original:
                result = original.with_changes()  # a node of its own, to mark the end after it
            self._needs_end[id(result)] = result
        self._escaped.add(id(original))
        self._updated_of[id(original)] = result
        return result

    def _with_binding_conflict(
        self, escape: escape_hatch.Escape, anchor: Site
    ) -> escape_hatch.Escape:
        """A training step on a receiver bound to a translated optimizer and to something else:
        its reason says that first (the step stays torch code on every path)."""
        entry = anchor.entry
        if anchor.receiver is None or entry is None or entry.receiver_type is None:
            return escape
        try:
            self._check_bindings_agree(anchor.call, entry, code_of(anchor.receiver).strip())
        except Untranslatable as exc:
            return escape_hatch.Escape(
                escape.api, f"{exc.reason}. Besides, {escape.reason}", escape.suggestion
            )
        return escape

    def _region_escape(self, region: Region) -> escape_hatch.Escape:
        """Ask the training-step hook for the region's reason and suggestion."""
        backward = region.backward.entry if region.backward and region.backward.entry else None
        entry = backward or self.semantic_map.apis.get("torch.Tensor.backward")
        anchor = region.anchor
        api = anchor.entry.name if anchor.entry else "torch.optim.Optimizer.step"
        if entry is None:
            return escape_hatch.Escape(api, "a training step: torch updates in place")
        context = self._hook_context(entry, entry.name, region, lambda key: None)
        try:
            self.TARGET.hook(entry.hook)(anchor.call, context)
        except Untranslatable as exc:
            return escape_hatch.Escape(api, exc.reason, exc.suggestion)
        return escape_hatch.Escape(api, "a training step: torch updates in place")

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        body = self._remove_unused_imports(updated_node.body, module_level=False)
        body, pending = self._settle_body(body)
        if not body:
            body = [cst.SimpleStatementLine(body=[cst.Pass()], leading_lines=pending)]
            pending = []
        return updated_node.with_changes(body=body, footer=[*pending, *updated_node.footer])

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        frame = self._frames[0]
        body = self._remove_unused_imports(updated_node.body, module_level=True)
        body = self._add_imports(body, frame.imports)  # before settling: see _add_imports
        body, pending = self._settle_body(body)
        self._publish(frame)
        return updated_node.with_changes(body=body, footer=[*pending, *updated_node.footer])

    def _settle_body(
        self, body: Sequence[cst.BaseStatement]
    ) -> tuple[list[cst.BaseStatement], list[cst.EmptyLine]]:
        """Drop removed statements (keeping their comments) and close escape hatches."""
        settled: list[cst.BaseStatement] = []
        pending: list[cst.EmptyLine] = []
        for statement in self._apply_moves(list(body)):
            removed = self._removed.get(id(statement))
            if removed is not None:
                pending.extend(removed[1])
                continue
            needs_end = id(statement) in self._needs_end
            if pending:
                statement = statement.with_changes(
                    leading_lines=[*pending, *statement.leading_lines]
                )
                pending = []
            settled.append(statement)
            if needs_end:
                pending = escape_hatch.comment_lines([escape_hatch.END])
        return settled, pending

    def _apply_moves(self, body: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        """Put ``sched = <schedule>`` before the optimizer that uses it as learning rate."""
        if not self._plan or not self._plan.moves:
            return body
        for schedule in self._plan.moves.values():
            optimizer = self._updated_of.get(id(schedule.optimizer.statement))
            if optimizer is None or not any(s is optimizer for s in body):
                continue
            if not self._is_folded(id(schedule.outer.call)):
                continue
            members = [self._updated_of.get(id(m.statement)) for m in schedule.members]
            if any(m is None for m in members) or any(
                id(m.statement) in self._escaped for m in schedule.members
            ):
                continue
            body = _move(body, optimizer, members, up=schedule.move == "up")  # type: ignore[arg-type]
        return body

    # ------------------------------------------------------------------ imports

    def _remove_unused_imports(
        self, body: Sequence[cst.BaseStatement], *, module_level: bool
    ) -> list[cst.BaseStatement]:
        # Uses removed so far by statements that are translated (or still may be).
        discarded = sum((frame.discarded for frame in self._frames), Counter())
        if not discarded:
            return list(body)
        result = []
        for statement in body:
            if (
                isinstance(statement, cst.SimpleStatementLine)
                and id(statement) not in self._removed
            ):
                statement = self._prune_import_line(statement, discarded, module_level)
            result.append(statement)
        return result

    def _prune_import_line(
        self, line: cst.SimpleStatementLine, discarded: Counter[str], module_level: bool
    ) -> cst.SimpleStatementLine:
        kept: list[cst.BaseSmallStatement] = []
        changed = False
        for small in line.body:
            if isinstance(small, (cst.Import, cst.ImportFrom)):
                pruned = self._prune_import(small, discarded, module_level)
                if pruned is not small:
                    changed = True
                if pruned is None:
                    continue
                kept.append(pruned)
            else:
                kept.append(small)
        if not changed:
            return line
        if not kept:
            placeholder = line.with_changes(body=[cst.Pass()])
            self._removed[id(placeholder)] = (placeholder, _carried_comments(line))
            return placeholder
        kept[-1] = kept[-1].with_changes(semicolon=cst.MaybeSentinel.DEFAULT)
        pruned = line.with_changes(body=kept)
        # Comments of the names removed from a multi-line import go above it (pragmas: dropped).
        moved = [comment for comment in lost_comments(line, pruned) if not is_pragma(comment)]
        if moved:
            lines = escape_hatch.comment_lines(moved)
            pruned = pruned.with_changes(leading_lines=[*pruned.leading_lines, *lines])
        return pruned

    def _prune_import(
        self, node: cst.Import | cst.ImportFrom, discarded: Counter[str], module_level: bool
    ) -> Any:
        if isinstance(node.names, cst.ImportStar):
            return node
        scope = self.metadata[ScopeProvider].get(node)
        if scope is None or isinstance(scope, GlobalScope) != module_level:
            return node  # a local import in a module-level block: left alone
        roots = self.semantic_map.source_roots
        module = None
        if isinstance(node, cst.ImportFrom) and node.module:
            module = dotted_name(node.module)
        if isinstance(node, cst.ImportFrom) and (
            node.relative or module is None or module.partition(".")[0] not in roots
        ):
            return node
        kept = []
        for alias in node.names:
            if self._alias_unused(node, alias, discarded, module, roots, scope):
                continue
            kept.append(alias)
        if len(kept) == len(node.names):
            return node
        if not kept:
            return None
        if node.lpar if isinstance(node, cst.ImportFrom) else False:
            return node.with_changes(names=kept)
        kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return node.with_changes(names=kept)

    def _alias_unused(
        self,
        node: cst.Import | cst.ImportFrom,
        alias: cst.ImportAlias,
        discarded: Counter[str],
        module: str | None,
        roots: frozenset[str],
        scope: Any,
    ) -> bool:
        imported = dotted_name(alias.name)
        if imported is None:
            return False
        if module is None and imported.partition(".")[0] not in roots:
            return False
        bound = alias.evaluated_alias or (
            imported if module is not None else imported.partition(".")[0]
        )
        key = bound if (alias.asname or module is not None) else imported
        if discarded[key] == 0 and discarded[bound] == 0:
            return False  # nothing of ours used it: not our import to remove
        remaining = self._names[bound] - discarded[bound]
        if alias.asname is None and module is None and "." in imported:
            # `import torch.optim` binds `torch`; drop it when `torch.optim` is unused and
            # `torch` stays bound (or is unused too).
            dotted_left = self._names[imported] - discarded[imported]
            if remaining > 0 and dotted_left > 0:
                return False
            if remaining > 0 and not _binds_elsewhere(scope, bound, node):
                return False
        elif remaining > 0:
            return False
        if isinstance(scope, GlobalScope) and self._may_be_exported(bound):
            return False
        if self._runs_dynamic_code():
            return False
        return not _has_non_name_access(scope, bound, node)

    def _runs_dynamic_code(self) -> bool:
        """Whether the file calls one of the map's ``dynamic_code_calls`` (``exec``, ``eval``):
        the code it runs from a string may use any import."""
        if self._dynamic_code is None:
            resolver, dynamic = self._get_resolver(), self.semantic_map.dynamic_code_calls
            self._dynamic_code = any(
                resolver.called_function(call.func) in dynamic for call in _calls(self._tree)
            )
        return self._dynamic_code

    def _may_be_exported(self, name: str) -> bool:
        """Whether the module's ``__all__`` lists ``name``, or cannot be read (then any may be)."""
        if self._exports is None:
            self._exports = (exported_names(self._tree, self.metadata[ScopeProvider]),)
        names = self._exports[0]
        return names is None or name in names

    def _add_imports(
        self, body: list[cst.BaseStatement], keys: list[str]
    ) -> list[cst.BaseStatement]:
        """Insert the missing imports after the leading import block.

        A removed import still stands in ``body`` as a placeholder and counts as part of that
        block, so a new import put right after it inherits its blank lines and comments when
        the body is settled (``import torch`` replaced by ``import optax`` keeps the layout).
        """
        wanted = [self.semantic_map.imports[key] for key in dict.fromkeys(keys)]
        present = {
            _normalized(code_of(small))
            for stmt in body
            if isinstance(stmt, cst.SimpleStatementLine)
            for small in stmt.body
            if isinstance(small, (cst.Import, cst.ImportFrom))
        }
        missing = [spec for spec in wanted if _normalized(spec.statement) not in present]
        if not missing:
            return body
        index = _import_insertion_index(body, lambda s: id(s) in self._removed)
        new_lines = [spec.node() for spec in missing]
        return [*body[:index], *new_lines, *body[index:]]

    # ------------------------------------------------------------------ report

    def _publish(self, frame: _Frame) -> None:
        if not frame.records:
            return
        if self._positions is None and self.context.wrapper is not None:
            self._positions = self.context.wrapper.resolve(PositionProvider)
        published = []
        for node, record in frame.records:
            position = self._positions.get(node) if self._positions else None
            if position is not None:
                record = record.at(position.start.line, position.start.column + 1)
            record = record.with_file(self.context.filename)
            published.append(record)
            if record.kind == "escaped":
                self.warn(f"line {record.line}: escape hatch for {record.api}: {record.reason}")
        self.context.scratch.setdefault(_SCRATCH_RECORDS, []).extend(published)


def _unless_lossy(tree: cst.Module, result: cst.Module, lossy: str | None) -> cst.Module:
    """``result``, unless libcst would not write the file back byte for byte (``lossy``).

    libcst's runner writes ``result.bytes`` whenever they differ from the file: a file that
    needs no change is skipped (``SkipFile``), one that does is refused (``LossyRoundTrip``).
    """
    if lossy is None:
        return result
    if result is tree or result.bytes == tree.bytes:
        raise SkipFile(lossy)
    raise round_trip.LossyRoundTrip(lossy)


def _move(
    body: list[cst.BaseStatement],
    optimizer: cst.BaseStatement,
    members: list[cst.BaseStatement],
    *,
    up: bool,
) -> list[cst.BaseStatement]:
    """``members`` right before ``optimizer`` (up), or ``optimizer`` right after them (down)."""
    member_ids = {id(m) for m in members}
    if up:
        result: list[cst.BaseStatement] = []
        for statement in body:
            if id(statement) in member_ids:
                continue
            if statement is optimizer:
                result.extend(members)
            result.append(statement)
        return result
    last = max(i for i, s in enumerate(body) if id(s) in member_ids)
    result = [s for s in body[: last + 1] if s is not optimizer]
    return [*result, optimizer, *body[last + 1 :]]


def records_of(context: CodemodContext) -> list[Record]:
    """Report records a command left in ``context`` (converted constructs and escapes)."""
    return list(context.scratch.get(_SCRATCH_RECORDS, []))


def _with_updated_arguments(
    result: cst.BaseExpression, original: cst.Call, updated: cst.Call
) -> cst.BaseExpression:
    """Swap the original argument values the hook reused for their rewritten versions."""
    if len(original.args) != len(updated.args):
        return result
    swaps = {
        id(old.value): new.value
        for old, new in zip(original.args, updated.args, strict=True)
        if old.value is not new.value
    }
    if not swaps:
        return result

    class _Swap(cst.CSTTransformer):
        def on_visit(self, node: cst.CSTNode) -> bool:
            return id(node) not in swaps

        def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Any:
            return swaps.get(id(original_node), updated_node)

    return swaps.get(id(result), result) if id(result) in swaps else result.visit(_Swap())


def _argument_values(site: Any) -> list[tuple[str, cst.BaseExpression]]:
    """(parameter name, value) of a site's arguments, and of their tuple/list elements."""
    try:
        bound = site.entry.signature.bind(site.call) if site.entry is not None else None
    except Untranslatable:
        bound = None
    named = bound.items() if bound is not None else (("value", arg) for arg in site.call.args)
    values: list[tuple[str, cst.BaseExpression]] = []
    for name, arg in named:
        values.append((name, arg.value))
        if isinstance(arg.value, (cst.Tuple, cst.List)):
            values += [
                (f"{name}_{position}", element.value)
                for position, element in enumerate(arg.value.elements)
            ]
    return values


def _probable_suggestion(result: cst.BaseExpression) -> str:
    if isinstance(result, cst.Name) and result.value == "None":
        return "delete this statement if the receiver is a torch optimizer"
    return f"if the receiver is a torch optimizer: {code_of(result).strip()}"


def _names_in(node: cst.CSTNode) -> Counter[str]:
    """Names and dotted names used in ``node`` (import statements excluded)."""
    found: Counter[str] = Counter()

    class _Count(cst.CSTVisitor):
        def visit_Import(self, node: cst.Import) -> bool:
            return False

        def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
            return False

        def visit_Name(self, name: cst.Name) -> None:
            found[name.value] += 1

        def visit_Attribute(self, attribute: cst.Attribute) -> None:
            dotted = dotted_name(attribute)
            if dotted is not None:
                found[dotted] += 1

    node.visit(_Count())
    return found


def _carried_comments(line: cst.SimpleStatementLine) -> list[cst.EmptyLine]:
    """What a removed line hands to the next statement: the comment lines above it, and its
    other comments (inside a multi-line import, at the end of the line) except pragmas, which
    annotated the removed line only."""
    inner = [comment for small in line.body for comment in comments(small).elements()]
    trailing = line.trailing_whitespace.comment
    if trailing is not None:
        inner.append(trailing.value)
    kept = escape_hatch.comment_lines(comment for comment in inner if not is_pragma(comment))
    return [*line.leading_lines, *kept]


def _normalized(statement: str) -> str:
    return " ".join(statement.replace(";", " ").split())


def _import_matches(node: cst.CSTNode, statement: str) -> bool:
    if isinstance(node, (cst.Import, cst.ImportFrom)):
        return _normalized(code_of(node)) == _normalized(statement)
    return False


def _binds_elsewhere(scope: Any, name: str, node: cst.CSTNode) -> bool:
    return any(
        isinstance(assignment, Assignment) and assignment.node is not node
        for assignment in scope.assignments[name]
    )


def _calls(tree: cst.CSTNode) -> list[cst.Call]:
    """Every call in ``tree``."""
    calls: list[cst.Call] = []

    class _Calls(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            calls.append(node)

    tree.visit(_Calls())
    return calls


def _has_non_name_access(scope: Any, name: str, node: cst.CSTNode) -> bool:
    """Whether the import is also used where we do not count (e.g. a string annotation)."""
    for assignment in scope.assignments[name]:
        if getattr(assignment, "node", None) is not node:
            continue
        for access in assignment.references:
            if not isinstance(access.node, (cst.Name, cst.Attribute)):
                return True
    return False


def _module_level_import_roots(module: cst.Module) -> frozenset[str]:
    """Top-level packages imported at module level (also inside module-level if/try blocks)."""
    roots: set[str] = set()

    class _Imports(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return False

        def visit_ClassDef(self, node: cst.ClassDef) -> bool:
            return False

        def visit_Import(self, node: cst.Import) -> bool:
            roots.update((dotted_name(alias.name) or "").partition(".")[0] for alias in node.names)
            return False

        def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
            if not node.relative and node.module is not None:
                roots.add((dotted_name(node.module) or "").partition(".")[0])
            return False

        def visit_Expr(self, node: cst.Expr) -> bool:
            return False

        def visit_Assign(self, node: cst.Assign) -> bool:
            return False

    module.visit(_Imports())
    return frozenset(roots)


def _import_insertion_index(
    body: Sequence[cst.BaseStatement], is_removed_import: Callable[[cst.BaseStatement], bool]
) -> int:
    """After the docstring, ``__future__`` imports and the leading import block."""
    index = 0
    if body and _is_docstring(body[0]):
        index = 1
    last_import = index
    for position in range(index, len(body)):
        statement = body[position]
        if (
            is_removed_import(statement)
            or isinstance(statement, cst.SimpleStatementLine)
            and all(isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body)
        ):
            last_import = position + 1
            continue
        break
    return last_import


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )
