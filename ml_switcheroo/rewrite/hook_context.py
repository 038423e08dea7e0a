"""What a hook sees: the ``HookContext`` of one call of a file, with its hygiene and lookups.

``HookContexts`` is made per file by the engine. ``build`` makes the context of a map entry's
hook; the context's ``hygiene`` keeps generated code clear of the user's names
(``model.hygiene``), its ``lookup`` and ``variable`` answer from the file's name resolution.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.metadata import BuiltinScope, GlobalScope

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.cross_file import CrossFile
from ml_switcheroo.analysis.parents import parent_map
from ml_switcheroo.analysis.plan import Plan, PlanItem, Region
from ml_switcheroo.analysis.plan_walks import missed_bindings
from ml_switcheroo.analysis.resolver import Resolver, Variable
from ml_switcheroo.analysis.stored import owner_of
from ml_switcheroo.model.hygiene import UserExpression, hygienic
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.semantic_map import ApiEntry, SemanticMap
from ml_switcheroo.spec.signature import code_of
from ml_switcheroo.targets.hooks import HookContext
from ml_switcheroo.targets.target import Target


class HookContexts:
    """Builds the hook contexts of one file."""

    def __init__(
        self,
        *,
        context: CodemodContext,
        semantic_map: SemanticMap,
        options: dict[str, Any],
        target: Target,
        scopes: Mapping[cst.CSTNode, Any],
        resolver: Callable[[], Resolver],
        enclosing: Callable[[], cst.ClassDef | None],
        plan: Callable[[], Plan],
        index_only: Callable[[], CrossFile | None] = lambda: None,
    ) -> None:
        self.context = context
        self.semantic_map = semantic_map
        self.options = options
        self.target = target
        self.scopes = scopes
        self.resolver = resolver
        self.enclosing = enclosing
        self.plan = plan
        self.index_only = index_only  # the repository index, in dry runs too
        self._missed: tuple[frozenset[str], bool] | None = None  # ``_missed_binding``
        self._parents: Any = None
        # whether a wired call's translation succeeds (the engine's receivers, set once built)
        self.translates: Callable[[cst.Call], bool] = lambda call: False
        self.translation_of: Callable[[cst.Call], str | None] = lambda call: None
        # what the training-step hook renders a region as (``RegionStatements.rendered``)
        self.region_rendered: Callable[[Region], tuple[cst.BaseStatement, ...] | None] = (
            lambda region: None
        )
        # (call, one of its arguments) for every call of the plan: see hygienic
        self._user_expressions: list[tuple[cst.Call, UserExpression]] | None = None

    def build(
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
            lookup=self.lookup_value,
            state_name=self.target.state_name,
            receiver=receiver,
            plan=plan_item,
            qualify=self.resolver().imported_names,
            enclosing_class=self.enclosing(),
            hygiene=self.hygienic,
            variable=self.variable,
            origins=lambda node: self.resolver().reaching_values(node, self.enclosing()),
            free_origins=lambda node: self.resolver().reaching_values(
                node, self.enclosing(), free=True
            ),
            visible_names=self._visible_names,
            binds=self._binds,
            translates=self.translates,
            assigned_to=self._assigned_to,
            translation_of=self.translation_of,
            parent_of=self.parent_of,
            model_origin=self.model_origin,
            trains_across_files=self.trains_across_files,
            passed_across_files=self.passed_across_files,
            caller_arguments=self.caller_arguments,
            returned_across_files=self.returned_across_files,
            method_call_elsewhere=self.method_call_elsewhere,
            callers_elsewhere=lambda node: self.resolver().callers_elsewhere_problem(node),
            plain_across_files=self.plain_across_files,
            helper_problem=lambda name, libraries: self.plan().helper_problem(name, libraries),
            copied_helper=lambda name, libraries: self.plan().copied_helper(name, libraries),
            own_optimizer_problem=lambda stepped, constructor, trained: (
                self.plan().own_optimizer_problem(stepped, constructor, trained)
            ),
            data_object_problem=lambda value, reads, modules: self.plan().data_object_problem(
                value, reads, modules
            ),
            global_shared=lambda name: self.plan().global_shared(name),
            mode_set_elsewhere=self.mode_set_elsewhere,
            zero_call=lambda statement: self.plan().zero_call(statement),
            model_changed_after=lambda call, owner: self.plan().model_changed_after(
                call, owner, self.enclosing()
            ),
            built_by_method=lambda call: self.plan().built_by_method(call),
            method_caller=lambda constructor: self.plan().method_caller(constructor),
            place=self.place,
            region_at=lambda statement: self.plan().region_at(statement),
            region_rendered=self.region_rendered,
        )

    def mode_set_elsewhere(self, flags: frozenset[str], methods: frozenset[str]) -> str | None:
        """``HookContext.mode_set_elsewhere``: ``CrossFile.mode_set_elsewhere``."""
        cross_file = self.index_only()
        return None if cross_file is None else cross_file.mode_set_elsewhere(flags, methods)

    def place(self, node: cst.CSTNode) -> str:
        """``HookContext.place``: ``file.py:line`` of a node of the file ("" when unknown)."""
        key = self.plan().key(node) if self.context.wrapper is not None else None
        name = os.path.basename(self.context.filename or "") or "this file"
        return f"{name}:{key.line}" if key is not None else ""

    def trains_across_files(
        self, optimizer: cst.BaseExpression, model: cst.BaseExpression
    ) -> str | None:
        """``HookContext.trains_across_files``: ``CrossFile.trained_model_reason``."""
        resolver = self.resolver()
        found = [self._module_parameter(name) for name in (optimizer, model)]
        if resolver.cross_file is None or found[0] is None or found[1] is None:
            return "they are not parameters of a module-level function another file calls"
        (function, opt_param), (other, model_param) = found[0], found[1]
        if function is not other:
            shown = [code_of(node).strip() for node in (optimizer, model)]
            return f"`{shown[0]}` and `{shown[1]}` are not parameters of one function"
        name = function.name.value
        return resolver.cross_file.trained_model_reason(name, opt_param, model_param)

    def returned_across_files(self, call: cst.Call) -> str | None:
        """``HookContext.returned_across_files``: ``CrossFile.returned_type`` of the one
        function ``call`` calls, when it gives no type but a reason."""
        resolver = self.resolver()
        names = resolver.imported_names(call.func)
        if resolver.cross_file is None or len(names) != 1:
            return None
        fact = resolver.cross_file.returned_type(names[0])
        return fact[1] if fact is not None and fact[0] is None and fact[1] else None

    def caller_arguments(self, name: cst.Name) -> list[cst.BaseExpression] | None:
        """``HookContext.caller_arguments``: ``Resolver.parameter_arguments`` of the parameter
        ``name`` reads, when the repository's files hold no other call of its function."""
        found = self._module_parameter(name)
        if found is None or not isinstance(found[0], cst.FunctionDef):
            return None
        resolver = self.resolver()
        arguments = resolver.parameter_arguments(resolver.binding_nodes(name)[0])
        cross_file = resolver.cross_file
        if arguments is None or (
            cross_file is not None
            and cross_file.repository_calls(found[0].name.value) > len(arguments)
        ):
            return None
        return arguments

    def method_call_elsewhere(self, call: cst.Call, methods: frozenset[str]) -> str | None:
        """``HookContext.method_call_elsewhere``: ``CrossFile.steps_in`` of the function of
        another file that ``call`` calls."""
        resolver = self.resolver()
        cross_file = resolver.cross_file
        callee = resolver.called_function(call.func)
        if cross_file is None or callee is None:
            return None
        return cross_file.steps_in(callee, methods)

    def passed_across_files(self, name: cst.Name) -> list[str | None] | None:
        """``HookContext.passed_across_files``: ``CrossFile.passed_constructors``."""
        cross_file = self.resolver().cross_file
        found = self._module_parameter(name)
        if cross_file is None or found is None:
            return None
        return cross_file.passed_constructors(found[0].name.value, found[1])

    def plain_across_files(self, name: cst.Name) -> tuple[str | None, tuple[str, ...]] | None:
        """``HookContext.plain_across_files``: ``CrossFile.plain_parameters``; None when
        ``name`` is no parameter of a module-level function, or the file is not on disk."""
        found = self._module_parameter(name)
        if found is None or not isinstance(found[0], cst.FunctionDef):
            return None
        function, param = found[0].name.value, found[1]
        cross_file = self.index_only()
        if cross_file is None:  # not a file on disk: no repository to read
            return None
        return cross_file.plain_parameters(function, param, self.semantic_map.parameters)

    def _module_parameter(
        self, name: cst.BaseExpression
    ) -> tuple[cst.FunctionDef | cst.ClassDef, str] | None:
        """(function, parameter) when ``name`` reads a parameter of a module-level function
        that nothing in the function rebinds; (class, parameter) when ``name`` is ``self.x``
        holding only a parameter of the ``__init__`` of a module-level class."""
        if isinstance(name, cst.Attribute):
            return self._stored_parameter(name)
        if not isinstance(name, cst.Name):
            return None
        bindings = self.resolver().binding_nodes(name)
        if len(bindings) != 1 or not isinstance(bindings[0], cst.Param):
            return None
        scope = self.scopes.get(bindings[0])
        function = getattr(scope, "node", None)
        parent = getattr(scope, "parent", None)
        if not isinstance(function, cst.FunctionDef) or not isinstance(parent, GlobalScope):
            return None
        if len(list(scope.assignments[name.value])) != 1:  # type: ignore[union-attr]
            return None
        return function, name.value

    def _stored_parameter(self, node: cst.Attribute) -> tuple[cst.ClassDef, str] | None:
        """(class, parameter) when ``self.x`` holds one value, a parameter of the class's
        ``__init__`` stored there once (``analysis/stored.py``; a model may be read anywhere:
        its stores across files are checked by ``CrossFile.trained_model_reason``)."""
        resolver = self.resolver()
        values = resolver.origin_values(node, self._class_of(node))
        value = values[0] if values is not None and len(values) == 1 else None
        bindings = resolver.binding_nodes(value) if isinstance(value, cst.Name) else []
        param = bindings[0] if len(bindings) == 1 else None
        owner = owner_of(resolver, param) if isinstance(param, cst.Param) else None
        if owner is None or not isinstance(self.scopes.get(owner), GlobalScope):
            return None
        assert isinstance(param, cst.Param)
        if self.model_origin(node) is not param:  # stored once in the file, from `param`
            return None
        return owner, param.name.value

    def model_origin(self, node: cst.BaseExpression) -> cst.CSTNode | None:
        """The plan's ``model_origin`` of ``node``, read in the class whose method holds it."""
        return self.plan().model_origin(node, self._class_of(node))

    def _class_of(self, node: cst.CSTNode) -> cst.ClassDef | None:
        """The class a method holding ``node`` belongs to (None: not in a method)."""
        parent = self.parent_of(node)
        while parent is not None and not isinstance(parent, cst.ClassDef):
            parent = self.parent_of(parent)
        return parent

    def _assigned_to(self, call: cst.Call) -> cst.BaseExpression | None:
        """``target`` of ``target = call``, for a wired call of the file's plan."""
        return next((site.target for site in self.plan().sites if site.call is call), None)

    def hygienic(
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
        return hygienic(
            expression,
            [*users, *extra],
            self._visible_names(site),
            lambda name: self.scopes.get(site) is not None and self._binds(site, name),
        )

    def _get_user_expressions(self) -> list[tuple[cst.Call, UserExpression]]:
        """The arguments (and their tuple/list elements) of the plan's calls, in source order."""
        if self._user_expressions is None:
            found: list[tuple[cst.Call, UserExpression]] = []
            for site in self.plan().sites:
                for hint, value in [*_argument_values(site), *self._tensor_data(site)]:
                    found.append((site.call, UserExpression(value, hint, len(found))))
            self._user_expressions = found
        return self._user_expressions

    def _tensor_data(self, site: Any) -> list[tuple[str, cst.BaseExpression]]:
        """The data of each argument that is a tensor call of the map's ``tensor_values``
        (``torch.tensor(cfg.lr)`` becomes ``float(cfg.lr)``: ``cfg.lr`` is the user's)."""
        literals = self.semantic_map.tensor_values.literals
        qualify = self.resolver().imported_names
        return [
            (hint, value.args[0].value)
            for hint, value in _argument_values(site)
            if isinstance(value, cst.Call)
            and value.args
            and any(name in literals for name in qualify(value.func))
        ]

    def _visible_names(self, node: cst.CSTNode) -> frozenset[str]:
        """Names assigned or read in the scope of ``node`` and its enclosing scopes."""
        scope = self.scopes.get(node)
        names: set[str] = set()
        while scope is not None and not isinstance(scope, BuiltinScope):
            names.update(assignment.name for assignment in scope.assignments)
            names.update(
                access.node.value for access in scope.accesses if isinstance(access.node, cst.Name)
            )
            scope = scope.parent if scope.parent is not scope else None
        return frozenset(names)

    def _binds(self, node: cst.CSTNode, name: str) -> bool:
        """Whether the file's code binds ``name`` (so it is not the builtin) in the scope of
        ``node`` or an enclosing one, or may (a star import; a binding libcst's scopes do not
        record: a ``match`` capture of it, ``exec``: probe s31 G7)."""
        if self._missed_binding(name):
            return True
        scope = self.scopes.get(node)
        while scope is not None and not isinstance(scope, BuiltinScope):
            if name in scope.assignments:
                return True
            if isinstance(scope, GlobalScope) and self._star_import():
                return True
            scope = scope.parent if scope.parent is not scope else None
        return scope is None  # unknown: as if bound

    def _missed_binding(self, name: str) -> bool:
        """Whether the file may bind ``name`` where libcst's scopes do not record it
        (``plan_walks.may_bind``: a ``match`` capture, ``exec``), the file's captures and
        string-binding calls found once (unknown module: as if it did)."""
        wrapper = self.context.wrapper
        if wrapper is None:
            return True
        if self._missed is None:
            self._missed = missed_bindings(wrapper.module)
        captured_names, executes = self._missed
        return executes or name in captured_names

    def _star_import(self) -> bool:
        """Whether the file has a ``from x import *`` (unknown: as if it had)."""
        wrapper = self.context.wrapper
        return wrapper is None or _star_import(wrapper.module)

    def lookup_value(self, node: cst.BaseExpression) -> cst.BaseExpression | None:
        """The one value a Name (or ``self.x``) is bound to, for hooks (``ctx.assigned_value``)."""
        enclosing = self.enclosing()
        return self.resolver().bound_value(node, enclosing)

    def parent_of(self, node: cst.CSTNode) -> cst.CSTNode | None:
        """The node holding ``node`` in the file's tree (None: unknown)."""
        if self.context.wrapper is None:
            return None
        return self._parent_map().get(node)

    def variable(self, name: cst.Name) -> Variable | None:
        """Every binding and read (with its parents) of the variable ``name`` refers to."""
        if self.context.wrapper is None:
            return None
        return self.resolver().variable(name, self._parent_map())

    def _parent_map(self) -> Mapping[cst.CSTNode, cst.CSTNode]:
        """The parents of the file's nodes (``ParentNodeProvider``'s map, made once per file
        by ``analysis.parents.parent_map``, much cheaper)."""
        if self._parents is None:
            assert self.context.wrapper is not None
            self._parents = parent_map(self.context.wrapper.module)
        return self._parents  # type: ignore[no-any-return]


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


def _star_import(module: cst.CSTNode) -> bool:
    """Whether ``module`` has a ``from x import *``."""
    found = False

    class _Find(cst.CSTVisitor):
        def visit_ImportStar(self, node: cst.ImportStar) -> None:
            nonlocal found
            found = True

    cst_walk.visit(module, _Find())
    return found
