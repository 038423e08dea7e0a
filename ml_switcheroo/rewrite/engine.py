"""The engine: one visit per file that dispatches wired calls to their hooks.

``SwitcherooCommand`` is a libcst ``VisitorBasedCodemodCommand``: a command is its arguments
(``rewrite/options.py``), the hooks it runs (``HOOKS``) and the target that renders them
(``TARGET``). The class only drives the visit: for every call it asks ``rewrite/dispatch.py``
which map entry (if any) the call is wired to, runs that entry's hook with the checks that keep
the output safe (``rewrite/hook_runs.py``, in the context ``rewrite/hook_context.py`` builds)
and applies the result in one place (``rewrite/apply.py``). The parts it drives, made per file:
statement frames, escape hatches and moves (``statements.py``), imports (``imports.py``),
training-step regions (``regions.py``), receivers (``receivers.py``), node positions
(``positions.py``), questions about other files (``cross_file_questions.py``), the report's
records (``publish.py``). What runs before the visit (the pre-filter, libcst speed-ups, the
byte-exact round trip) is ``command_support.py``.
"""

from __future__ import annotations

import argparse
import functools
import os
from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

import libcst as cst
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand
from libcst.metadata import ScopeProvider

from ml_switcheroo.analysis import changed_models, cst_walk, reaching, stepping
from ml_switcheroo.analysis.plan import Plan, Planner
from ml_switcheroo.analysis.prefilter import Prefilter, prefilter_for
from ml_switcheroo.analysis.resolver import BindingProvider, Resolver
from ml_switcheroo.analysis.second_stage import SecondStage, second_stage_for
from ml_switcheroo.model.translate import (
    BoundCall,
    check_escapes,
    dispatched,
    render_chain,
    render_value,
)
from ml_switcheroo.rewrite import command_support
from ml_switcheroo.rewrite.apply import apply_call_result, apply_torch_only_uses
from ml_switcheroo.rewrite.cross_file_questions import (
    CrossFileQuestions,
    translated_constructor_lines,
)
from ml_switcheroo.rewrite.dispatch import (
    Wired,
    Wiring,
    module_level_import_roots,
    wired_call,
    wired_member,
)
from ml_switcheroo.rewrite.hook_context import HookContexts
from ml_switcheroo.rewrite.hook_runs import HookRuns
from ml_switcheroo.rewrite.imports import ImportEdits
from ml_switcheroo.rewrite.options import add_arguments
from ml_switcheroo.rewrite.parse_guard import check_file
from ml_switcheroo.rewrite.positions import Positions
from ml_switcheroo.rewrite.publish import publish
from ml_switcheroo.rewrite.publish import records_of as records_of  # imported from here
from ml_switcheroo.rewrite.receivers import Receivers
from ml_switcheroo.rewrite.regions import OutsideCalls, RegionStatements
from ml_switcheroo.rewrite.run_snapshot import RunSnapshot
from ml_switcheroo.rewrite.statements import Frame, Statements, names_in
from ml_switcheroo.spec import escape_hatch
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.semantic_map import ApiEntry, SemanticMap
from ml_switcheroo.spec.signature import code_of, dotted_name
from ml_switcheroo.targets.catalogue import DEFAULT_TARGET, load_semantic_map
from ml_switcheroo.targets.hooks import HookResult, hook_specs
from ml_switcheroo.targets.target import Target


class SwitcherooCommand(VisitorBasedCodemodCommand):
    """Base of every ml_switcheroo command; subclasses choose the hooks they run."""

    DESCRIPTION: str = "Translate PyTorch optimizer code to JAX/Optax."
    #: Hook names this command runs; None runs every hook in the map.
    HOOKS: ClassVar[frozenset[str] | None] = None
    # Resolved together: libcst computes the binding facts in the same walk as the expression
    # contexts scopes are built on (one walk of the tree fewer than resolving them apart).
    # ``RunSnapshot`` gives no metadata: under libcst's runner it pins the run's files first.
    METADATA_DEPENDENCIES = (RunSnapshot, ScopeProvider, BindingProvider)
    TARGET: ClassVar[Target] = DEFAULT_TARGET  # the hooks that render the map entries

    @classmethod
    def add_args(cls, arg_parser: argparse.ArgumentParser) -> None:
        add_arguments(arg_parser, cls.TARGET.label, (cls.TARGET,))

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
        self._cross_file_enabled = cross_file  # False in the dry runs cross-file facts make
        self.prefilter: Prefilter | None = (
            prefilter_for(self.semantic_map, self.HOOKS) if prefilter else None
        )
        self._across = CrossFileQuestions(
            filename=lambda: self.context.filename,
            enabled=cross_file,
            semantic_map=self.semantic_map,
            target=self.TARGET,
            prefilter=self.prefilter,
            map_files=semantic_map,
            options=self.options,
            dry_command=dry_command_for(self.TARGET),
        )
        self.second_stage: SecondStage = second_stage_for(self.semantic_map, self.HOOKS)
        command_support.pause_collector_for_file()  # libcst's runner parses the file next

    def transform_module(self, tree: cst.Module) -> cst.Module:
        """libcst's entry point, with the map's pre-filter in front of the metadata
        (``rewrite.command_support.prefiltered_transform``)."""
        caller = command_support.caller_frame()
        with command_support.file_collector_paused():
            return command_support.prefiltered_transform(self, tree, caller)

    def proved_unchanged(self, data: bytes) -> bool:
        """Whether the pre-filter's two stages (bytes, then ``ast``) prove a file of these bytes
        needs no change, and no fact from another file of the repository can change it."""
        if self.prefilter is None:
            return False
        if self.prefilter.matches(data) and self.second_stage.keeps_by_itself(data):
            return False
        # The index is asked here, once: with the target's name too (see the method).
        return not self._across.may_change_across_files()

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
        self._positions = Positions(self.context, tree)
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
        self._contexts = HookContexts(
            context=self.context,
            semantic_map=self.semantic_map,
            options=self.options,
            target=self.TARGET,
            scopes=self.metadata[ScopeProvider],
            resolver=self._get_resolver,
            enclosing=self._enclosing,
            plan=self._get_plan,
            index_only=self._across.index_only,
        )
        self._runs = HookRuns(
            target=self.TARGET,
            plan=self._get_plan,
            resolver=self._get_resolver,
            contexts=self._contexts,
            statements=self._statements,
            imports=self._imports,
        )
        self._receivers = Receivers(
            target=self.TARGET,
            resolver=self._get_resolver,
            enclosing=self._enclosing,
            wired=self._wired_entry,
            plan=self._get_plan,
            dry_run=self._runs.dry,
            position=self._positions.of,
        )
        self._runs.receivers = self._receivers
        self._contexts.translates = self._receivers.becomes_translated
        self._contexts.translation_of = self._receivers.translation_of
        self._regions = RegionStatements(
            statements=self._statements,
            semantic_map=self.semantic_map,
            target=self.TARGET,
            receivers=self._receivers,
            contexts=self._contexts,
            imports=self._imports,
            checked=self._checked_alone,
        )
        self._contexts.region_rendered = self._regions.rendered
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
        try:
            return tree.visit(self)
        finally:  # no tree of this file kept past its conversion
            reaching.forget()
            changed_models.forget()
            stepping.forget()

    # Dispatch directly: this command uses no matchers, and the matcher bookkeeping of
    # MatcherDecoratableTransformer costs time on every node.
    def on_visit(self, node: cst.CSTNode) -> bool:
        # the set first: the ABC test is a Python-level call for any node but a statement's
        if id(node) in self._body_ids and isinstance(node, cst.BaseStatement):
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
                apply_torch_only_uses(frame, uses, self._receivers)
            elif self._idle(node):
                frame.skip = True  # nothing in it to rewrite: left as it is, names counted
                self._names.update(names_in(node))
                return False
        return cst_walk.on_visit(self, node)  # CSTTransformer.on_visit, looked up once

    def _idle(self, statement: cst.CSTNode) -> bool:
        """Whether the plan proves ``statement`` holds nothing the rewrite changes or reads
        (``Plan.busy``): no wired call or attribute, backward pass, import, region statement
        or torch-only use."""
        busy = self._plan.busy if self._plan else None
        return busy is not None and id(statement) not in busy

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Any:
        is_statement = id(original_node) in self._body_ids and isinstance(
            original_node, cst.BaseStatement
        )
        if is_statement and self._statements.frames[-1].skip:
            self._statements.frames.pop()  # an escape hatch (earlier run or training step)
            region = self._plan.region_at(original_node) if self._plan else None
            if region is not None:
                return self._regions.statement(original_node, region)
            if self._statements.outside and id(original_node) not in self._already_escaped:
                return updated_node.visit(OutsideCalls(self._statements.outside))
            return updated_node
        leave = cst_walk.leave_method(self, original_node)  # CSTTransformer.on_leave's
        result = updated_node if leave is None else leave(self, original_node, updated_node)
        enclosing = self._statements.frames[-1].enclosing
        if enclosing and id(original_node) in enclosing:
            result = enclosing.pop(id(original_node))  # a hook's ReplaceEnclosing
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
        text = self._statements.outside.get(id(original_node))
        if text is not None:
            return cst.parse_expression(text)
        if original_node.attr.value not in self._wiring.attributes:
            return updated_node
        wired = wired_member(
            self._wiring, self._get_resolver(), original_node, self._enclosing(), attribute=True
        )
        if wired is None:
            return updated_node
        return self._dispatch(original_node, updated_node, *wired)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        text = self._statements.outside.get(id(original_node))
        if text is not None:
            return cst.parse_expression(text)
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
        context = self._contexts.build(
            entry, qualified_name, plan.item_for(original_node), requested.append, receiver
        )
        context.receiver_translated = lambda: self._receivers.receiver_translated(
            original_node, probable
        )
        result = self._runs.checked(original_node, context, receiver, probable, requested)
        frame = self._statements.frames[-1]
        return apply_call_result(
            result, frame, original_node, updated_node, context, requested, self._noop_calls
        )

    def _checked_alone(self, call: cst.Call) -> tuple[ApiEntry, HookResult] | None:
        """A wired call's entry and its hook's checked result, applied nowhere (a call a
        training-step region keeps: does it escape on its own?); None for another call."""
        wired = self._wired_entry(call)
        if wired is None:
            return None
        entry, qualified_name, receiver, probable = wired
        plan = self._get_plan()
        context = self._contexts.build(
            entry, qualified_name, plan.item_for(call), lambda key: None, receiver
        )
        return entry, self._runs.checked(call, context, receiver, probable, [])

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
                positions=self._positions.all,
                filename=self.context.filename,
                render=self.TARGET.untranslatable,
                transform=self._clip_transform,
                clip_norm=self._clip_norm,
                schedule_text=self._schedule_text,
                region_start=self.TARGET.region_start,
                writes_epoch_lr=self.TARGET.writes_epoch_lr,
                wired_attributes=self._wiring.attributes,
            ).build()
        return self._plan

    def _clip_transform(self, call: cst.Call, entry: ApiEntry) -> str | None:
        """The map's transform of clip ``call`` as this command writes it, for the suggestion
        of a clip finding; None when the map escapes it."""
        render = self.TARGET.untranslatable
        exact = bool(self.options.get("exact"))
        try:
            bound = BoundCall.bind(entry, call)
            check_escapes(bound, exact, render=render)
            chain = self.semantic_map.chain_function
            expression = render_chain(bound, exact, chain, lambda key: None, render=render)
        except Untranslatable:
            return None
        return code_of(expression).strip()

    def _schedule_text(self, call: cst.Call, entry: ApiEntry, lr: str) -> str | None:
        """The schedule scheduler ``call`` means as this command writes it, the optimizer's
        lr (the hook's placeholders) written as ``lr``, for the suggestion of a scheduler's
        escape; None when the map escapes it or it reads other values (a factory's)."""
        render = self.TARGET.untranslatable
        exact = bool(self.options.get("exact"))
        spec = hook_specs().get(entry.hook or "")
        try:
            entry, forwarded = dispatched(entry, call, self.semantic_map.apis)
            bound = BoundCall.bind(entry, forwarded)
            for placeholder in spec.placeholders if spec is not None else ():
                bound.overrides[placeholder] = cst.Name(lr)
            check_escapes(bound, exact, render=render)
            chain = self.semantic_map.chain_function
            expression = render_chain(bound, exact, chain, lambda key: None, render=render)
        except Exception:  # noqa: BLE001 - any failure: no written-out schedule
            return None
        text = " ".join(code_of(expression).split())
        return text if len(text) <= 240 else None

    def _clip_norm(self, call: cst.Call, entry: ApiEntry) -> str | None:
        """What clip ``call`` returns, from the gradients ``grads`` (the map's ``value``), for
        the suggestion of a clip finding; None when the map has none for its arguments."""
        exact = bool(self.options.get("exact"))
        try:
            bound = BoundCall.bind(entry, call)
            value = render_value(bound, exact, cst.Name("grads"), lambda key: None)
        except Untranslatable:
            return None
        return code_of(value).strip() if value is not None else None

    def _get_resolver(self) -> Resolver:
        if self._resolver is None:
            scopes = self.metadata[ScopeProvider]
            bindings = self.context.wrapper.resolve(BindingProvider) if self.context.wrapper else {}
            self._resolver = Resolver(self.semantic_map, scopes, bindings)  # type: ignore[arg-type]
            self._resolver.cross_file = self._across.cross_file()
        return self._resolver

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
            self.translated_constructor_lines = translated_constructor_lines(
                self._plan, self._receivers, self._positions.of
            )
        frame = self._statements.frames[0]
        discarded = self._statements.discarded()
        body = self._imports.prune(updated_node.body, discarded, module_level=True)
        body = self._imports.add(body, frame.imports)  # before settling: see ImportEdits.add
        body, pending = self._statements.settle_body(body, self._plan)
        publish(frame, self.context, self._positions.of, self.warn)
        return updated_node.with_changes(body=body, footer=[*pending, *updated_node.footer])


@functools.cache
def dry_command_for(target: Target) -> type[SwitcherooCommand]:
    """The command a dry run of another file runs: every hook, rendered for ``target`` (a
    constructor the NNX target escapes, param groups, is no translated optimizer to the
    files that call its builder, even where the optax target translates it)."""
    if target is DEFAULT_TARGET:
        return SwitcherooCommand
    return type(f"Dry{target.name.title()}Command", (SwitcherooCommand,), {"TARGET": target})
