"""The engine: one visit per file that dispatches wired calls to their hooks.

``SwitcherooCommand`` is a libcst ``VisitorBasedCodemodCommand``: a command is its arguments
(``rewrite/options.py``), the hooks it runs (``HOOKS``) and the target that renders them
(``TARGET``). For every call it asks ``rewrite/dispatch.py`` which map entry (if any) the call
is wired to, runs that entry's hook (``targets.hooks.run_hook``) after the checks that keep the
output safe, and applies the result in one place (``rewrite/apply.py``). Statement frames,
escape hatches, removed statements and moves are ``rewrite/statements.py``; imports are
``rewrite/imports.py``. A file libcst would not write back byte for byte is never returned
changed (``ml_switcheroo.rewrite.round_trip``).
"""

from __future__ import annotations

import argparse
import functools
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import libcst as cst
from libcst.codemod import CodemodContext, SkipFile, VisitorBasedCodemodCommand
from libcst.metadata import (
    BuiltinScope,
    CodeRange,
    MetadataWrapper,
    ParentNodeProvider,
    PositionProvider,
    ScopeProvider,
)

from ml_switcheroo.analysis.cross_file import CrossFile
from ml_switcheroo.analysis.plan import Plan, PlanItem, Planner, Region, Site
from ml_switcheroo.analysis.prefilter import Prefilter, prefilter_for
from ml_switcheroo.analysis.repository import (
    index_for,
    may_change_across_files,
    repository_root,
)
from ml_switcheroo.analysis.resolver import BindingProvider, Resolver, Variable
from ml_switcheroo.analysis.second_stage import SecondStage, second_stage_for
from ml_switcheroo.analysis.torch_only import TorchOnlyUse
from ml_switcheroo.model.hygiene import UserExpression, hygienic
from ml_switcheroo.rewrite import command_support, round_trip
from ml_switcheroo.rewrite.apply import (
    apply_call_result,
    apply_region_result,
    result_expression,
)
from ml_switcheroo.rewrite.dispatch import (
    Wired,
    Wiring,
    module_level_import_roots,
    wired_call,
    wired_member,
)
from ml_switcheroo.rewrite.imports import ImportEdits
from ml_switcheroo.rewrite.options import add_arguments
from ml_switcheroo.rewrite.parse_guard import SourceTooDeep, check_file
from ml_switcheroo.rewrite.receivers import Receivers
from ml_switcheroo.rewrite.report import Record
from ml_switcheroo.rewrite.statements import Frame, Statements, names_in
from ml_switcheroo.spec import escape_hatch
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.roles import BACKWARD, CONSTRUCTOR, STEP, ZERO_GRAD
from ml_switcheroo.spec.semantic_map import ApiEntry, SemanticMap
from ml_switcheroo.spec.signature import code_of, dotted_name
from ml_switcheroo.targets.catalogue import DEFAULT_TARGET, load_semantic_map
from ml_switcheroo.targets.hooks import (
    Escape,
    HookContext,
    HookResult,
    Keep,
    Remove,
    Replace,
    ReplaceRegion,
    run_hook,
)
from ml_switcheroo.targets.target import Target

_SCRATCH_RECORDS = "ml_switcheroo.records"
# What a RecursionError in libcst's (or the engine's) tree walks means, in one line.
# The reason of a training-step region whose hook says nothing else.
REGION_REASON = "a training step: torch updates in place"
TOO_DEEP = "not converted: nested too deeply for libcst (maximum recursion depth exceeded)"


class SwitcherooCommand(VisitorBasedCodemodCommand):
    """Base of every ml_switcheroo command; subclasses choose the hooks they run."""

    DESCRIPTION: str = "Translate PyTorch optimizer code to JAX/Optax."
    #: Hook names this command runs; None runs every hook in the map.
    HOOKS: ClassVar[frozenset[str] | None] = None
    METADATA_DEPENDENCIES = (ScopeProvider,)
    TARGET: ClassVar[Target] = DEFAULT_TARGET  # the hooks that render the map entries

    @staticmethod
    def add_args(arg_parser: argparse.ArgumentParser) -> None:
        add_arguments(arg_parser)

    def __init__(
        self,
        context: CodemodContext,
        semantic_map: Sequence[str] = (),
        exact: bool = False,
        steps_per_epoch: str | None = None,
        prefilter: bool = True,
        cross_file: bool = True,
    ) -> None:
        if context.filename and os.path.isfile(context.filename):
            # libcst's runner makes the command right before it parses the file: refuse a file
            # that would crash its parser (and the whole run) while there is still time.
            check_file(context.filename)
        if not command_support.init_without_matcher_scan(self, context):
            super().__init__(context)
        self.semantic_map: SemanticMap = load_semantic_map(semantic_map, self.TARGET)
        self.entries: dict[str, ApiEntry] = self.semantic_map.for_hooks(self.HOOKS)
        self.options: dict[str, Any] = {"exact": exact, "steps_per_epoch": steps_per_epoch}
        self._map_files = tuple(semantic_map)
        self._cross_file_enabled = cross_file  # False in the dry runs cross-file facts make
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
            if self.proved_unchanged(data):
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
            result = self.rewrite(tree, fresh=fresh)
        except RecursionError:
            raise SourceTooDeep(TOO_DEEP) from None
        return _unless_lossy(tree, result, lossy)

    def proved_unchanged(self, data: bytes) -> bool:
        """Whether the pre-filter's two stages (bytes, then ``ast``) prove a file of these bytes
        needs no change, and no fact from another file of the repository can change it."""
        if self.prefilter is None:
            return False
        if self.prefilter.matches(data) and self.second_stage.keeps_by_itself(data):
            return False
        # The index is asked here, once: with the target's name too (see the method).
        return not self._may_change_across_files()

    def rewrite(self, tree: cst.Module, *, fresh: bool) -> cst.Module:
        """The command run over ``tree`` (``fresh``: just parsed by libcst's runner, so libcst's
        deep copy is skipped); what ``transform_module`` and the ``convert`` command share."""
        if fresh:
            return command_support.transform_fresh_tree(self, tree)
        return super().transform_module(tree)

    # ------------------------------------------------------------------ traversal plumbing

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        self._resolver: Resolver | None = None
        self._statements = Statements()
        self._body_ids: set[int] = set()
        self._classes: list[cst.ClassDef] = []
        self._names: Counter[str] = Counter()
        self._noop_calls: set[int] = set()
        self._positions: Any = None
        self._parents: Any = None
        self._body_ids.update(id(s) for s in tree.body)
        self._already_escaped: set[int] = escape_hatch.escaped_statements(tree.body)
        self._wiring = Wiring(self.semantic_map, self.entries, module_level_import_roots(tree))
        self._imports = ImportEdits(
            self.semantic_map,
            tree,
            self.metadata[ScopeProvider],
            self._get_resolver,
            self._names,
            self._statements.removed,
        )
        self._tree = tree
        self._plan: Plan | None = None
        # (call, one of its arguments) for every call of the plan: see _hygienic
        self._user_expressions: list[tuple[cst.Call, UserExpression]] | None = None
        self._receivers = Receivers(
            target=self.TARGET,
            resolver=self._get_resolver,
            enclosing=self._enclosing,
            wired=self._wired_entry,
            plan=self._get_plan,
            dry_run=self._dry_run,
            position=self._position,
        )
        # A training-step region starts at the statement holding the backward pass, which may
        # come before the file's first wired call (`loss.backward(); clip(...); opt.step()` in
        # a function defined before the optimizer is built): a plan built on that call would
        # come too late for it. So a file that calls a backward method is planned up front.
        # Likewise a torch-only use of a translated optimizer (`pickle.dump(optimizer, f)` in a
        # function defined before the optimizer is built): files that import torch are planned
        # up front.
        if self.semantic_map.backward_methods & self._get_resolver().called_methods(tree) or (
            self._wiring.imported_roots & self.semantic_map.source_roots
        ):
            self._get_plan()
        return tree.visit(self)

    # Dispatch directly: this command uses no matchers, and the matcher bookkeeping of
    # MatcherDecoratableTransformer costs time on every node.
    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, cst.BaseStatement) and id(node) in self._body_ids:
            frame = Frame()
            self._statements.frames.append(frame)
            if id(node) in self._already_escaped:
                frame.skip = True
                self._names.update(names_in(node))
                return False
            region = self._plan.region_at(node) if self._plan else None
            if region is not None:
                frame.skip = True
                self._names.update(names_in(node))
                return False
            uses = self._plan.torch_only_in(node) if self._plan else None
            if uses:
                self._escape_torch_only_uses(frame, uses)
        return cst.CSTTransformer.on_visit(self, node)

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Any:
        is_statement = (
            isinstance(original_node, cst.BaseStatement) and id(original_node) in self._body_ids
        )
        if is_statement and self._statements.frames[-1].skip:
            self._statements.frames.pop()  # an escape hatch (earlier run or training step)
            region = self._plan.region_at(original_node) if self._plan else None
            if region is not None:
                return self._region_statement(original_node, region)
            return updated_node
        result = cst.CSTTransformer.on_leave(self, original_node, updated_node)
        if is_statement:
            return self._statements.leave(original_node, result)
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
        if original_node.attr.value not in self._wiring.attributes:
            return updated_node
        wired = wired_member(
            self._wiring, self._get_resolver(), original_node, self._enclosing(), attribute=True
        )
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
        """Run ``entry``'s hook on a call (or attribute read) and apply its result."""
        plan = self._get_plan()
        requested: list[str] = []
        context = self._hook_context(
            entry, qualified_name, plan.item_for(original_node), requested.append, receiver
        )
        context.receiver_translated = lambda: self._receivers.receiver_translated(
            original_node, probable
        )
        result = self._checked_result(original_node, context, receiver, probable, requested)
        frame = self._statements.frames[-1]
        return apply_call_result(
            result, frame, original_node, updated_node, context, requested, self._noop_calls
        )

    def _checked_result(
        self,
        original_node: Any,
        context: HookContext,
        receiver: str | None,
        probable: bool,
        requested: list[str],
    ) -> HookResult:
        """The hook's result, or an ``Escape`` when a check before or after it refuses."""
        entry, plan = context.entry, self._get_plan()
        try:
            if receiver is None:
                self._receivers.check_one_import(original_node, context.qualified_name)
            planned = plan.escape_for(original_node)
            if planned is not None:
                raise planned
            if receiver is not None:
                self._receivers.check_bindings_agree(original_node, entry, receiver)
            # Hooks see the original call, so metadata (scopes, bindings) applies to its parts;
            # rewrites already made inside its arguments are put back afterwards.
            result = run_hook(self.TARGET.hook(entry.hook), original_node, context)
            if isinstance(result, Escape):
                return result
            attached = plan.attachment(original_node)
            if attached is not None and not self._statements.is_folded(id(attached)):
                raise Untranslatable(
                    "it belongs to an optimizer that was not translated together with it "
                    "(see the optimizer's statement)"
                )
            changes = not isinstance(result, Keep)
            if receiver is not None and changes:
                self._receivers.check_receiver_translates(original_node, receiver, entry)
            if probable and changes:
                assert isinstance(result, (Replace, Remove))
                raise Untranslatable(
                    f"`{receiver}` is an unannotated parameter, taken for a "
                    f"{entry.receiver_type} only because of its name"
                    + self._cross_file_reason(original_node),
                    _probable_suggestion(result),
                )
            self._imports.check_names(original_node, requested)
        except Untranslatable as exc:
            return Escape(exc.reason, exc.suggestion)
        return result

    def _enclosing(self) -> cst.ClassDef | None:
        """The class whose body holds the node being visited."""
        return self._classes[-1] if self._classes else None

    def _wired_entry(
        self, call: cst.Call, enclosing: cst.ClassDef | None | bool = False
    ) -> Wired | None:
        """The map entry ``call`` is wired to (``rewrite.dispatch.wired_call``)."""
        if enclosing is False:
            enclosing = self._enclosing()
        return wired_call(self._wiring, self._get_resolver(), call, enclosing or None)

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
                positions=self._node_positions,
                filename=self.context.filename,
                region_start=self.TARGET.region_start,
            ).build()
        return self._plan

    def _dry_run(self, call: cst.Call, wired: Wired) -> tuple[bool, str | None, list[int]]:
        """Run the hook of constructor ``call`` without applying it: whether it translates, its
        translation's text, and the calls it folds."""
        entry, name = wired.entry, wired.name
        plan = self._get_plan()
        context = self._hook_context(entry, name, plan.item_for(call), lambda key: None)
        try:
            planned = plan.escape_for(call)
            if planned is not None:
                raise planned
            self._receivers.check_one_import(call, name)
            result = run_hook(self.TARGET.hook(entry.hook), call, context)
            if isinstance(result, (Escape, ReplaceRegion)):
                raise Untranslatable(getattr(result, "reason", "a region for one call"))
        except Untranslatable:
            return False, None, context.folded
        rendered = call if isinstance(result, Keep) else result_expression(result)
        return True, code_of(rendered).strip(), context.folded

    def _position(self, node: cst.CSTNode) -> Any:
        """The position of a node of the file (None when unknown: no metadata wrapper)."""
        if self.context.wrapper is None:
            return None
        return self._node_positions().get(node)

    def _node_positions(self) -> Mapping[cst.CSTNode, CodeRange]:
        """The file's node positions (the plan's keys), resolved once per file."""
        if self.context.wrapper is None:
            return MetadataWrapper(self._tree, unsafe_skip_copy=True).resolve(PositionProvider)
        if self._positions is None:
            self._positions = self.context.wrapper.resolve(PositionProvider)
        return self._positions  # type: ignore[no-any-return]

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
            state_name=self.TARGET.state_name,
            receiver=receiver,
            plan=plan_item,
            qualify=self._get_resolver().imported_names,
            enclosing_class=self._enclosing(),
            hygiene=self._hygienic,
            variable=self._variable,
            origins=lambda node: self._get_resolver().reaching_values(node, self._enclosing()),
            visible_names=self._visible_names,
            translates=self._receivers.becomes_translated,
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
        enclosing = self._enclosing()
        return self._get_resolver().bound_value(node, enclosing)

    def _variable(self, name: cst.Name) -> Variable | None:
        """Every binding and read (with its parents) of the variable ``name`` refers to."""
        if self.context.wrapper is None:
            return None
        if self._parents is None:
            self._parents = self.context.wrapper.resolve(ParentNodeProvider)
        return self._get_resolver().variable(name, self._parents)

    def _escape_torch_only_uses(self, frame: Frame, uses: list[TorchOnlyUse]) -> None:
        """Uses of a translated optimizer (or scheduler) as the torch object: mark the statement
        (the map's text), unless the constructor is left as torch code."""
        for use in uses:
            if not self._receivers.becomes_translated(use.origin.call):
                continue  # still the torch object: nothing changes for that code
            translation = self._receivers.dry_results.get(id(use.origin.call), "")
            reason = use.render(use.text.reason, translation)
            suggest = use.render(use.text.suggest, translation)
            frame.escapes.append(escape_hatch.Escape(use.origin.entry.name, reason, suggest))
            frame.escape_nodes.append(use.node)

    def _get_resolver(self) -> Resolver:
        if self._resolver is None:
            scopes = self.metadata[ScopeProvider]
            bindings = self.context.wrapper.resolve(BindingProvider) if self.context.wrapper else {}
            self._resolver = Resolver(self.semantic_map, scopes, bindings)  # type: ignore[arg-type]
            self._resolver.cross_file = self._cross_file()
        return self._resolver

    # ------------------------------------------------------------------ facts from other files

    def _repository_file(self) -> str | None:
        """This file's path when facts from other files apply (a file on disk)."""
        filename = self.context.filename
        if not self._cross_file_enabled or not filename or not os.path.isfile(filename):
            return None
        return os.path.abspath(filename)

    def _cross_file(self) -> CrossFile | None:
        """The repository index read with this command's map (``analysis/cross_file.py``)."""
        path = self._repository_file()
        if path is None:
            return None
        roles = (STEP, ZERO_GRAD)  # the calls rewritten on an optimizer another file passes
        methods = frozenset(
            entry.method
            for entry in self.semantic_map.apis.values()
            if entry.role in roles and entry.method and not entry.attribute
        )
        return CrossFile(
            index_for(repository_root(path)),
            path,
            self.semantic_map,
            self._constructor_translates_at,
            methods,
            self.TARGET.name,
        )

    def _constructor_translates_at(self, path: str, line: int) -> bool:
        """Whether the optimizer constructor at ``path:line`` translates (a dry run of that
        file without facts from other files)."""
        try:
            stamp = os.stat(path).st_mtime_ns
        except OSError:
            return False
        options = (self._map_files, bool(self.options["exact"]), self.options["steps_per_epoch"])
        return line in _translated_constructor_lines(path, stamp, options)

    def _may_change_across_files(self) -> bool:
        """Whether a file the pre-filter would skip can change through facts from other
        files (a function of it receives a translated optimizer): see
        ``RepositoryIndex.may_change``."""
        path = self._repository_file()
        if path is None:
            return False
        roots = self.prefilter.roots if self.prefilter else self.semantic_map.source_roots
        # A caller converted earlier in the same run (libcst's runner writes as it goes) holds
        # the target's name instead.
        words = [root.encode() for root in (*roots, self.TARGET.name)]
        return may_change_across_files(path, words)

    def _translated_constructor_lines(self) -> frozenset[int]:
        """The lines of this file's optimizer constructors whose hook succeeds (whether or not
        a torch-only use keeps one as torch code here): what other files ask of a dry run."""
        if self._plan is None:
            return frozenset()
        lines: set[int] = set()
        for site in self._plan.sites:
            if site.role == CONSTRUCTOR and self._receivers.constructor_translates(site.call):
                position = self._position(site.call)
                if position is not None:
                    lines.add(position.start.line)
        return frozenset(lines)

    def _cross_file_reason(self, node: Any) -> str:
        member = node.func if isinstance(node, cst.Call) else node
        if not isinstance(member, cst.Attribute):
            return ""
        reason = self._get_resolver().cross_file_reason(member.value)
        return f"; across files: {reason}" if reason else ""

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

    def _region_statement(self, original: cst.BaseStatement, region: Region) -> Any:
        """A statement of a training-step region: the target's rendering of the region, or
        the region kept as is in one escape hatch."""
        anchor = region.anchor
        api = anchor.entry.name if anchor.entry else "torch.optim.Optimizer.step"
        requested: list[str] = []
        result: HookResult | None = None
        if original is region.statements[0]:
            result = self._region_result(region, requested)
            if not isinstance(result, ReplaceRegion):
                escape = result if isinstance(result, Escape) else Escape(REGION_REASON)
                result = self._with_binding_conflict(escape, anchor)
        return apply_region_result(self._statements, original, region, result, api, requested)

    def _with_binding_conflict(self, escape: Escape, anchor: Site) -> Escape:
        """A training step on a receiver bound to a translated optimizer and to something else:
        its reason says that first (the step stays torch code on every path)."""
        entry = anchor.entry
        if anchor.receiver is None or entry is None or entry.receiver_type is None:
            return escape
        try:
            self._receivers.check_bindings_agree(
                anchor.call, entry, code_of(anchor.receiver).strip()
            )
        except Untranslatable as exc:
            return Escape(f"{exc.reason}. Besides, {escape.reason}", escape.suggestion)
        return escape

    def _region_result(self, region: Region, requested: list[str]) -> HookResult:
        """Ask the training-step hook what becomes of the region."""
        backward = region.backward.entry if region.backward and region.backward.entry else None
        entry = backward or self.semantic_map.entry_with_role(BACKWARD)
        if entry is None:
            return Escape(REGION_REASON)
        context = self._hook_context(entry, entry.name, region, requested.append)
        return run_hook(self.TARGET.hook(entry.hook), region.anchor.call, context)

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        discarded = self._statements.discarded()
        body = self._imports.prune(updated_node.body, discarded, module_level=False)
        body, pending = self._statements.settle_body(body, self._plan)
        if not body:
            body = [cst.SimpleStatementLine(body=[cst.Pass()], leading_lines=pending)]
            pending = []
        return updated_node.with_changes(body=body, footer=[*pending, *updated_node.footer])

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        if not self._cross_file_enabled:
            self.translated_constructor_lines = self._translated_constructor_lines()
        frame = self._statements.frames[0]
        discarded = self._statements.discarded()
        body = self._imports.prune(updated_node.body, discarded, module_level=True)
        body = self._imports.add(body, frame.imports)  # before settling: see ImportEdits.add
        body, pending = self._statements.settle_body(body, self._plan)
        self._publish(frame)
        return updated_node.with_changes(body=body, footer=[*pending, *updated_node.footer])

    # ------------------------------------------------------------------ report

    def _publish(self, frame: Frame) -> None:
        if not frame.records:
            return
        published = []
        for node, record in frame.records:
            position = self._position(node)
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


@functools.lru_cache(maxsize=512)
def _translated_constructor_lines(
    path: str, stamp: int, options: tuple[tuple[str, ...], bool, str | None]
) -> frozenset[int]:
    """The lines of the optimizer constructors whose hook succeeds in ``path`` (``stamp``:
    its modification time), run without facts from other files."""
    map_files, exact, steps_per_epoch = options
    context = CodemodContext(filename=path)
    try:
        with open(path, "rb") as handle:
            tree = cst.parse_module(handle.read())
        command = SwitcherooCommand(
            context, map_files, exact=exact, steps_per_epoch=steps_per_epoch, cross_file=False
        )
        command.transform_module(tree)
    except Exception:  # a file that cannot be converted: nothing in it translates
        return frozenset()
    return getattr(command, "translated_constructor_lines", frozenset())


def records_of(context: CodemodContext) -> list[Record]:
    """Report records a command left in ``context`` (converted constructs and escapes)."""
    return list(context.scratch.get(_SCRATCH_RECORDS, []))


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


def _probable_suggestion(result: Replace | Remove) -> str:
    if isinstance(result, Remove):
        return "delete this statement if the receiver is a torch optimizer"
    return f"if the receiver is a torch optimizer: {code_of(result_expression(result)).strip()}"
