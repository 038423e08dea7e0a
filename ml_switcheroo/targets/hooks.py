"""Hook registry, the context a hook receives, and what a hook returns.

A hook is a small function ``(node: libcst.Call, ctx: HookContext) -> HookOutput`` registered
under the name the semantic map uses in ``hook:``. It returns a ``HookResult`` (``Keep``,
``Replace``, ``Remove``, ``Escape``, ``ReplaceRegion``, ``ReplaceStatement``,
``ReplaceEnclosing``) or, as the seed's hooks do, an expression: the call itself (keep it),
``None`` (remove it) or its replacement; it may also report what it cannot translate by raising
``Untranslatable`` (or calling ``ctx.escape``).
``run_hook`` turns all of these into one ``HookResult``, which ``rewrite/apply.py`` applies to
the tree. All knowledge about APIs comes from ``ctx.entry``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import libcst as cst

from ml_switcheroo.analysis.built_by_method import BuiltByMethod
from ml_switcheroo.analysis.parameters import (
    PART,
    WHOLE,
    Names,
    is_module_class,
    out_of_sight_read,
    select,
)
from ml_switcheroo.analysis.plan import PlanItem, Region
from ml_switcheroo.analysis.resolver import Variable
from ml_switcheroo.model.hygiene import UserExpression
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.semantic_map import ApiEntry, SemanticMap
from ml_switcheroo.spec.signature import code_of


@dataclass(frozen=True)
class Keep:
    """Leave the call as it is (the receiver is still a torch object, a type-only entry)."""


@dataclass(frozen=True)
class Replace:
    """Replace the call (or attribute read) with ``expression``."""

    expression: cst.BaseExpression


@dataclass(frozen=True)
class Remove:
    """Remove the call: as a statement it goes away, in an expression it becomes ``None``;
    ``note``: a comment left in its place."""

    note: str | None = None


@dataclass(frozen=True)
class Escape:
    """Keep the statement unchanged inside an escape hatch with this reason and suggestion."""

    reason: str
    suggestion: str | None = None


@dataclass(frozen=True)
class ReplaceRegion:
    """Replace the statements of a training-step region with ``statements`` (for a target that
    renders a whole step; the optax target escapes regions). ``outside``: calls of the file
    after the region (by id) and the expression text each becomes (``out.cpu()`` -> ``out``)."""

    statements: tuple[cst.BaseStatement, ...]
    outside: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplaceStatement:
    """Replace the whole statement holding the call (or attribute read) with ``statement``
    (``for g in opt.param_groups: g["lr"] = lr`` -> one write to the optimizer's state), and
    ``following`` statements after it (a scheduler's state set up after the scheduler)."""

    statement: cst.BaseStatement
    following: tuple[cst.BaseStatement, ...] = ()


@dataclass(frozen=True)
class ReplaceEnclosing:
    """Replace ``enclosing``, an expression holding the call (or attribute read), with
    ``expression`` (``opt.param_groups[0]["lr"]`` for the hook of ``opt.param_groups``)."""

    enclosing: cst.BaseExpression
    expression: cst.BaseExpression


HookResult = Keep | Replace | Remove | Escape | ReplaceRegion | ReplaceStatement | ReplaceEnclosing
HookOutput = HookResult | cst.BaseExpression
Hook = Callable[[cst.Call, "HookContext"], HookOutput]
# (expression, landing call, calls evaluated by another statement too, extra user expressions)
Hygiene = Callable[
    [cst.BaseExpression, cst.CSTNode, Sequence[cst.CSTNode], Sequence[UserExpression]],
    cst.BaseExpression,
]

_REGISTRY: dict[str, Hook] = {}
_SPECS: dict[str, HookSpec] = {}


@dataclass(frozen=True)
class HookSpec:
    """What a hook needs from its map entries: required fields, and the extra placeholders
    (beyond the entry's own signature) its templates may use."""

    requires: tuple[str, ...] = ()
    placeholders: tuple[str, ...] = ()
    role: str | None = None  # the role of an entry that names no ``role:`` (spec/roles.py)


def register_hook(
    name: str,
    *,
    requires: tuple[str, ...] = (),
    placeholders: tuple[str, ...] = (),
    role: str | None = None,
) -> Callable[[Hook], Hook]:
    """Register the decorated function as hook ``name`` (``role``: the default role of the
    entries it renders; None: they must state one)."""

    def decorate(function: Hook) -> Hook:
        if name in _REGISTRY and _REGISTRY[name] is not function:
            raise ValueError(f"hook {name!r} is already registered")
        _REGISTRY[name] = function
        _SPECS[name] = HookSpec(requires, placeholders, role)
        return function

    return decorate


def as_result(node: cst.CSTNode, output: HookOutput) -> HookResult:
    """A hook's return value as a ``HookResult``: ``node`` itself keeps the call, the name
    ``None`` removes it, any other expression replaces it."""
    if isinstance(
        output, (Keep, Replace, Remove, Escape, ReplaceRegion, ReplaceStatement, ReplaceEnclosing)
    ):
        return output
    if output is node:
        return Keep()
    if isinstance(output, cst.Name) and output.value == "None":
        return Remove()
    return Replace(output)


def run_hook(hook: Hook, node: cst.Call, ctx: HookContext) -> HookResult:
    """Run ``hook`` on ``node``: its result, with ``Untranslatable`` turned into ``Escape``."""
    try:
        output = hook(node, ctx)
    except Untranslatable as exc:
        return Escape(exc.reason, exc.suggestion)
    return as_result(node, output)


def get_hook(name: str) -> Hook:
    """The hook registered as ``name`` (``targets.catalogue`` imports the shipped ones)."""
    return _REGISTRY[name]


def registered_renderers() -> Mapping[str, Hook]:
    """Hook names and their functions (a live, read-only view of the registry)."""
    return MappingProxyType(_REGISTRY)


def hook_specs() -> Mapping[str, HookSpec]:
    """Hook names and what each needs from the map (a live, read-only view)."""
    return MappingProxyType(_SPECS)


def registered_hooks() -> dict[str, HookSpec]:
    """Hook names and what each needs from the map."""
    return dict(_SPECS)


class ImportRequester(Protocol):
    def __call__(self, key: str) -> None: ...


_FREE_PARAMS = (
    "`{shown}` is taken as a plain parameter list (the file never binds it); if it holds "
    "param groups with their own options, or only part of a model's parameters, the "
    "translation differs"
)


@dataclass
class HookContext:
    """Everything a hook may use; no globals.

    ``entry`` is the map entry wired to this call, ``qualified_name`` the resolved source API,
    ``receiver`` the source text of the receiver for method hooks (``"self.opt"``),
    ``options`` the codemod's options (e.g. ``{"exact": False}``).
    """

    entry: ApiEntry
    qualified_name: str
    filename: str | None
    semantic_map: SemanticMap
    options: Mapping[str, Any]
    request_import: ImportRequester
    lookup: Callable[[cst.BaseExpression], cst.BaseExpression | None]
    state_name: str  # the target's name of optimizer ``{x}``'s state (``Target.state_name``)
    receiver: str | None = None
    plan: PlanItem | None = None  # what the file's plan holds for this call (analysis/plan.py)
    folded: list[int] = field(default_factory=list)  # ids of attachments folded into the result
    warnings: list[str] = field(default_factory=list)
    # Fully qualified names an expression refers to through imports (``th.tensor`` ->
    # ``torch.tensor``); empty when unknown.
    qualify: Callable[[cst.BaseExpression], list[str]] = lambda node: []
    enclosing_class: cst.ClassDef | None = None  # the class whose method holds the call
    hygiene: Hygiene | None = None  # see ``hygienic``; None leaves expressions as rendered
    # Every binding and read of the variable a Name refers to (None: unknown).
    variable: Callable[[cst.Name], Variable | None] = lambda name: None
    # Whether the receiver's constructor was translated (False: it is still the torch object).
    receiver_translated: Callable[[], bool] = lambda: True
    # Every value that reaches a Name or ``self.x``, through parameters to what this module's
    # callers pass (None: unknown).
    origins: Callable[[cst.BaseExpression], list[cst.BaseExpression] | None] = lambda node: None
    # ``origins``, where a name the module never binds stands for itself (``reaching_values``
    # with ``free``).
    free_origins: Callable[[cst.BaseExpression], list[cst.BaseExpression] | None] = lambda node: (
        None
    )
    # Whether this command translates a constructor call (False: it stays the torch object).
    translates: Callable[[cst.Call], bool] = lambda call: True
    # Names assigned or read in the scope of a node and its enclosing scopes.
    visible_names: Callable[[cst.CSTNode], frozenset[str]] = lambda node: frozenset()
    # Whether the file's code binds a name where a node is (so it is not the builtin), or may.
    binds: Callable[[cst.CSTNode, str], bool] = lambda node, name: True
    # The target of ``target = call`` for a wired call of the file's plan (None: not assigned).
    assigned_to: Callable[[cst.Call], cst.BaseExpression | None] = lambda call: None
    # The text a constructor call becomes when this command translates it (None: it does not).
    translation_of: Callable[[cst.Call], str | None] = lambda call: None
    # The node holding a node of the file's tree (None: unknown).
    parent_of: Callable[[cst.CSTNode], cst.CSTNode | None] = lambda node: None
    # The one binding (a parameter, an assignment target) the object a model expression names
    # comes from: a Name bound once in its scope, ``self.x`` stored once in the file from such a
    # Name (None: not certain). Two expressions with one origin name one object.
    model_origin: Callable[[cst.BaseExpression], cst.CSTNode | None] = lambda node: None
    # For two Names, parameters of one module-level function other files call
    # (``analysis/cross_file.py``): why the model one names may not be the model the optimizer
    # the other names trains, at every call site of the repository (None: it is).
    trains_across_files: Callable[[cst.Name, cst.Name], str | None] = lambda opt, model: "unknown"
    # For a Name, a parameter of a module-level function of an indexed repository: the
    # qualified names of the calls each call site passes for it (a None among them: a site
    # that passes anything else or cannot be followed; None: not such a parameter, no index).
    passed_across_files: Callable[[cst.Name], list[str | None] | None] = lambda name: None
    # For a Name reading a parameter of a module-level function that nothing in the function
    # rebinds: the argument each call of the function passes for it, every call being in this
    # module (None: not such a parameter, a call not seen, or one in another file).
    caller_arguments: Callable[[cst.Name], list[cst.BaseExpression] | None] = lambda name: None
    # For a call of a module-level function of the repository returning an optimizer: why
    # the value is not taken for a translated one (its callers' uses of it as the torch
    # object, ``file:line`` each); None: not such a call, or nothing known against it.
    returned_across_files: Callable[[cst.Call], str | None] = lambda call: None
    # For a call of a function of another file of the repository: ``file:line`` of a call of
    # one of the given methods (``x.std()``) in its body, or its file's place when that file
    # fails to parse (None: none, or not such a function; ``CrossFile.steps_in``).
    method_call_elsewhere: Callable[[cst.Call, frozenset[str]], str | None] = (
        lambda call, methods: None  # noqa: ARG005
    )
    # For a Name reading a parameter: why a call in another file of the repository may pass
    # it an optimizer that stays torch code (``Resolver.callers_elsewhere_problem``; None:
    # every such call passes a translated one, or no other file calls the function).
    callers_elsewhere: Callable[[cst.BaseExpression], str | None] = lambda node: "unknown"
    # For a Name reading a parameter of a module-level function: why a call in another file
    # of the repository may pass it something else than ``model.parameters()``, or no call at
    # all shows it (``CrossFile.plain_parameters``; None: none does), with the names those
    # calls pass that their files never bind (taken as plain, warned). None: no such
    # parameter, or no repository to read.
    plain_across_files: Callable[[cst.Name], tuple[str | None, tuple[str, ...]] | None] = (
        lambda name: None
    )
    # For a Name a loss calls, and the libraries whose imports the function may read: why it may
    # not run unchanged inside the loss function (None: a module-level function of the file
    # proven to read only its arguments and those libraries, changing nothing).
    helper_problem: Callable[[cst.Name, frozenset[str]], str | None] = lambda name, libraries: (
        "unknown"
    )
    # The same, for a ``def`` copied into the loss function: the function, proven but for the
    # namesake calls of its own body (the copy writes them), or why not.
    copied_helper: Callable[[cst.Name, frozenset[str]], cst.FunctionDef | str] = (
        lambda name, libraries: "unknown"
    )
    # ``Plan.own_optimizer_problem``: why ``self.opt`` (stepped) may hold an optimizer (the
    # constructor stored in it) built over another object than the step's ``self``, given the
    # ``self`` of ``self.parameters()`` (None: the step's ``self`` is the trained model).
    own_optimizer_problem: Callable[[cst.Attribute, cst.Call, cst.Name], str | None] = (
        lambda stepped, constructor, trained: "unknown"
    )
    # ``Plan.data_object_problem``: why the object a call builds, read at the given nodes (each
    # with its parents), may reach a model, given the modules its class may import (None: an
    # object of a class of this file that only makes data).
    data_object_problem: Callable[
        [cst.Call, Sequence[tuple[cst.CSTNode, ...]], frozenset[str]], str | None
    ] = lambda value, reads, modules: "unknown"
    # Whether code outside this file may read or assign a module-level name by that name
    # (another file of the repository names it, or the file rebinds its globals by name).
    global_shared: Callable[[str], bool] = lambda name: True
    # ``CrossFile.mode_set_elsewhere``: where another file of the repository sets a module's
    # mode in a form an NNX module takes quietly, given the flags and the argument-free
    # methods (None: none, or no repository).
    mode_set_elsewhere: Callable[[frozenset[str], frozenset[str]], str | None] = (
        lambda flags, methods: None
    )
    # ``Plan.zero_call``: the zero_grad() calls a line ``reset_grad()`` runs (a function of
    # the file whose body only zeroes gradients; none of them escaped), else None.
    zero_call: Callable[[cst.CSTNode], tuple[cst.Call, ...] | None] = lambda statement: None
    # ``file.py:line`` of a node of the file ("" when unknown), for a reason that names it.
    place: Callable[[cst.CSTNode], str] = lambda node: ""
    # ``Plan.model_changed_after``: the first change to the model ``call`` reads in ``owner``
    # (its function or the module) not provably before it (None: none).
    model_changed_after: Callable[[cst.Call, cst.CSTNode], str | None] = lambda call, owner: (
        "unknown"
    )
    # ``Plan.built_by_method``: the optimizer ``x.m(...)`` returns from a method of ``x``'s class
    # of this file (``analysis/built_by_method.py``), or why it is not one.
    built_by_method: Callable[[cst.Call], BuiltByMethod | str] = lambda call: "unknown"
    # ``Plan.method_caller``: for a constructor in a method, the fact of the file's one call of
    # the method returning it (None: none).
    method_caller: Callable[[cst.Call], BuiltByMethod | None] = lambda constructor: None
    # The training-step region of the file's plan a statement is part of (None: none).
    region_at: Callable[[cst.CSTNode], Region | None] = lambda statement: None
    # The statements the training-step hook renders a region of the file as (a dry run; None:
    # it escapes).
    region_rendered: Callable[[Region], tuple[cst.BaseStatement, ...] | None] = lambda region: None

    @property
    def exact(self) -> bool:
        """Whether torch-exact runtime transforms (``ml_switcheroo.optax_torch``) may be emitted."""
        return bool(self.options.get("exact"))

    def state_of(self, optimizer: str) -> str:
        """The name the target gives the state of ``optimizer`` (``opt`` -> ``opt_state``)."""
        return self.state_name.format(x=optimizer)

    def add_import(self, key: str) -> None:
        """Ask for the import the map declares under ``key`` (e.g. ``"optax"``)."""
        self.request_import(key)

    def root_of(self, node: cst.CSTNode) -> cst.CSTNode:
        """The outermost node holding ``node`` (the file's module when ``parent_of`` knows it)."""
        while (parent := self.parent_of(node)) is not None:
            node = parent
        return node

    def line_alone(self, call: cst.Call) -> cst.SimpleStatementLine | None:
        """The line ``call`` is the whole of (an expression statement alone on it), else None."""
        expression = self.parent_of(call)
        line = self.parent_of(expression) if isinstance(expression, cst.Expr) else None
        if isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1:
            return line
        return None

    def escape(self, reason: str, suggestion: str | None = None) -> None:
        """Give up on this construct: the engine keeps the statement and adds an escape hatch."""
        raise Untranslatable(reason, suggestion)

    def assigned_value(self, node: cst.BaseExpression) -> cst.BaseExpression | None:
        """The value a Name (or ``self.x``) is bound to, when one assignment (besides
        ``= None``) reaches it."""
        return self.lookup(node)

    def names(self) -> Names:
        """Name resolution at this call, for ``core.parameters`` and ``core.tensor_values``."""
        spec = self.semantic_map.parameters
        module_self = is_module_class(self.enclosing_class, self.qualify, spec)
        return Names(self.lookup, self.qualify, module_self, self.binds, self._other_read)

    def _other_read(self, name: cst.Name) -> cst.CSTNode | None:
        """``Names.other_read``: from the variable's reads (``out_of_sight_read``)."""
        variable = self.variable(name)
        return out_of_sight_read(variable.reads if variable else None, self.qualify)

    def unbound(self, node: cst.BaseExpression) -> bool:
        """Whether ``node`` is a name the file never binds and no star import may bind (an
        undefined global: a snippet's free name)."""
        return isinstance(node, cst.Name) and not self.binds(node, node.value)

    def params_problem(self, params: cst.BaseExpression) -> str | None:
        """Why ``params`` (an optimizer's, which ``select`` alone cannot read: a parameter, a
        name bound to an unknown call) may hold param groups or part of a model: a value that
        reaches it through this module's callers, or, for a parameter of a module-level
        function, one a call in another file of the repository passes, is not every parameter
        of one model; or no call shows what the parameter holds. None: each is."""
        if isinstance(params, cst.Attribute) and self.lookup(params) is not None:
            return "another method may change what the attribute holds"
        if isinstance(params, cst.Name) and self.lookup(params) is not None:
            read = self._other_read(params)
            if read is not None:
                shown = " ".join(code_of(read).split())[:60]
                return f"it is also read at {self.place(read) or 'this file'} (`{shown}`)"
        values = self.free_origins(params)
        if not values:
            return "nothing in the program shows what it holds"
        names, spec = self.names(), self.semantic_map.parameters
        uncalled = None  # a parameter no call of this file passes a value
        for value in values:
            if self.unbound(value):
                self.warn(_FREE_PARAMS.format(shown=code_of(value).strip()))
            elif isinstance(self.parent_of(value), cst.Param):
                uncalled = code_of(value).strip()
            else:
                selection = select(value, names, spec)
                if selection.kind == PART:
                    return selection.reason
                if selection.kind != WHOLE:
                    shown = " ".join(code_of(value).split())
                    return f"`{shown}` at {self.place(value) or 'this file'} reaches it"
        across = self.plain_across_files(params) if isinstance(params, cst.Name) else None
        if across is None:
            return None if uncalled is None else f"no call shows what `{uncalled}` holds"
        problem, free = across
        if problem is not None:
            return problem
        for shown in free:
            self.warn(_FREE_PARAMS.format(shown=shown))
        return None

    def fold(self, call: cst.CSTNode) -> None:
        """Record that ``call`` (a scheduler or clip of this optimizer) is part of the result."""
        self.folded.append(id(call))

    def hygienic(
        self,
        expression: cst.BaseExpression,
        site: cst.CSTNode,
        *,
        shared: Sequence[cst.CSTNode] = (),
        extra: Sequence[UserExpression] = (),
    ) -> cst.BaseExpression:
        """``expression`` (the final rendering for call ``site``) made hygienic: user arguments
        it defers or repeats bound once, template names fresh (see ``model/hygiene.py``).
        ``shared``: calls whose arguments another statement of the output evaluates too;
        ``extra``: user expressions that are not call arguments (``--steps-per-epoch``)."""
        if self.hygiene is None:
            return expression
        return self.hygiene(expression, site, shared, extra)

    def warn(self, message: str) -> None:
        """Record a warning for the report (the conversion still happens)."""
        self.warnings.append(message)
