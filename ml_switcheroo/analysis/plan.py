"""Per-file plan: which statements belong together before anything is rewritten.

Some translations span statements: an LR scheduler becomes its optimizer's ``learning_rate``,
gradient clipping becomes the head of the optimizer's chain of transformations, and the
statements of a training step (``loss.backward()`` ... ``opt.step()``) share one escape hatch.
The engine's rewriting pass is local, so before it starts (and only in files that have wired
calls) a ``Planner`` walks the module once, records every wired call with its place (statement,
block, enclosing loops), and decides:

* for each optimizer constructor: its scheduler (and component schedulers) and clip calls;
* for each scheduler: whether its ``step()`` runs once per update, once per epoch, or unknown;
* the statements to move so that ``sched = <schedule>`` precedes
  ``opt = <translated optimizer>(learning_rate=sched)``;
* the training-step regions that get one escape hatch.

Decisions that make a construct untranslatable are recorded as escapes: a finding
(``spec/findings.py``) in the words of the target's ``render``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import libcst as cst
from libcst.metadata import Assignment, BuiltinScope, GlobalScope

from ml_switcheroo.analysis import cst_walk, stepping
from ml_switcheroo.analysis.aliases import aliasing
from ml_switcheroo.analysis.built_by_method import BuiltByMethod, built_by_method, method_caller
from ml_switcheroo.analysis.built_by_method import FileFacts as MethodFileFacts
from ml_switcheroo.analysis.changed_models import (
    Held,
    Reads,
    changed_after,
    changed_by_other_methods,
    parameter_calls,
)
from ml_switcheroo.analysis.constant_guard import (
    always_true,
    number_constant,
    positive_count,
    rebinds_globals,
)
from ml_switcheroo.analysis.counted import Counted, CountFacts, Step, count_problem
from ml_switcheroo.analysis.counted_attributes import Owner, attribute_count_problem
from ml_switcheroo.analysis.exits import Exits
from ml_switcheroo.analysis.factories import (
    BUILTIN_NAMES,
    FactoryCall,
    bound_arguments,
    lambda_parameters,
    parameter_of,
    read_names,
    returns_of,
)
from ml_switcheroo.analysis.loss_helpers import FileFacts, helper_problem
from ml_switcheroo.analysis.parameters import (
    Names,
    is_module_class,
    may_be_tensor_class,
    parameters_argument,
    select,
)
from ml_switcheroo.analysis.parents import parent_map
from ml_switcheroo.analysis.purity import is_pure
from ml_switcheroo.analysis.resolver import Resolver
from ml_switcheroo.analysis.schedule_functions import FunctionFacts, function_problem
from ml_switcheroo.analysis.site_key import Positions, SiteKey
from ml_switcheroo.analysis.torch_only import TorchOnlyFinder, TorchOnlyUse
from ml_switcheroo.analysis.zero_functions import ZeroFunction, zero_functions
from ml_switcheroo.spec import findings
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.escape_hatch import escaped_statements
from ml_switcheroo.spec.findings import Finding, Render, stated
from ml_switcheroo.spec.roles import (
    CLIP,
    CONSTRUCTOR,
    SCALER_STEP,
    SCHEDULER,
    SCHEDULER_STEP,
    STEP,
    STEPS,
    ZERO_GRAD,
)
from ml_switcheroo.spec.semantic_map import ApiEntry, ParameterSpec
from ml_switcheroo.spec.signature import NotALiteral, code_of, dotted_name, literal_value

_LOOPS = (cst.For, cst.While)
# ``SchedulePlan.written`` of a scheduler whose step() calls the translation counts where they
# run (``analysis/counted.py``): the count is no expression of the program
COUNTED = "<counted>"
_CONTROL = (cst.For, cst.While, cst.If, cst.FunctionDef, cst.ClassDef, cst.Match)
_is_control = cst_walk.instance_test(_CONTROL)

# (entry, receiver source or None, receiver node or None, probable) for a call, or None.
WireFunction = Callable[
    [cst.Call, "cst.ClassDef | None"], "tuple[ApiEntry, str | None, bool] | None"
]


@dataclass(eq=False)
class Site:
    """A wired call and where it sits."""

    call: cst.Call
    entry: ApiEntry | None
    receiver: cst.BaseExpression | None
    statement: cst.BaseStatement
    # (block id, statement index), outermost first: the planner's walk only (ids of its tree)
    path: tuple[tuple[int, int], ...]
    controls: tuple[cst.CSTNode, ...]  # enclosing For/While/If/def/class, outermost first
    enclosing_class: cst.ClassDef | None
    target: cst.BaseExpression | None  # `target = call` when the call is the whole value
    value_used: bool
    parent_call: cst.Call | None

    @property
    def block(self) -> int:
        return self.path[-1][0]

    @property
    def index(self) -> int:
        return self.path[-1][1]

    @property
    def role(self) -> str | None:
        """The map entry's role (spec/roles.py); None for a backward call."""
        return self.entry.role if self.entry else None

    @property
    def function(self) -> cst.CSTNode | None:
        for node in reversed(self.controls):
            if isinstance(node, cst.FunctionDef):
                return node
        return None

    @property
    def loops(self) -> tuple[cst.CSTNode, ...]:
        inner = self._within_function()
        return tuple(n for n in inner if isinstance(n, _LOOPS))

    def _within_function(self) -> tuple[cst.CSTNode, ...]:
        for position in range(len(self.controls) - 1, -1, -1):
            if isinstance(self.controls[position], (cst.FunctionDef, cst.ClassDef)):
                return self.controls[position + 1 :]
        return self.controls


@dataclass(eq=False)
class SchedulePlan:
    """An optimizer's scheduler: the outer one and the component schedulers it combines."""

    outer: Site
    members: list[Site]  # statements that define the schedule, in block order
    optimizer: Site
    move: str  # "up": schedule statements go before the optimizer; "down": optimizer after them
    per_epoch: str | None = None  # steps-per-epoch expression when stepped once per epoch
    # the scheduler's step count at its step() (``epoch + 1``) when the target writes the lr
    # there instead of folding the schedule (per-epoch steps, NNX: ``Target.writes_epoch_lr``);
    # ``COUNTED``: the translation keeps that count itself (``counted.py``)
    written: str | None = None
    # (k, r) when stepped every k updates: torch's lr at `count` is schedule((count + r) // k)
    every: tuple[int, int] | None = None
    # (warm-up scheduler, boundary) of a hand-stepped warm-up/main pair (`outer` is the main)
    warmup: tuple[Site, int] | None = None
    step_sites: list[Site] = field(default_factory=list)
    calls: list[Site] = field(default_factory=list)  # every scheduler call, nested ones too
    # the factory's one call when `outer` is built in a factory the optimizer is passed to
    # (``analysis/factories.py``): nothing moves, the constructor gets the schedule inlined
    factory: FactoryCall | None = None
    # the outer scheduler is the call of a scheduler factory of another file (issue 12): it
    # stands for the factory's scheduler call (``factories.scheduler_call``)
    foreign: FactoryCall | None = None
    # (optimizer, scheduler) as the function the scheduler is handed to names them at its
    # step() (``Planner._handed_scheduler``); None: the names it is built under
    step_names: tuple[str, str] | None = None


class Warmup(NamedTuple):
    """A warm-up scheduler and the main one after it, stepped by hand on one optimizer."""

    warm: Site
    main: Site
    boundary: int  # the update count at which `main` takes over
    steps: tuple[Site, Site]  # warm.step(), main.step()


@dataclass(eq=False)
class Region:
    """Statements ``first..last`` of one block that form a training step."""

    block: int  # id of the block: the planner's walk only (``statements`` are the nodes)
    first: int
    last: int
    anchor: Site  # the opt.step() / scaler.step(opt) call
    backward: Site | None
    loss: str
    scaler: str | None
    gated: bool  # the step sits under an `if` inside the region (gradient accumulation)
    statements: list[cst.BaseStatement] = field(default_factory=list)
    clipped: bool = False  # a clip call in the region was folded into the optimizer's chain
    subset_clipped: bool = False  # a clip call in the region clips other parameters (escaped)
    # the stepped optimizer's zero_grad() runs under the same loops and conditions as its step
    # (else torch sums gradients over several steps)
    zeroed: bool = False
    # the stepped optimizer's schedule joins its chain (ReduceLROnPlateau): each update takes
    # the metric (``value=``)
    takes_metric: bool = False
    # ``if phase == 'train': loss.backward(); opt.step()``, the last statement of the region,
    # after the forward pass (``Planner._branch_region``); None: a region of one block
    branch: cst.If | None = None
    # NNX: the region's ``if`` statements whose test is always true (``if grad_clip != 0.0:``
    # with ``grad_clip = 1.0`` a module constant, ``analysis/constant_guard.py``)
    true_guards: list[cst.If] = field(default_factory=list)
    # NNX: the region's ``for`` statements over ``range(k)``, ``k`` an integer constant >= 1
    # (``for micro_step in range(gradient_accumulation_steps):``): they run at least once
    nonempty_loops: list[cst.For] = field(default_factory=list)


@dataclass(eq=False)
class SubsetClip:
    """A clip call before an optimizer's step that clips other parameters than it trains."""

    optimizer: Site
    clipped: str  # the clip call's parameters, as written
    reason: str


class Attachments(NamedTuple):
    """What an optimizer constructor's hook may fold: its schedule and the clip calls before
    its steps."""

    schedule: SchedulePlan | None
    clips: list[Site]


# What the plan holds for one call (a hook's ``ctx.plan``): a scheduler's or a scheduler
# step's schedule, a clip call's optimizer site, a clip of other parameters, a constructor's
# attachments, or a training-step region (for the region's anchor).
PlanItem = SchedulePlan | Site | SubsetClip | Attachments | Region


@dataclass
class Plan:
    """What the planner decided for one file, keyed by ``SiteKey``.

    ``item_at(key)`` is what a hook sees as ``ctx.plan``; the methods taking a node compute its
    key (``key(node)``) from the module's positions, resolved once, and only when the plan holds
    a fact at all (most planned files hold none)."""

    module: str = ""  # the file, as the command was given it
    positions: Callable[[], Positions] | None = field(default=None, repr=False, compare=False)
    schedules: dict[SiteKey, SchedulePlan] = field(default_factory=dict)  # by optimizer call
    scheduler_of: dict[SiteKey, SchedulePlan] = field(default_factory=dict)  # by scheduler call
    clips: dict[SiteKey, list[Site]] = field(default_factory=dict)  # by optimizer call
    clip_target: dict[SiteKey, Site] = field(default_factory=dict)  # clip call -> optimizer site
    subset_clips: dict[SiteKey, SubsetClip] = field(default_factory=dict)  # by clip call
    steps: dict[SiteKey, SchedulePlan] = field(default_factory=dict)  # by sched.step() call
    escapes: dict[SiteKey, Untranslatable] = field(default_factory=dict)  # call -> reason
    regions: list[Region] = field(default_factory=list)
    region_of: dict[SiteKey, Region] = field(default_factory=dict)  # by statement
    sites: list[Site] = field(default_factory=list)
    # statement moves: optimizer statement -> its schedule plan
    moves: dict[SiteKey, SchedulePlan] = field(default_factory=dict)
    # statement -> the uses in it of a translated optimizer (or scheduler) as the torch
    # object: handed to another library, pickled, type-checked, an unknown member...
    torch_only: dict[SiteKey, list[TorchOnlyUse]] = field(default_factory=dict)
    # ids of the statements the rewrite must enter: those holding a wired call or attribute, a
    # backward pass, an import, a region's or a torch-only use's statement (None: every one)
    busy: frozenset[int] | None = field(default=None, repr=False, compare=False)
    _ranges: Positions | None = field(default=None, repr=False, compare=False)
    # The one binding the object a model expression names comes from (``Planner._model_origin``:
    # a Name bound once, ``self.x`` stored once in the file from such a Name), read in a method
    # of the given class; None when not certain.
    model_origin: Callable[[cst.BaseExpression, cst.ClassDef | None], cst.CSTNode | None] = field(
        default=lambda model, enclosing: None, repr=False, compare=False
    )
    # Why a function a loss calls may not run unchanged inside the NNX loss function, given the
    # libraries whose imports it may read (``analysis/loss_helpers.py``; None: proven).
    helper_problem: Callable[[cst.Name, frozenset[str]], str | None] = field(
        default=lambda name, libraries: "not planned", repr=False, compare=False
    )
    # The first change to the model ``call`` reads (``model.configure_optimizers(...)``: its
    # receiver) in ``owner`` (its function or the module) that does not provably run before
    # it (``changed_models``, this file's functions and the repository's followed), in a
    # method of the given class; None: none.
    model_changed_after: Callable[
        [cst.Call, cst.FunctionDef | cst.Module, cst.ClassDef | None], str | None
    ] = field(default=lambda call, owner, enclosing: "not planned", repr=False, compare=False)
    # ``x.m(...)`` returning the optimizer a method ``m`` of ``x``'s class of this file builds
    # (``analysis/built_by_method.py``); else why it is not one.
    built_by_method: Callable[[cst.Call], BuiltByMethod | str] = field(
        default=lambda call: "not planned", repr=False, compare=False
    )
    # For a constructor call in a method: the ``BuiltByMethod`` of the file's one call of that
    # method, when the constructor is the one it returns (None: none).
    method_caller: Callable[[cst.Call], BuiltByMethod | None] = field(
        default=lambda constructor: None, repr=False, compare=False
    )
    # Whether code outside this file may read or assign a module-level name by that name:
    # another file of the repository names the word, or the file rebinds its globals by name
    # (``exec``, ``globals()``...).
    global_shared: Callable[[str], bool] = field(
        default=lambda name: True, repr=False, compare=False
    )
    # The zero_grad() calls a line ``reset_grad()`` runs, a function of the file whose body
    # only zeroes gradients (``analysis/zero_functions.py``); None for any other line, or
    # when one of those calls escapes.
    zero_call: Callable[[cst.CSTNode], tuple[cst.Call, ...] | None] = field(
        default=lambda statement: None, repr=False, compare=False
    )

    def key(self, node: cst.CSTNode) -> SiteKey | None:
        """The stable key of a node of the planned module (None for a node not in it)."""
        if self._ranges is None:
            self._ranges = self.positions() if self.positions is not None else {}
        return SiteKey.of(self.module, node, self._ranges)

    def attachment(self, call: cst.Call) -> cst.Call | None:
        """For a call that only translates together with its optimizer (a scheduler, its
        step(), a clip call): the call the optimizer's hook folds. Otherwise None."""
        if not (self.scheduler_of or self.steps or self.clip_target):
            return None
        key = self.key(call)
        if key in self.scheduler_of:
            return self.scheduler_of[key].outer.call
        if key in self.steps:
            return self.steps[key].outer.call
        if key in self.clip_target:
            return call
        return None

    def item_for(self, call: cst.Call) -> PlanItem | None:
        """What the plan holds for ``call`` (a hook's ``ctx.plan``)."""
        tables = (self.scheduler_of, self.steps, self.clip_target, self.subset_clips)
        if not any(tables) and not self.schedules and not self.clips:
            return None
        key = self.key(call)
        return self.item_at(key) if key is not None else None

    def item_at(self, key: SiteKey) -> PlanItem | None:
        """What the plan holds for the call at ``key``."""
        for table in (self.scheduler_of, self.steps):
            if key in table:
                return table[key]
        if key in self.clip_target:
            return self.clip_target[key]
        if key in self.subset_clips:
            return self.subset_clips[key]
        if key in self.schedules or key in self.clips:
            return Attachments(self.schedules.get(key), self.clips.get(key, []))
        return None

    def escape_for(self, call: cst.Call) -> Untranslatable | None:
        """Why the planner escapes ``call``, or None."""
        return self.escapes.get(self.key(call)) if self.escapes else None  # type: ignore[arg-type]

    def schedule_of(self, call: cst.Call) -> SchedulePlan | None:
        """The schedule a scheduler call belongs to, or None."""
        return self.scheduler_of.get(self.key(call)) if self.scheduler_of else None  # type: ignore[arg-type]

    def region_at(self, statement: cst.CSTNode) -> Region | None:
        """The training-step region ``statement`` is part of, or None."""
        return self.region_of.get(self.key(statement)) if self.region_of else None  # type: ignore[arg-type]

    def torch_only_in(self, statement: cst.CSTNode) -> list[TorchOnlyUse] | None:
        """The torch-only uses of translated values in ``statement``, or None; in source order
        (libcst's references are sets ordered by memory address)."""
        uses = self.torch_only.get(self.key(statement)) if self.torch_only else None  # type: ignore[arg-type]
        return sorted(uses, key=self._source_order) if uses else uses

    def _source_order(self, use: TorchOnlyUse) -> tuple[int, int, int, int, str]:
        key = self.key(use.node)
        if key is None:
            return (0, 0, 0, 0, "")
        return (key.line, key.column, key.end_line, key.end_column, use.names.get("name", ""))

    def key_of(self, node: cst.CSTNode) -> SiteKey:
        """``key(node)`` for a node the planner found in the module (always has one)."""
        key = self.key(node)
        assert key is not None, "a planned node outside the planned module"
        return key


class _Collector(cst.CSTVisitor):
    """Finds wired calls and ``.backward()`` calls with their statement, block and controls."""

    def __init__(
        self,
        wire: WireFunction,
        backward_methods: frozenset[str],
        attributes: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__()
        self.wire = wire
        self.backward_methods = backward_methods
        self.attributes = attributes  # the names of wired attribute reads (``param_groups``)
        self.busy: set[int] = set()  # ids of the statements around what ``_hold`` marked
        self.parents: dict[int, cst.BaseStatement | None] = {}  # id(statement) -> statement
        self.sites: list[Site] = []
        self.backwards: list[Site] = []
        self.blocks: dict[int, cst.CSTNode] = {}
        self._path: list[tuple[int, int]] = []
        self._statements: list[cst.BaseStatement] = []
        self._controls: list[cst.CSTNode] = []
        self._classes: list[cst.ClassDef] = []
        self._calls: list[cst.Call] = []
        self.name_positions: dict[int, tuple[int, int]] = {}  # id(Name) -> (block, index)
        self._position: dict[int, tuple[int, int]] = {}  # set anew by visit_Module
        self._escaped: set[int] = set()

    # blocks and statements
    def _enter_body(self, owner: cst.CSTNode, body: Sequence[cst.BaseStatement]) -> None:
        self.blocks[id(owner)] = owner
        for index, statement in enumerate(body):
            self._position[id(statement)] = (id(owner), index)
        self._escaped.update(escaped_statements(body))

    def visit_Module(self, node: cst.Module) -> None:
        self._position = {}
        self._escaped = set()
        self._enter_body(node, node.body)

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._enter_body(node, node.body)

    def on_visit(self, node: cst.CSTNode) -> bool:
        if id(node) in self._escaped:
            return False  # inside an escape hatch from an earlier run: not planned again
        position = self._position.get(id(node))
        if position is not None:
            self.parents[id(node)] = self._statements[-1] if self._statements else None
            self._path.append(position)
            self._statements.append(node)  # type: ignore[arg-type]
        if _is_control(node):
            self._controls.append(node)
        return cst_walk.on_visit(self, node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        if id(original_node) in self._escaped:
            return
        cst_walk.on_leave(self, original_node)
        if _is_control(original_node):
            self._controls.pop()
        if id(original_node) in self._position:
            self._path.pop()
            self._statements.pop()

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.append(node)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._classes.pop()

    def _hold(self) -> None:
        """Mark the statements around the node being visited as ones the rewrite enters."""
        self.busy.update(id(statement) for statement in self._statements)

    def visit_Import(self, node: cst.Import) -> None:
        self._hold()

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self._hold()

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if node.attr.value in self.attributes:
            self._hold()

    def visit_Name(self, node: cst.Name) -> None:
        if self._path:
            self.name_positions[id(node)] = self._path[-1]

    def visit_Param(self, node: cst.Param) -> None:
        if self._path:
            self.name_positions[id(node)] = self._path[-1]

    def visit_Call(self, node: cst.Call) -> None:
        parent = self._calls[-1] if self._calls else None
        self._calls.append(node)
        if not self._statements:
            return
        enclosing = self._classes[-1] if self._classes else None
        wired = self.wire(node, enclosing)
        func = node.func
        is_backward = isinstance(func, cst.Attribute) and func.attr.value in self.backward_methods
        if wired is None and not is_backward:
            return
        self._hold()
        entry = wired[0] if wired else None
        site = Site(
            call=node,
            entry=entry,
            receiver=func.value if isinstance(func, cst.Attribute) else None,
            statement=self._statements[-1],
            path=tuple(self._path),
            controls=tuple(self._controls),
            enclosing_class=enclosing,
            target=_assigned_target(self._statements[-1], node),
            value_used=not _is_expression_statement(self._statements[-1], node),
            parent_call=parent,
        )
        (self.sites if wired else self.backwards).append(site)

    def leave_Call(self, original_node: cst.Call) -> None:
        self._calls.pop()


def _assigned_target(statement: cst.BaseStatement, call: cst.Call) -> cst.BaseExpression | None:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if isinstance(small, cst.Assign) and small.value is call and len(small.targets) == 1:
        return small.targets[0].target
    if isinstance(small, cst.AnnAssign) and small.value is call:
        return small.target
    return None


def _is_expression_statement(statement: cst.BaseStatement, call: cst.Call) -> bool:
    body = getattr(statement, "body", None)
    if isinstance(statement, cst.SimpleStatementLine):
        return any(isinstance(s, cst.Expr) and s.value is call for s in statement.body)
    if isinstance(body, cst.SimpleStatementSuite):
        return any(isinstance(s, cst.Expr) and s.value is call for s in body.body)
    return False


class Planner:
    """Builds the ``Plan`` of one module."""

    def __init__(
        self,
        module: cst.Module,
        wire: WireFunction,
        resolver: Resolver,
        backward_methods: frozenset[str],
        steps_per_epoch: str | None,
        active_hooks: frozenset[str] | None,
        positions: Callable[[], Positions] | None = None,
        filename: str | None = None,
        render: Render = stated,
        region_start: str = "backward",
        writes_epoch_lr: bool = False,
        wired_attributes: frozenset[str] | None = None,
    ) -> None:
        self.module = module
        self._exits: Exits | None = None  # where names leave the module (``_where_it_goes``)
        self._parameters: dict[int, str] | None = None  # ``_parameter_functions``, when asked
        # the names of the attribute reads the rewrite dispatches; given, the plan tells the
        # rewrite which statements it must enter (``Plan.busy``)
        self.wired_attributes = wired_attributes
        self._torch_only_statements: list[cst.BaseStatement] = []
        # a per-epoch scheduler's lr is written at its step() (``SchedulePlan.written``)
        self.writes_epoch_lr = writes_epoch_lr
        self.render = render  # the target's words for a finding (``spec/findings.py``)
        # where a training-step region starts: at its backward pass ("backward"), or at the
        # forward pass that computes the backward's loss ("forward"; ``Target.region_start``)
        self.region_start = region_start
        self.positions = positions  # the module's libcst positions, for the plan's keys
        self.filename = filename or ""
        self.wire = wire
        self.resolver = resolver
        self.backward_methods = backward_methods
        self.steps_per_epoch = steps_per_epoch
        # the roles of the entries the command runs (None: all)
        self.active_roles = resolver.map.roles_of(active_hooks)
        # the method names of step entries (`opt.step()`, `sched.step()`, `scaler.step(opt)`)
        self.step_methods = resolver.map.methods_with_role(STEP, SCALER_STEP, SCHEDULER_STEP)
        self.scaler_methods = resolver.map.scaler_methods
        self._order: dict[int, int] | None = None  # see _preorder
        self._globals_rebound: bool | None = None  # see _rebinds_globals
        self._stores: set[str] | None = None  # see _stored_paths
        # id of a per-epoch sched.step() -> (the call in its epoch loop that steps the
        # optimizer, the steps it runs): see _per_epoch, _batch_loop_problem
        self._epoch_calls: dict[int, tuple[cst.Call, list[Site]]] = {}
        # the same for a function of another file: why it may not step once per batch
        self._handed_problems: dict[int, str | None] = {}
        self._parents: dict[cst.CSTNode, cst.CSTNode] | None = None  # see _built_by_method
        self._built_by_methods: dict[int, BuiltByMethod | str] = {}
        self._zero_functions: dict[int, ZeroFunction] | None = None  # see _zero_function_at

    def bound_value(
        self, expression: cst.BaseExpression, enclosing: cst.ClassDef | None
    ) -> cst.BaseExpression | None:
        return self.resolver.bound_value(expression, enclosing)

    def referents_after(
        self, nodes: list[cst.CSTNode], block: int, index: int, ignore: set[int]
    ) -> bool:
        """Whether a name used in ``nodes`` is bound in ``block`` at statement ``index`` or on."""
        for node in nodes:
            for name in _names(node):
                for binding in self.resolver.binding_nodes(name):
                    if id(binding) in ignore:
                        continue
                    position = self.collector.name_positions.get(id(binding))
                    if position is not None and position[0] == block and position[1] >= index:
                        return True
        return False

    def rebound_in(self, nodes: list[cst.CSTNode], statements: list[cst.BaseStatement]) -> bool:
        """Whether a name used in ``nodes`` is assigned (in its own scope) in ``statements``."""
        inside = _node_ids(statements)
        for node in nodes:
            for name in _names(node):
                scope = self.resolver.scopes.get(name)
                if scope is not None and any(
                    id(assignment.node) in inside for assignment in scope.assignments[name.value]
                ):
                    return True
        return False

    def active(self, role: str) -> bool:
        return self.active_roles is None or role in self.active_roles

    def build(self) -> Plan:
        collector = _Collector(
            self.wire, self.backward_methods, self.wired_attributes or frozenset()
        )
        cst_walk.visit(self.module, collector)
        self.collector = collector
        plan = Plan(module=self.filename, positions=self.positions, sites=collector.sites)
        self.plan = plan
        plan.model_origin = self._model_origin  # for the NNX step hook (``HookContext``)
        plan.helper_problem = self._helper_problem
        plan.global_shared = self._global_shared
        plan.model_changed_after = self._model_changed_after
        plan.built_by_method = self._built_by_method
        plan.method_caller = self._method_caller
        plan.zero_call = self._zero_call
        # Bookkeeping of the walk (never leaves the planner): a call's site by id(call), like
        # the collector's blocks and name positions and the `components` of a schedule.
        self.by_call = {id(site.call): site for site in collector.sites}
        self._subset_clip_sites: list[Site] = []
        if self.active(CONSTRUCTOR):
            self._plan_frozen_parameters()
            self._plan_changed_models()
        if self.active(SCHEDULER):
            self._plan_schedules()
        if self.active(CLIP):
            self._plan_clips()
        if self.active(ZERO_GRAD):
            self._plan_zero_grads()
        if any(self.active(role) for role in STEPS):
            self._plan_regions()
        if self.active(CONSTRUCTOR):
            self._plan_torch_only_uses()
        for region in plan.regions:
            statements = {id(s) for s in region.statements}
            statements |= {id(s) for g in region.true_guards for s in g.body.body}  # type: ignore[attr-defined]
            region.clipped = any(
                id(site.statement) in statements for sites in plan.clips.values() for site in sites
            )
            region.subset_clipped = any(
                id(site.statement) in statements for site in self._subset_clip_sites
            )
            if self.region_start == "forward":  # facts only a target rendering steps needs
                region.zeroed = self._zeroed_with(region.anchor)
                region.takes_metric = self._takes_metric(region.anchor)
        if self.wired_attributes is not None:
            plan.busy = self._busy()
        return plan

    def _busy(self) -> frozenset[int]:
        """``Plan.busy``: the collector's statements, those of the regions and of the torch-only
        uses, and every statement around them."""
        busy = set(self.collector.busy)
        held = [s for region in self.plan.regions for s in region.statements]
        for statement in [*held, *self._torch_only_statements]:
            node: cst.BaseStatement | None = statement
            while node is not None and id(node) not in busy:
                busy.add(id(node))
                node = self.collector.parents.get(id(node))
        return frozenset(busy)

    # ------------------------------------------------------------------ helpers

    def _constructor_site(self, expression: cst.BaseExpression, site: Site) -> Site | None:
        """The optimizer constructor site that ``expression`` (a Name or self.x) is bound to."""
        value = self.bound_value(expression, site.enclosing_class)
        if isinstance(value, cst.Call):
            found = self.by_call.get(id(value))
            if found is not None and found.role == CONSTRUCTOR:
                return found
        return None

    def _bound_site(self, expression: cst.BaseExpression, site: Site, role: str) -> Site | None:
        value = self.bound_value(expression, site.enclosing_class)
        if isinstance(value, cst.Call):
            found = self.by_call.get(id(value))
            if found is not None and found.role == role:
                return found
        return None

    def _refuse(self, site: Site, kind: str, **values: str) -> None:
        """Escape ``site`` for a finding, in the target's words."""
        self.plan.escapes.setdefault(
            self.plan.key_of(site.call), self.render(Finding(kind, values))
        )

    def _step_sites_of(self, constructor: Site) -> list[Site]:
        """``x.step()`` sites whose receiver is bound to ``constructor``'s call."""
        found = []
        for site in self.plan.sites:
            if site.receiver is None or site.call.func.attr.value not in self.step_methods:  # type: ignore[attr-defined]
                continue
            value = self.bound_value(site.receiver, site.enclosing_class)
            if value is constructor.call:
                found.append(site)
        return found

    def _optimizer_step_sites(self, constructor: Site) -> list[Site]:
        """``opt.step()`` and ``scaler.step(opt)`` sites of the optimizer ``constructor`` builds."""
        found = []
        for site in self.plan.sites:
            stepped = self._stepped_optimizer(site)
            if stepped is None:
                continue
            if self.bound_value(stepped, site.enclosing_class) is constructor.call:
                found.append(site)
        return found

    # ------------------------------------------------------------------ schedulers

    def _plan_schedules(self) -> None:
        schedulers = [s for s in self.plan.sites if s.role == SCHEDULER]
        components: dict[int, Site] = {}  # scheduler call id -> the scheduler that combines it
        for site in schedulers:
            if site.parent_call is not None and id(site.parent_call) in self.by_call:
                parent = self.by_call[id(site.parent_call)]
                if parent.role == SCHEDULER:
                    components[id(site.call)] = parent
                    continue
            for argument in site.call.args:
                for element in _elements(argument.value):
                    named = self._bound_site(element, site, SCHEDULER)
                    if named is not None:
                        components[id(named.call)] = site
        self._components = components
        refused = self._refused_sequence_parts(components)
        by_optimizer: dict[int, list[Site]] = {}
        optimizers: dict[int, Site] = {}  # id(constructor call) -> its site
        factories: dict[int, FactoryCall] = {}  # id(scheduler call) -> its factory's one call
        self._foreign: dict[int, FactoryCall] = {}  # id(factory call) -> what it stands for
        for site in schedulers:
            if id(site.call) in components or id(site.call) in refused:
                continue
            foreign = self._cross_file_factory(site)
            if isinstance(foreign, str):
                self._refuse(site, findings.FACTORY_NOT_FOLDED, reason=foreign)
                continue
            if foreign is not None:
                optimizer, self._foreign[id(site.call)] = foreign
            else:
                optimizer = self._scheduler_optimizer(site)
            if optimizer is None:
                factory = self._factory_schedule(site)
                if isinstance(factory, tuple):
                    optimizer, factories[id(site.call)] = factory
                    by_optimizer.setdefault(id(optimizer.call), []).append(site)
                    optimizers[id(optimizer.call)] = optimizer
                    continue
                if isinstance(factory, str):
                    self._refuse(site, findings.FACTORY_NOT_FOLDED, reason=factory)
                    continue
                origin = self._origin(site)
                self._refuse(
                    site,
                    findings.SCHEDULE_WITHOUT_TRANSLATED_OPTIMIZER,
                    where=f" ({origin})" if origin else "",
                )
                continue
            by_optimizer.setdefault(id(optimizer.call), []).append(site)
            optimizers[id(optimizer.call)] = optimizer
        for key, sites in by_optimizer.items():
            optimizer = optimizers[key]
            if len(sites) == 1 and id(sites[0].call) in factories:
                self._attach_factory_schedule(sites[0], optimizer, factories[id(sites[0].call)])
                continue
            if len(sites) > 1:
                in_factory = any(id(site.call) in factories for site in sites)
                pair = self._warmup_pair(sites) if len(sites) == 2 and not in_factory else None
                if isinstance(pair, Warmup):
                    self._attach_schedule(pair.main, optimizer, components, pair)
                    self._escape_unattached(pair.warm, pair.main)
                    continue
                for site in sites:
                    self._refuse(
                        site, findings.SEVERAL_SCHEDULERS, where=f": {pair}" if pair else ""
                    )
                continue
            self._attach_schedule(sites[0], optimizer, components)
        for component_id, parent in components.items():
            root = parent
            while id(root.call) in components:
                root = components[id(root.call)]
            escaped = self.plan.escapes.get(self.plan.key_of(root.call))
            if escaped is not None:
                name = (
                    code_of(root.target).strip()
                    if root.target is not None
                    else f"{code_of(root.call.func).strip()}(...)"  # a returned scheduler
                )
                self._refuse(
                    self.by_call[component_id],
                    findings.PART_OF_UNTRANSLATED_SCHEDULER,
                    name=name,
                    reason=escaped.reason,
                    suggestion=escaped.suggestion or "",
                )

    def _refused_sequence_parts(self, components: dict[int, Site]) -> set[int]:
        """Escape each outermost scheduler combining, in sequence (the map's ``sequence``:
        ``SequentialLR(opt, [a, b], ...)``), a part the map's ``in_sequence`` refuses there
        (``MultiplicativeLR`` after the first part continues from the lr the previous part
        left; ``OneCycleLR`` rewrites the group's initial lr the others start from): the ids of
        the escaped calls."""
        refused: set[int] = set()
        for component_id, parent in components.items():
            part = self.by_call[component_id]
            rule = part.entry.in_sequence if part.entry is not None else None
            if rule is None or parent.entry is None or parent.entry.sequence is None:
                continue
            position = self._position_in(parent, part)
            if position is None or (rule.refused == "later" and position == 0):
                continue
            root = parent
            while id(root.call) in components:
                root = components[id(root.call)]
            self._refuse(
                root,
                findings.SEQUENCE_PART_REFUSED,
                part=f"{code_of(part.call.func).strip()}(...)",
                outer=f"{code_of(parent.call.func).strip()}(...)",
                reason=rule.reason,
                suggestion=rule.suggest or "",
            )
            refused.add(id(root.call))
        return refused

    def _position_in(self, parent: Site, part: Site) -> int | None:
        """The index of ``part`` (its call, or a name bound to it) in the list argument of
        ``parent`` that holds it."""
        for argument in parent.call.args:
            for index, element in enumerate(_elements(argument.value)):
                if element is part.call or self._bound_site(element, parent, SCHEDULER) is part:
                    return index
        return None

    def _scheduler_optimizer(self, site: Site) -> Site | None:
        argument = _optimizer_argument(site)
        if argument is not None:
            return self._constructor_site(argument, site)
        for parameter in site.call.args:  # ChainedScheduler(schedulers): ask its components
            for element in _elements(parameter.value):
                component = self._bound_site(element, site, SCHEDULER) or (
                    self.by_call.get(id(element)) if isinstance(element, cst.Call) else None
                )
                if component is not None and component is not site:
                    return self._scheduler_optimizer(component)
        return None

    # ------------------------------------------------------------------ scheduler factories

    def _factory_schedule(self, site: Site) -> tuple[Site, FactoryCall] | str | None:
        """``site`` built on a parameter of a factory called once with a translated optimizer:
        that optimizer and the call (``analysis/factories.py``); a reason when the factory is
        followed but the schedule cannot move to the optimizer; None when it is no factory."""
        argument = _optimizer_argument(site)
        function = site.function
        if not isinstance(argument, cst.Name) or not isinstance(function, cst.FunctionDef):
            return None
        bindings = self.resolver.binding_nodes(argument)
        param = parameter_of(bindings[0], function) if len(bindings) == 1 else None
        builders = self.resolver.builders()
        called = builders.call_of(function)
        if param is None or called is None or builders.by_call.get(id(called[0])) is not site.call:
            return None
        call, returned = called
        name = f"{function.name.value}()"
        where = self._place(call)
        passed = builders.passed(param)
        optimizer = self._bound_site(passed, site, CONSTRUCTOR) if passed is not None else None
        caller_class = builders.callers.get(id(returned))
        if passed is not None and caller_class is not site.enclosing_class:
            value = self.bound_value(passed, caller_class)
            optimizer = self.by_call.get(id(value)) if isinstance(value, cst.Call) else None
            optimizer = optimizer if optimizer and optimizer.role == CONSTRUCTOR else None
        if optimizer is None:
            shown = f"`{code_of(passed).strip()}`" if passed is not None else "nothing"
            return (
                f"{name} builds the scheduler on its parameter `{param.name.value}`, and its one "
                f"call ({where}) passes {shown}, which is not an optimizer built by a translated "
                "constructor of this file"
            )
        members = self._factory_members(site, function)
        if isinstance(members, str):
            return f"{name} {members}"
        reason = self._factory_body_reason(members, param, name)
        if reason is not None:
            return reason
        found = self._factory_substitutions(members, function, param, call)
        if isinstance(found, str):
            return f"{found} ({name} is called at {where})"
        substitutions, hints, components = found
        reason = self._factory_call_reason(call, optimizer, list(substitutions.values()))
        if reason is not None:
            return f"{reason} ({name} is called at {where})"
        return optimizer, FactoryCall(call, where, substitutions, hints, components=components)

    def _cross_file_factory(self, site: Site) -> tuple[Site, FactoryCall] | str | None:
        """``sched = build_scheduler(opt, 300)`` calling a scheduler factory of another file
        (``CrossFile.factory_of``): the optimizer its scheduler is built on and the factory's
        scheduler call with the caller's arguments in its parameters' places; a reason (naming
        ``file:line``) when it cannot stand for it; None when ``site`` is no such call."""
        found = self.resolver.factory_of(site.call)
        if found is None:
            return None
        body, reason = found
        if reason is not None:
            return f"the scheduler factory cannot be followed: {reason}"
        where = f"{body.place.file.rpartition('/')[2]}:{body.place.line}"
        name = f"`{code_of(site.call.func).strip()}()` (returning the scheduler at {where})"
        passed = bound_arguments(site.call, body.params)
        if passed is None:
            return f"the arguments of {name} cannot be matched to its parameters"
        argument = passed.get(body.optimizer)
        optimizer = self._bound_site(argument, site, CONSTRUCTOR) if argument is not None else None
        if optimizer is None:
            return f"{name} is not passed an optimizer built by a translated constructor here"
        scheduler = cst.parse_expression(body.source)
        assert isinstance(scheduler, cst.Call)
        substitutions: dict[int, cst.BaseExpression] = {}
        hints: dict[int, str] = {}
        lambdas = lambda_parameters(scheduler)
        for arg in scheduler.args[1:]:
            for read in read_names(arg.value):
                if read.value in body.read:
                    value = passed.get(read.value)
                    if value is None:
                        return f"{name} reads `{read.value}`, which its call does not pass"
                    substitutions[id(read)] = value
                    hints[id(value)] = read.value
                elif read.value not in lambdas and self._bound_at(site.call, read.value):
                    return f"`{read.value}` means another value where {name} is called"
        if _impure_calls(list(substitutions.values()), self._harmless_call):
            return f"the arguments of {name} call functions, which would run at the optimizer"
        return optimizer, FactoryCall(site.call, where, substitutions, hints, scheduler=scheduler)

    def _factory_body_reason(self, members: list[Site], param: cst.Param, name: str) -> str | None:
        """Why the factory's schedulers are not the whole story of its optimizer parameter:
        the factory uses the optimizer otherwise."""
        scope = self.resolver.scopes.get(param)
        uses = [
            access.node
            for assignment in (scope.assignments[param.name.value] if scope else [])
            for access in self.resolver.in_tree_order(assignment.references)
        ]
        arguments = {id(_optimizer_argument(member)) for member in members}
        if len(uses) != len(members) or any(id(use) not in arguments for use in uses):
            places = ", ".join(self._place(use) for use in uses[:3])
            return (
                f"{name} also uses its optimizer parameter `{param.name.value}` outside the "
                f"scheduler ({places}), and what it does to the optimizer is not translated"
            )
        return None

    def _factory_members(self, site: Site, function: cst.FunctionDef) -> list[Site] | str:
        """The scheduler calls of the factory: the returned one and the schedulers it combines
        (``SequentialLR(optimizer, [warmup, cosine], ...)``), each of those a ``name = ...``
        statement of the block of the ``return``, its name read only there and never stepped
        alone; a reason when the factory builds another scheduler."""
        if site.parent_call is not None:
            return "builds the scheduler inside another call; only a returned one is folded"
        members = [site]
        for other in self.plan.sites:
            if other.role != SCHEDULER or other is site or other.function is not function:
                continue
            if self._components.get(id(other.call)) is not site:
                return "builds a scheduler it does not combine into the one it returns"
            if other.parent_call is None and not self._factory_component(other, site):
                return (
                    f"binds the scheduler `{_short(other.call.func)}` ({self._place(other.call)}) "
                    "to a name read elsewhere than in the scheduler it returns, or not in the "
                    "block of its `return`"
                )
            if self._step_sites_of(other):
                return f"steps the scheduler at {self._place(other.call)} alone"
            members.append(other)
        return members

    def _factory_component(self, component: Site, outer: Site) -> bool:
        """``name = Scheduler(optimizer, ...)`` in the block of the ``return``, before it, with
        ``name`` bound once and read once, inside the returned scheduler's call."""
        target = component.target
        if not isinstance(target, cst.Name) or component.block != outer.block:
            return False
        if component.index >= outer.index:
            return False
        scope = self.resolver.scopes.get(target)
        assignments = list(scope.assignments[target.value]) if scope is not None else []
        if len(assignments) != 1 or assignments[0].node is not target:
            return False
        reads = [access.node for access in assignments[0].references]
        return len(reads) == 1 and any(node is reads[0] for node in cst_walk.walk(outer.call))

    def _factory_substitutions(
        self, members: list[Site], function: cst.FunctionDef, optimizer: cst.Param, call: cst.Call
    ) -> tuple[dict[int, cst.BaseExpression], dict[int, str], dict[int, cst.Call]] | str:
        """id(Name of the schedulers' arguments) -> the caller's expression for the factory
        parameter it reads, id(that expression) -> the parameter's name, and id(Name of a
        combined scheduler) -> its call; a reason when a name is none of these."""
        builders = self.resolver.builders()
        substitutions: dict[int, cst.BaseExpression] = {}
        hints: dict[int, str] = {}
        components = {
            id(member.target): member.call for member in members[1:] if member.target is not None
        }
        combined = {id(m.call): m.call for m in members[1:] if m.parent_call is not None}
        lambdas = set().union(*(lambda_parameters(member.call) for member in members))
        skipped = {id(_optimizer_argument(member)) for member in members} | {
            id(node) for member in members[1:] for node in cst_walk.walk(member.call.func)
        }  # the optimizer each is built on, and the callee of a nested one
        name = f"{function.name.value}()"
        arguments = [arg for member in members for arg in member.call.args]
        for arg in arguments:
            if id(arg.value) in skipped:
                continue
            for read in read_names(arg.value):
                if id(read) in skipped:
                    continue
                bindings = self.resolver.binding_nodes(read)
                if len(bindings) == 1 and id(bindings[0]) in components:
                    combined[id(read)] = components[id(bindings[0])]
                    continue
                if not bindings and read.value in BUILTIN_NAMES:
                    if self._bound_at(call, read.value):
                        return f"`{read.value}` means another value where {name} is called"
                    continue
                param = parameter_of(bindings[0], function) if len(bindings) == 1 else None
                lambda_param = len(bindings) == 1 and isinstance(bindings[0], cst.Param)
                if param is None and lambda_param and read.value in lambdas:
                    continue  # a parameter of a lambda of the scheduler's arguments
                if param is None or param is optimizer:
                    return (
                        f"the scheduler's argument reads `{read.value}`, which is not a "
                        f"parameter of {name} bound once"
                    )
                value = builders.passed(param)
                if value is None and param.default is not None and not read_names(param.default):
                    value = param.default
                if (
                    value is None
                    or lambda_parameters(value)
                    or any(n.value in lambdas for n in read_names(value))
                ):
                    return f"what the call passes for `{read.value}` cannot stand in its place"
                substitutions[id(read)] = value
                hints[id(value)] = param.name.value
        return substitutions, hints, combined

    def _bound_at(self, node: cst.CSTNode, name: str) -> bool:
        """Whether ``name`` is bound by the program (not a builtin) where ``node`` is."""
        scope = self.resolver.scopes.get(node)
        if scope is None:
            return True
        return any(not isinstance(a.scope, BuiltinScope) for a in scope[name])

    def _factory_call_reason(
        self, call: cst.Call, optimizer: Site, values: list[cst.BaseExpression]
    ) -> str | None:
        """Why the caller's arguments cannot be evaluated at the optimizer's constructor: the
        call is not after it in its block, a name is rebound after it, an argument calls
        something, or an attribute it reads is assigned somewhere in the file."""
        position = next((self.collector.name_positions.get(id(n)) for n in _names(call.func)), None)
        if optimizer.target is None or position is None:
            return "the optimizer is not assigned by a plain `name = ...` statement"
        block, index = position
        if block != optimizer.block or index <= optimizer.index:
            return (
                f"the factory is not called after the optimizer ({self._place(optimizer.call)}) "
                "in the same block"
            )
        body = self.collector.blocks[block].body  # type: ignore[attr-defined]
        if self.referents_after(values, block, optimizer.index, set()) or self.rebound_in(
            values, list(body[optimizer.index : index])
        ):
            return "a name the factory's arguments read is assigned after the optimizer is built"
        if _impure_calls(values, self._harmless_call):
            return "the factory's arguments call functions, which would run at the optimizer"
        stored = self._stored_paths()
        read = [path for value in values for path in _paths(value)]
        if any(_overlaps(path, store) for path in read for store in stored):
            return "an attribute the factory's arguments read is assigned in this file"
        between = _impure_calls(list(body[optimizer.index + 1 : index]), self._harmless_call)
        if read and between:
            return (
                f"`{code_of(between[0]).strip()}` runs between the optimizer and the factory's "
                "call and may change an attribute the factory's arguments read"
            )
        return None

    def _attach_factory_schedule(self, outer: Site, optimizer: Site, factory: FactoryCall) -> None:
        """Link the factory's scheduler to the caller's optimizer when it steps per update
        (or every k updates): nothing moves; the constructor inlines the schedule."""
        calls = [
            s
            for s in self.plan.sites
            if s.role == SCHEDULER and (s is outer or _combined_into(s, outer, self._components))
        ]
        schedule = SchedulePlan(outer, [outer], optimizer, "none", calls=calls, factory=factory)
        assert outer.entry is not None
        if outer.entry.attaches_to_chain:
            self._refuse(outer, findings.FACTORY_METRIC_SCHEDULER, where=factory.where)
            return
        if not self._classify_stepping(schedule):
            return
        if schedule.per_epoch is not None:
            self._refuse(
                outer,
                findings.FACTORY_PER_EPOCH,
                steps_per_epoch=schedule.per_epoch,
                where=factory.where,
            )
            return
        key = self.plan.key_of
        self.plan.schedules[key(optimizer.call)] = schedule
        for site in schedule.calls:
            self.plan.scheduler_of[key(site.call)] = schedule
        for step in schedule.step_sites:
            self.plan.steps[key(step.call)] = schedule

    def _attach_schedule(
        self,
        outer: Site,
        optimizer: Site,
        components: dict[int, Site],
        warmup: Warmup | None = None,
    ) -> None:
        members = [
            s
            for s in self.plan.sites
            if s.role == SCHEDULER
            and (
                s is outer
                or _combined_into(s, outer, components)
                or (warmup is not None and s is warmup.warm)
            )
        ]
        statement_members = [s for s in members if s.parent_call is None or s is outer]
        for site in statement_members:
            if site.target is None or site.block != optimizer.block:
                self._refuse(
                    outer,
                    findings.SCHEDULER_APART_FROM_OPTIMIZER,
                    optimizer_place=self._place(optimizer.statement),
                    optimizer_function=_function_name(optimizer),
                    scheduler_place=self._place(site.statement),
                    scheduler_function=_function_name(site),
                )
                return
        if optimizer.target is None:
            self._refuse(outer, findings.OPTIMIZER_NOT_A_PLAIN_ASSIGNMENT)
            return
        statement_members.sort(key=lambda s: s.index)
        reordered = self._reordered_calls(optimizer, statement_members)
        if reordered is not None:
            self._refuse(outer, findings.SCHEDULE_MOVE_REORDERS_CALLS, calls=reordered)
            return
        move = self._move(optimizer, statement_members)
        if move is None:
            self._refuse(outer, findings.SCHEDULE_CANNOT_MOVE)
            return
        changed = self._changed_between(optimizer, statement_members, move)
        if changed is not None:
            self._refuse(outer, findings.SCHEDULE_MOVE_PAST_CHANGE, statement=changed)
            return
        rebound = self._function_reads_rebound(members)
        if rebound is not None:
            self._refuse(outer, rebound[0], **rebound[1])
            return
        schedule = SchedulePlan(outer, statement_members, optimizer, move, calls=members)
        schedule.foreign = self._foreign.get(id(outer.call))
        if warmup is not None:
            schedule.warmup = (warmup.warm, warmup.boundary)
            schedule.step_sites = list(warmup.steps)
        for component in (s for s in members if s is not outer and s.parent_call is None):
            if warmup is None and self._step_sites_of(component):
                self._refuse(outer, findings.COMPONENT_STEPPED_ALONE)
                return
        if warmup is None and not self._classify_stepping(schedule):
            return
        handed = None if schedule.step_names else self._scheduler_handed_to_call(statement_members)
        if handed is not None:
            self._refuse(outer, findings.SCHEDULER_HANDED_TO_CALL, **handed)
            return
        key = self.plan.key_of
        self.plan.schedules[key(optimizer.call)] = schedule
        if schedule.move != "none":
            self.plan.moves[key(optimizer.statement)] = schedule
        for member in members:
            self.plan.scheduler_of[key(member.call)] = schedule
        for step in schedule.step_sites:
            self.plan.steps[key(step.call)] = schedule

    def _function_reads_rebound(self, members: list[Site]) -> tuple[str, dict[str, str]] | None:
        """A function argument of a scheduler (``LambdaLR(opt, f)``) reading a value that may
        change after the scheduler is built (``schedule_functions.function_problem``): torch
        calls it at ``sched.step()``, the optax schedule at the update. The finding's kind and
        values."""
        order = self._preorder()
        facts = FunctionFacts(
            self.module,
            self.resolver.scopes,  # type: ignore[arg-type]
            order,
            self.resolver.imported_names,
            self._global_shared,
            self.resolver.map.fixed_modules,
        )
        for site in members:
            if id(site.call) in self._foreign:  # a factory call of another file: not its args
                continue
            built = order.get(id(site.call))
            for argument in _function_arguments(site):
                problem = function_problem(argument, built, facts)
                if problem is not None:
                    values = dict(problem.values)
                    if problem.node is not None:
                        values["place"] = self._place(problem.node)
                    return problem.kind, values
        return None

    def _scheduler_handed_to_call(self, members: list[Site]) -> dict[str, str] | None:
        """A call of a function of the repository given a scheduler's name (or ``self.x``) as
        an argument: that function may step it, and steps there are not counted (the values
        of a ``SCHEDULER_HANDED_TO_CALL`` finding). By text, in the whole file: conservative."""
        names = {code_of(s.target).strip() for s in members if s.target is not None}
        for node in _walk_calls(self.module):
            site = self.by_call.get(id(node))
            if site is not None and site.role == SCHEDULER:
                continue
            for argument in node.args:
                text = dotted_name(argument.value)
                if text in names and self._followed_argument(node, argument):
                    return {
                        "name": text,
                        "call": _short(node.func),
                        "place": self._place(node),
                    }
        return None

    def _followed_argument(self, call: cst.Call, argument: cst.Arg) -> bool:
        """Whether ``argument`` binds a parameter of a function of this file or of another
        file of the repository (whose uses are followed, so no torch-only use marks the call);
        any other call is marked as a torch-only use of the scheduler instead."""
        if self.resolver.local_parameter(call, argument) is not None:
            return True
        cross_file = getattr(self.resolver, "cross_file", None)
        callee = self.resolver.called_function(call.func)
        return (
            cross_file is not None
            and callee is not None
            and cross_file.hand_over(callee, call, argument) is not None
        )

    def _escape_unattached(self, warm: Site, main: Site) -> None:
        """The warm-up of a pair escapes with the main scheduler's reason when the pair was
        not attached to its optimizer."""
        key = self.plan.key_of(main.call)
        if key in self.plan.scheduler_of:
            return
        escaped = self.plan.escapes.get(key)
        reason = escaped.reason if escaped is not None else "its pair was not translated"
        self._refuse(
            warm,
            findings.WARMUP_OF_UNTRANSLATED,
            main=code_of(main.call.func).strip(),
            reason=reason,
        )

    def _warmup_pair(self, sites: list[Site]) -> Warmup | str | None:
        """Two schedulers of one optimizer stepped as ``if counter < W: warm.step()`` /
        ``else: main.step()`` right after its one ``opt.step()``, with the counter the update
        count, a warm-up that is back at the base lr at the switch and a main scheduler that
        continues from there (the map's ``manual_pair``): the pair, else why not (None when
        the two are not stepped that way)."""
        steps = [self._step_sites_of(site) for site in sites]
        optimizer = self._scheduler_optimizer(sites[0])
        assert optimizer is not None
        optimizer_steps = self._optimizer_step_sites(optimizer)
        if any(len(s) != 1 for s in steps) or len(optimizer_steps) != 1:
            return None
        (opt_step,) = optimizer_steps
        check = self._if_else_after((steps[0][0], steps[1][0]), opt_step)
        if check is None:
            return None
        first = 0 if self._in_suite(steps[0][0], check.body) else 1
        warm, main = sites[first], sites[1 - first]
        test = " ".join(code_of(check.test).split())
        condition = stepping.warmup_test(check.test)
        if condition is None:
            return f"they are stepped under `if {test}:`, which is not `counter < warm-up length`"
        bound = self._integer_value(condition.bound, opt_step)
        if bound is None:
            return (
                f"the warm-up length `{code_of(condition.bound).strip()}` is not an integer "
                "literal (or a name bound once to one): with another value (0, or one that "
                "differs from the warm-up scheduler's own length) the pair means another schedule"
            )
        counter = self._update_counter(condition.counter, opt_step, optimizer, check)
        if isinstance(counter, str):
            return f"`{condition.counter.value}` is not provably the update count: {counter}"
        boundary = stepping.warmup_boundary(bound, counter)
        problem = self._pair_parts(warm, main, boundary)
        if problem is not None:
            return problem
        return Warmup(warm, main, boundary, (steps[first][0], steps[1 - first][0]))

    def _pair_parts(self, warm: Site, main: Site, boundary: int) -> str | None:
        """Why ``warm`` then ``main`` (switching at ``boundary`` updates) is not the map's
        exact manual pair, or None."""
        assert warm.entry is not None and main.entry is not None
        warm_part, main_part = warm.entry.manual_pair, main.entry.manual_pair
        if main_part is None or main_part.part != "main":
            return (
                f"{main.entry.name} as the main scheduler of a hand-stepped pair may not continue "
                "from the lr the warm-up leaves (the map lists no exact pair for it)"
            )
        if warm_part is None or warm_part.part != "warmup" or warm_part.length is None:
            return f"{warm.entry.name} is not a warm-up the map knows to end at the base lr"
        if warm.target is None or warm.index > main.index:
            return "the warm-up scheduler is not assigned before the main one"
        condition = warm_part.condition
        if not stepping.argument_holds(
            warm.entry.signature, warm.call, condition.when, condition.unless
        ):
            return (
                f"this {warm.entry.name} may not end at the base lr (the map requires "
                f"{dict(condition.when)} and not {dict(condition.unless)})"
            )
        length = self._bound_argument(warm, warm_part.length)
        if length is None or not 1 <= length <= boundary:
            return (
                f"the warm-up's {warm_part.length} is not an integer literal between 1 and the "
                f"{boundary} updates it is stepped, so it may not be back at the base lr when "
                "the main scheduler takes over"
            )
        return None

    def _bound_argument(self, site: Site, name: str) -> int | None:
        """The integer value of argument ``name`` of ``site``'s call (or its default)."""
        assert site.entry is not None
        try:
            bound = site.entry.signature.bind(site.call)
        except Untranslatable:
            return None
        signature = site.entry.signature
        node = bound[name].value if name in bound else signature.parameter(name).default_node
        return self._integer_value(node, site)

    def _integer_value(self, node: cst.BaseExpression, site: Site) -> int | None:
        """An integer literal, or a name its scope assigns once, to one (not global or
        nonlocal anywhere in the file)."""
        value = stepping.integer(node)
        if value is not None or not isinstance(node, cst.Name):
            return value
        if stepping.names_declared_shared(self.module, node.value):
            return None
        bindings = self.resolver.receiver_bindings(node, site.enclosing_class)
        if not bindings or len(bindings) != 1 or bindings[0].value is None:
            return None
        return stepping.integer(bindings[0].value)

    def _if_else_after(self, steps: tuple[Site, Site], opt_step: Site) -> cst.If | None:
        """The ``if``/``else`` of ``opt_step``'s block after it whose two branches each hold
        one of ``steps``' statements as their only statement."""
        depth = len(opt_step.path) - 1
        check = steps[0].controls[-1] if steps[0].controls else None
        if not isinstance(check, cst.If) or not isinstance(check.orelse, cst.Else):
            return None
        body = self.collector.blocks[opt_step.block].body  # type: ignore[attr-defined]
        for step in steps:
            if step.controls[-1] is not check or step.controls[:-1] != opt_step.controls:
                return None
            if step.path[:depth] != opt_step.path[:depth] or len(step.path) != depth + 2:
                return None
            block, index = step.path[depth]
            if block != opt_step.block or index <= opt_step.index or body[index] is not check:
                return None
        suites = (check.body, check.orelse.body)
        if not all(isinstance(b, cst.IndentedBlock) and len(b.body) == 1 for b in suites):
            return None
        if self._in_suite(steps[0], check.body) == self._in_suite(steps[1], check.body):
            return None
        if any(stepping.jumps(s) for s in body[opt_step.index + 1 : steps[0].path[depth][1]]):
            return None
        return check

    @staticmethod
    def _in_suite(step: Site, suite: cst.BaseSuite) -> bool:
        return step.block == id(suite)

    def _move(self, optimizer: Site, members: list[Site]) -> str | None:
        """ "up" when the schedule statements can precede the optimizer, "down" when the
        optimizer can follow them, None when neither keeps every name bound."""
        moved_targets = {id(m.target) for m in members if m.target is not None}
        checked: list[cst.CSTNode] = []
        for member in members:
            argument = _optimizer_argument(member)
            checked.extend(a.value for a in member.call.args if a.value is not argument)
        if all(m.index > optimizer.index for m in members) and not self.referents_after(
            checked, optimizer.block, optimizer.index, moved_targets
        ):
            return "up"
        last = max(m.index for m in members)
        target = optimizer.target
        assert target is not None
        if self._used_between(target, optimizer.block, optimizer.index, last, members):
            return None
        # Moved down, the optimizer's arguments (its lr is also the schedule's initial value)
        # are evaluated after the statements in between: none of them may rebind their names.
        body = self.collector.blocks[optimizer.block].body  # type: ignore[attr-defined]
        arguments: list[cst.CSTNode] = [a.value for a in optimizer.call.args]
        if self.rebound_in(arguments, list(body[optimizer.index + 1 : last])):
            return None
        return "down"

    def _changed_between(self, optimizer: Site, members: list[Site], move: str) -> str | None:
        """A statement between the optimizer and its schedule statements that may change a
        value the arguments that move (the schedule's up, the optimizer's down, its
        parameters aside) read: a store through an attribute or a subscript when they read
        one (``cfg["lr"] = 0.5``, maybe through another name), a call that is not harmless
        when they read one or a name the call mentions (``milestones.append(20)``)."""
        optimizer_values = self._optimizer_values(optimizer)
        if optimizer_values is None:
            return None  # the optimizer's own hook reports the call
        moved = _schedule_values(members) if move == "up" else optimizer_values
        paths = [path for value in moved for path in _paths(value)]
        names = {n.value for value in moved for n in _names(value)}
        for statement in self._between(optimizer, members):
            calls = _impure_calls([statement], self._harmless_call)
            mentioned = {n.value for call in calls for n in _names(call)}
            if (paths and (_store_paths(statement) or calls)) or names & mentioned:
                return code_of(statement).strip()
        return None

    def _optimizer_values(self, optimizer: Site) -> list[cst.BaseExpression] | None:
        """The optimizer's arguments but its parameters (None: they cannot be told apart)."""
        assert optimizer.entry is not None
        try:
            params = parameters_argument(
                optimizer.entry, optimizer.call, self.resolver.map.parameters
            )
        except Untranslatable:
            return None
        return [a.value for a in optimizer.call.args if a.value is not params]

    def _between(self, optimizer: Site, members: list[Site]) -> list[cst.BaseStatement]:
        """The statements of the optimizer's block between it and its schedule statements."""
        member_statements = {id(m.statement) for m in members}
        indices = [optimizer.index, *(m.index for m in members)]
        body = self.collector.blocks[optimizer.block].body  # type: ignore[attr-defined]
        return [s for s in body[min(indices) + 1 : max(indices)] if id(s) not in member_statements]

    def _reordered_calls(self, optimizer: Site, members: list[Site]) -> str | None:
        """Calls (other than the pure builtins of ``is_pure``) in at least two of: the
        optimizer's arguments (its parameters aside), the schedule's arguments, the statements
        between them. Moving one next to the other would run them in another order."""
        optimizer_values = self._optimizer_values(optimizer)
        if optimizer_values is None:
            return None  # the optimizer's own hook reports the call
        harmless = self._harmless_call
        groups = [
            _impure_calls(optimizer_values, harmless),
            _impure_calls(_schedule_values(members), harmless),
            _impure_calls(self._between(optimizer, members), harmless),
        ]
        found = [calls[0] for calls in groups if calls]
        if len(found) < 2:
            return None
        return " and ".join(f"`{code_of(call).strip()}`" for call in found)

    def _harmless_call(self, call: cst.Call) -> bool:
        """A call whose place in the evaluation order does not matter: ``is_pure``'s builtins,
        a tensor literal, one of the map's ``python_values`` (``dist.get_world_size()``)."""
        if is_pure(call) or self._tensor_literal(call):
            return True
        values = self.resolver.map.tensor_values.python_values
        return any(name in values for name in self.resolver.imported_names(call.func))

    def _used_between(
        self, target: cst.BaseExpression, block: int, start: int, stop: int, members: list[Site]
    ) -> bool:
        owner = self.collector.blocks[block]
        body = owner.body  # type: ignore[attr-defined]
        text = code_of(target).strip()
        member_statements = {id(m.statement) for m in members}
        for statement in body[start + 1 : stop]:
            if id(statement) in member_statements:
                continue
            if _mentions(statement, text):
                return True
        return False

    def _classify_stepping(self, schedule: SchedulePlan) -> bool:
        steps = self._step_sites_of(schedule.outer)
        schedule.step_sites = steps
        entry = schedule.outer.entry
        assert entry is not None
        if entry.role == SCHEDULER and entry.attaches_to_chain:
            if self.writes_epoch_lr:  # NNX: the lr is written where step(metric) runs
                schedule.written = self._metric_epoch_count(schedule, steps)
                if schedule.written is not None:
                    schedule.move = "none"  # the optimizer does not use it: nothing moves
            return True  # ReduceLROnPlateau: else its step(metric) becomes an escape of its own
        handed = self._handed_scheduler(schedule) if not steps else False
        if isinstance(handed, str):
            self._refuse(
                schedule.outer,
                findings.SCHEDULER_STEPPING_NOT_PROVED,
                reason=handed,
                **_stepping(schedule),
            )
            return False
        if handed:
            return True
        if not steps:
            goes = self._where_it_goes(schedule.outer)
            self._refuse(
                schedule.outer,
                findings.SCHEDULER_STEP_NOT_CALLED,
                where=f" ({goes})" if goes else "",
                **_stepping(schedule),
            )
            return False
        if any(step.call.args for step in steps):
            self._refuse(schedule.outer, findings.SCHEDULER_STEP_WITH_EPOCH, **_stepping(schedule))
            return False
        optimizer_steps = self._optimizer_step_sites(schedule.optimizer)
        if any(_runs_conditionally(site) for site in (*steps, *optimizer_steps)):
            return self._counted_or_refused(
                schedule, steps, findings.SCHEDULER_STEP_CONDITIONAL, **_stepping(schedule)
            )
        every = self._stepped_every_k(schedule, steps, optimizer_steps)
        if every is not None:
            if isinstance(every, str):
                return self._counted_or_refused(
                    schedule,
                    steps,
                    findings.SCHEDULER_STEPPING_NOT_PROVED,
                    reason=every,
                    **_stepping(schedule),
                )
            schedule.every = every
            return True
        if all(_same_control(step, optimizer_steps) for step in steps):
            uneven = self._uneven_stepping(steps, optimizer_steps)
            if uneven is None:
                return True
            return self._counted_or_refused(
                schedule,
                steps,
                findings.SCHEDULER_STEP_UNEVEN,
                reason=uneven,
                **_stepping(schedule),
            )
        epochs = [
            self._per_epoch(step, optimizer_steps, schedule)
            or self._handed_per_epoch(schedule, step)
            for step in steps
        ]
        if all(epochs):
            if len(steps) > 1:
                return self._counted_or_refused(
                    schedule,
                    steps,
                    findings.SCHEDULER_STEPS_PER_EPOCH,
                    count=str(len(steps)),
                    **_stepping(schedule),
                )
            if self.steps_per_epoch is None and self.writes_epoch_lr:
                schedule.written = self._epoch_count(schedule, steps[0])
                if schedule.written is not None:
                    return True
                other = self._built_in_other_method(schedule, steps[0])
                if other is not None:  # `__init__`: a second fit() goes on counting
                    return self._counted_or_refused(
                        schedule, steps, findings.SCHEDULER_BUILT_IN_OTHER_METHOD, **other
                    )
                handed = self._scheduler_handed_to_call(schedule.members)
                if handed is not None:  # the reason, not a --steps-per-epoch that cannot help
                    self._refuse(schedule.outer, findings.SCHEDULER_HANDED_TO_CALL, **handed)
                    return False
            if self.steps_per_epoch is None:
                return self._counted_or_refused(
                    schedule,
                    steps,
                    findings.SCHEDULER_PER_EPOCH_WITHOUT_LENGTH,
                    where=f" ({epochs[0]})",
                    **_stepping(schedule),
                )
            late = self._assigned_after(self.steps_per_epoch, schedule.outer)
            if late is not None:
                self._refuse(
                    schedule.outer,
                    findings.STEPS_PER_EPOCH_ASSIGNED_LATE,
                    steps_per_epoch=self.steps_per_epoch,
                    late=late,
                )
                return False
            problem = self._batch_loop_problem(steps[0], schedule)
            if problem is not None:
                self._refuse(
                    schedule.outer,
                    findings.SCHEDULER_STEPPING_NOT_PROVED,
                    reason=problem,
                    **_stepping(schedule),
                )
                return False
            schedule.per_epoch = self.steps_per_epoch
            return True
        where = "; ".join(
            f"the optimizer's at {self._place(s.statement)} in {_function_name(s)}"
            for s in optimizer_steps
        )
        return self._counted_or_refused(
            schedule,
            steps,
            findings.SCHEDULER_STEP_UNKNOWN,
            where=": this one is at "
            + "; ".join(f"{self._place(s.statement)} in {_function_name(s)}" for s in steps)
            + (f", {where}" if where else self._unseen_updates(schedule, steps)),
            **_stepping(schedule),
        )

    def _counted_or_refused(
        self, schedule: SchedulePlan, steps: list[Site], kind: str, **values: str
    ) -> bool:
        """True when the target writes the lr where the scheduler steps (NNX, no
        --steps-per-epoch) and the scheduler's ``step()`` calls can be counted where they run
        (``analysis/counted.py``; ``written`` becomes ``COUNTED``). Otherwise the scheduler
        escapes for ``kind``, and, where counting was tried, why it cannot count."""
        tried = self.writes_epoch_lr and self.steps_per_epoch is None
        if not tried or schedule.warmup or schedule.factory or schedule.foreign:
            self._refuse(schedule.outer, kind, **values)
            return False
        facts = CountFacts(
            self.module,
            self.resolver,
            self.step_methods,
            _SCHEDULER_READS,
            self._place,
            lambda groups: _mentions_but_lr_reads(self.module, groups),
            self._named_elsewhere,
            self._attribute_store_nodes,
            self._called_elsewhere,
        )
        counted = [
            Step(
                s.call,
                _direct_call(s.statement) is s.call and isinstance(s.statement.body[0], cst.Expr),  # type: ignore[attr-defined]
            )
            for s in steps
        ]
        outer = schedule.outer
        built = Counted(outer.call, outer.target, schedule.optimizer.target)
        owner = self._attribute_owner(schedule)
        if isinstance(owner, Owner):
            problem = attribute_count_problem(built, owner, counted, facts)
        else:
            problem = owner or count_problem(built, counted, facts)
        if problem is None:
            schedule.written = COUNTED
            return True
        stated = self.render(Finding(kind, values))
        self._refuse(
            schedule.outer,
            findings.SCHEDULER_NOT_COUNTED,
            reason=stated.reason,
            suggestion=stated.suggestion or "",
            problem=problem,
        )
        return False

    def _attribute_owner(self, schedule: SchedulePlan) -> Owner | str | None:
        """For a scheduler and optimizer both built as attributes (``self.sched``,
        ``self.opt``): the method building them (``analysis/counted_attributes.py``), or why
        it is not one method of a class building both in one block; None for other targets."""
        outer, optimizer = schedule.outer, schedule.optimizer
        if not isinstance(outer.target, cst.Attribute) or not isinstance(
            optimizer.target, cst.Attribute
        ):
            return None
        receiver = _self_name(outer)
        method, cls = outer.function, outer.enclosing_class
        if receiver is None or not isinstance(method, cst.FunctionDef) or cls is None:
            return f"`{code_of(outer.target).strip()}` is not built in a method of a class"
        if optimizer.block != outer.block:
            return (
                f"`{code_of(optimizer.target).strip()}` is not built in the block that builds "
                f"`{code_of(outer.target).strip()}`"
            )
        return Owner(cls, method, receiver)

    def _attribute_store_nodes(self, attribute: str) -> list[cst.CSTNode] | None:
        """Every store or deletion of ``<anything>.<attribute>`` in the file (None: it may be
        set otherwise, ``_attribute_stores``)."""
        stores = _attribute_stores(self.module, attribute, "")
        return None if stores is None else [node for node, _ in stores]

    def _called_elsewhere(self, functions: Collection[str]) -> str | None:
        """``file:line`` of a call of one of ``functions`` in another file of the repository."""
        cross_file = self.resolver.cross_file
        return None if cross_file is None else cross_file.called_elsewhere(functions)

    def _named_elsewhere(self, word: str) -> bool:
        """Whether another file of the repository holds ``word`` (unknown without one: no)."""
        cross_file = self.resolver.cross_file
        return cross_file is not None and cross_file.mentioned_elsewhere(word)

    def _epoch_count(self, schedule: SchedulePlan, step: Site) -> str | None:
        """``epoch + 1``: the scheduler's step count at its ``step()``, when provably so: the
        step is alone on its line directly in ``for epoch in range(n):`` (no ``else``, no
        jump out of it or past the rest of its body: ``stepping.leaves_loop``, a jump of an
        inner loop is harmless; ``epoch`` not rebound in it), that loop in the scheduler's block
        after it (each run of the block builds a fresh scheduler), scheduler and optimizer
        plain names not rebound from there to the loop's end, and the optimizer's
        ``param_groups`` used only to read ``opt.param_groups[0]["lr"]`` (a write there would
        change what the scheduler multiplies)."""
        loop = step.controls[-1]
        if not isinstance(loop, cst.For) or loop.orelse is not None or loop.asynchronous:
            return None
        start = self._epoch_start(loop) if isinstance(loop.target, cst.Name) else None
        if start is None:
            return None
        if len(step.path) < 2 or step.path[-2][0] != schedule.outer.block:
            return None
        if step.path[-2][1] <= schedule.outer.index or _direct_call(step.statement) is None:
            return None
        body = list(loop.body.body)  # type: ignore[attr-defined]
        line = step.statement
        if not isinstance(line.body[0], cst.Expr) or any(stepping.leaves_loop(s) for s in body):  # type: ignore[attr-defined]
            return None
        if self.rebound_in([loop.target], body):
            return None
        optimizer, scheduler = schedule.optimizer.target, schedule.outer.target
        if isinstance(optimizer, cst.Attribute) and isinstance(scheduler, cst.Attribute):
            if not self._self_attributes_stable(schedule, step):
                return None  # `self.sched` stored or used elsewhere: its count is not provable
            return _steps_at(loop.target.value, start)
        if not isinstance(optimizer, cst.Name) or not isinstance(scheduler, cst.Name):
            return None
        owner = self.collector.blocks[schedule.outer.block]
        after = list(owner.body[schedule.outer.index + 1 : step.path[-2][1] + 1])  # type: ignore[attr-defined]
        if self.rebound_in([optimizer, scheduler], after):
            return None  # `sched` (or `opt`) at the step may not be the one built
        if _mentions_but_lr_reads(self.module, f"{optimizer.value}.param_groups"):
            return None
        if _handed_as_argument(self.module, scheduler.value):
            return None  # a function it is handed to (`train(model, opt, sched)`) may step it
        return _steps_at(loop.target.value, start)

    def _built_in_other_method(self, schedule: SchedulePlan, step: Site) -> dict[str, str] | None:
        """The finding's values when the scheduler is an attribute (``self.sched``) built in
        another method of the class than the one whose epoch loop steps it (``__init__`` and
        ``fit()``): every call of that method on one object goes on counting."""
        outer = schedule.outer
        if not isinstance(outer.target, cst.Attribute) or step.enclosing_class is None:
            return None
        if outer.function is step.function:
            return None
        return {
            "built": f"{self._place(outer.statement)} in {_function_name(outer)}",
            "stepped": f"{self._place(step.statement)} in {_function_name(step)}",
            **_stepping(schedule),
        }

    def _self_attributes_stable(self, schedule: SchedulePlan, step: Site) -> bool:
        """For ``_epoch_count`` of a trainer class: ``self.opt`` and ``self.sched`` both built
        in the method of the epoch loop, in its block before the loop (each run of the method
        builds fresh ones: built in ``__init__``, a second ``fit()`` would go on counting), as
        attributes of that method's ``self``; each attribute stored nowhere else in the file
        (no other method, no subclass, no ``setattr``/``vars``); the scheduler's attribute
        only the receiver of method calls (not handed on, not read into a name): one
        ``step()`` in the file (also ``t.sched.step()`` of a function given the trainer),
        otherwise reads through ``self`` (``_SCHEDULER_READS``); the optimizer's
        ``param_groups`` never used (a write there changes what it multiplies)."""
        receiver = _self_name(step)
        optimizer, scheduler = schedule.optimizer.target, schedule.outer.target
        for built in (optimizer, scheduler):
            if not isinstance(built, cst.Attribute) or not isinstance(built.value, cst.Name):
                return False
            if receiver is None or built.value.value != receiver:
                return False
            stores = _attribute_stores(self.module, built.attr.value, receiver)
            if stores is None or [id(node) for node, _ in stores] != [id(built)]:
                return False
        if schedule.optimizer.block != schedule.outer.block:
            return False
        assert isinstance(optimizer, cst.Attribute) and isinstance(scheduler, cst.Attribute)
        if _attribute_read(self.module, optimizer.attr.value, "param_groups"):
            return False
        if not _only_method_receiver(self.module, scheduler):
            return False
        methods = _methods_called_on(self.module, scheduler.attr.value)
        steps = [m for _, m in methods if m in self.step_methods]
        reads = [(base, m) for base, m in methods if m not in self.step_methods]
        # `t.sched.get_last_lr()` outside the class would stay torch code: not followed
        return len(steps) == 1 and all(b == receiver and m in _SCHEDULER_READS for b, m in reads)

    def _handed_scheduler(self, schedule: SchedulePlan) -> bool | str:
        """A scheduler handed, with its optimizer, to one call of a function of this file
        that steps it (NNX: ``writes_epoch_lr``, no --steps-per-epoch): True when its step
        count there is proved (``_phase_epoch_count``; sets ``written``, ``step_sites``,
        ``step_names``), why not (a str), or False when it is not such a scheduler. The call
        is the one use of the scheduler's name after it is built, in the same block (each run
        of the block hands a fresh scheduler); every call of the function in the repository
        hands it this scheduler and this optimizer (``reaching_values``), and it reads them
        only as ``scheduler.step()`` and through its optimizer parameter."""
        if not self.writes_epoch_lr or self.steps_per_epoch is not None:
            return False
        optimizer, scheduler = schedule.optimizer.target, schedule.outer.target
        if not isinstance(optimizer, cst.Name) or not isinstance(scheduler, cst.Name):
            return False
        body = self.collector.blocks[schedule.outer.block].body  # type: ignore[attr-defined]
        live, later = self._until_rebound(scheduler, list(body[schedule.outer.index + 1 :]))
        after = [s for s in live if _mentions(s, scheduler.value)]
        call = _direct_call(after[0]) if len(after) == 1 else None
        handed = [a for a in call.args if _mentions(a, scheduler.value)] if call else []
        param = self.resolver.local_parameter(call, handed[0]) if len(handed) == 1 else None
        if call is None or param is None or handed[0].value is not _plain(handed[0].value):
            return False
        name = f"{code_of(call.func).strip()}()"
        later_uses = sum(_references_of(s, scheduler.value) for s in later)  # type: ignore[arg-type]
        if later_uses and any(isinstance(c, (cst.For, cst.While)) for c in schedule.outer.controls):
            later_uses = -1  # a loop runs the statements after the rebinding before it again
        if _references_of(self.module, scheduler.value) != 2 + later_uses:
            return f"`{scheduler.value}` is used elsewhere than in {name}"
        cross_file = self.resolver.cross_file
        if cross_file is not None and cross_file.mentioned_elsewhere(code_of(call.func).strip()):
            return f"{name} is named in another file, which may hand it another scheduler"
        if not self._never_rebound(param):
            return f"{name} rebinds `{param.name.value}`"
        uses = self.resolver.parameter_uses(param)
        steps = [s for s in self.plan.sites if any(s.receiver is u for u in uses)]
        stepped = len(steps) == 1 and self._is_step(steps[0])
        if len(uses) != 1 or not stepped:
            return f"{name} uses `{param.name.value}` otherwise than by one `.step()`"
        reached = self.resolver.reaching_values(uses[0], steps[0].enclosing_class)
        if reached is None or len(reached) != 1 or reached[0] is not schedule.outer.call:
            others = [v for v in reached or [] if v is not schedule.outer.call]
            where = ", ".join(f"`{_short(v, 40)}` at {self._place(v)}" for v in others[:2])
            return f"a call of {name} hands `{param.name.value}` another value" + (
                f" ({where}): one step() there would have to write the schedule of "
                "each scheduler it is handed to its own optimizer, which is not translated"
                if where
                else ""
            )
        local_optimizer = self._handed_optimizer(call, optimizer, schedule)
        if local_optimizer is None:
            return f"{name} is not handed `{optimizer.value}` as a parameter it only steps"
        count = self._phase_epoch_count(steps[0])
        if count is None:
            return (
                f"{name} steps `{param.name.value}` where its step count is not proved: "
                "once per epoch, alone under `if phase == 'train':` directly in "
                "`for phase in [...]` (one 'train' in the list) directly in "
                "`for epoch in range(n)`, no jump out of either loop"
            )
        schedule.written, schedule.step_sites = count, steps
        schedule.step_names = (local_optimizer, param.name.value)
        return True

    def _until_rebound(
        self, name: cst.Name, statements: list[cst.BaseStatement]
    ) -> tuple[list[cst.BaseStatement], list[cst.BaseStatement]]:
        """``statements`` (those after ``name``'s assignment in its block) split at the first
        that assigns ``name`` again unconditionally (``name = ...`` alone on its line): the
        ones its value reaches, and that one with the rest."""
        for index, statement in enumerate(statements):
            assigned = stepping.lone_assignment(statement, name.value)
            if assigned is None:
                continue
            if not _mentions(assigned.value, name.value):
                return statements[:index], statements[index:]  # not `sched = f(sched)`
            break
        return statements, []

    def _handed_optimizer(
        self, call: cst.Call, optimizer: cst.Name, schedule: SchedulePlan
    ) -> str | None:
        """The parameter ``call`` hands ``optimizer`` to (its one argument naming it), which
        every call of the function in this file gives that optimizer and the function never
        rebinds; None otherwise."""
        handed = [a for a in call.args if _mentions(a, optimizer.value)]
        if len(handed) != 1 or handed[0].value is not _plain(handed[0].value):
            return None
        param = self.resolver.local_parameter(call, handed[0])
        uses = self.resolver.parameter_uses(param) if param is not None else []
        if param is None or not uses or not self._never_rebound(param):
            return None
        reached = self.resolver.reaching_values(uses[0], None)  # type: ignore[arg-type]
        if reached is None or len(reached) != 1 or reached[0] is not schedule.optimizer.call:
            return None
        return param.name.value

    def _never_rebound(self, param: cst.Param) -> bool:
        """Whether nothing in its function assigns the parameter ``param``'s name."""
        scope = self.resolver.scopes.get(param)
        if scope is None:
            return False
        return all(a.node is param for a in scope.assignments[param.name.value])

    def _phase_epoch_count(self, step: Site) -> str | None:
        """``epoch + 1``: the scheduler's step count at ``if phase == 'train': sched.step()``
        (the step alone in the ``if``, no ``else``), directly in the body of
        ``for phase in ['train', 'val']`` (string literals, the compared one once), itself
        directly in ``for epoch in range(n)``: true once per epoch. Neither loop has an
        ``else`` or a jump out of it or past the rest of its body, neither name is rebound
        in it. None for any other shape."""
        controls = step.controls
        if len(controls) < 3 or step.index != 0:
            return None
        guard, phases, epochs = controls[-1], controls[-2], controls[-3]
        if not isinstance(guard, cst.If) or guard.orelse is not None or len(guard.body.body) != 1:
            return None
        if not all(isinstance(loop, cst.For) for loop in (phases, epochs)):
            return None
        if not self._one_phase_true(guard.test, phases) or guard not in phases.body.body:  # type: ignore[attr-defined]
            return None
        if phases not in epochs.body.body or _direct_call(step.statement) is None:  # type: ignore[attr-defined]
            return None
        start = self._epoch_start(epochs) if isinstance(epochs.target, cst.Name) else None  # type: ignore[attr-defined]
        for loop in (phases, epochs):
            inside = list(loop.body.body)  # type: ignore[attr-defined]
            if loop.orelse is not None or loop.asynchronous:  # type: ignore[attr-defined]
                return None
            if any(stepping.leaves_loop(s) for s in inside):
                return None
            if self.rebound_in([loop.target], inside):  # type: ignore[attr-defined]
                return None
        if start is None:
            return None
        return _steps_at(epochs.target.value, start)  # type: ignore[attr-defined]

    def _one_phase_true(self, test: cst.BaseExpression, loop: cst.For) -> bool:
        """Whether ``test`` is ``phase == 'x'`` (or ``'x' == phase``) for the target ``phase``
        of ``loop``, which iterates a list or tuple literal of distinct string literals with
        ``'x'`` in it."""
        if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
            return False
        if not isinstance(test.comparisons[0].operator, cst.Equal):
            return False
        sides = [test.left, test.comparisons[0].comparator]
        names = [s for s in sides if isinstance(s, cst.Name)]
        texts = [s for s in sides if isinstance(s, cst.SimpleString)]
        target = loop.target
        if len(names) != 1 or len(texts) != 1 or not isinstance(target, cst.Name):
            return False
        if names[0].value != target.value or not isinstance(loop.iter, (cst.List, cst.Tuple)):
            return False
        elements = [e.value for e in loop.iter.elements]
        if not all(isinstance(e, cst.SimpleString) and not e.prefix.strip("rR") for e in elements):
            return False
        values = [e.evaluated_value for e in elements]  # type: ignore[union-attr]
        return len(set(values)) == len(values) and texts[0].evaluated_value in values

    def _metric_epoch_count(self, schedule: SchedulePlan, steps: list[Site]) -> str | None:
        """``epoch + 1`` (``_epoch_count``) for a scheduler that takes a metric
        (ReduceLROnPlateau): its one ``step(metric)``, the metric one positional argument,
        once per epoch after the optimizer's updates; None for any other shape."""
        if len(steps) != 1:
            return None
        arguments = steps[0].call.args
        if len(arguments) != 1 or arguments[0].keyword is not None or arguments[0].star:
            return None
        if not self._per_epoch(steps[0], self._optimizer_step_sites(schedule.optimizer), schedule):
            return None
        return self._epoch_count(schedule, steps[0])

    def _epoch_start(self, loop: cst.For) -> cst.Integer | cst.Name | cst.Attribute | None:
        """The first value of ``for epoch in range(n)`` (0) or ``range(start, n)``: an integer
        literal, a plain name that nothing can rebind while the loop runs (not assigned in
        it, never declared ``global``/``nonlocal``), or ``args.start_epoch`` that nothing can
        change while it runs (``_attribute_start_stable``); None for any other iterable."""
        iterable = loop.iter
        if self._counts_from_zero(iterable):
            return cst.Integer("0")
        if not self._range_call(iterable, 2):
            return None
        start = iterable.args[0].value  # type: ignore[attr-defined]
        if isinstance(start, cst.Integer):
            return start
        if isinstance(start, cst.Attribute):
            return start if self._attribute_start_stable(loop, start) else None
        if not isinstance(start, cst.Name) or self.resolver.scopes.get(start) is None:
            return None
        if self.rebound_in([start], [loop]) or start.value in _declared_global(self.module):
            return None
        return start

    def _attribute_start_stable(self, loop: cst.For, start: cst.Attribute) -> bool:
        """Whether ``args.start_epoch`` (``range(args.start_epoch, n)``) keeps the value the
        loop started from while it runs: ``args`` a name not rebound in the loop nor declared
        shared; every store of ``.start_epoch`` in the file in the loop's own function, before
        the loop (the resume branch), no ``setattr``/``vars``/``args.__dict__``; in the loop,
        ``args`` only read as ``args.x`` (no method call) or handed to functions of this file
        that only read ``p.x`` of their parameter (``_reads_attributes_only``)."""
        base, attribute = start.value, start.attr.value
        if not isinstance(base, cst.Name) or self.resolver.scopes.get(base) is None:
            return False
        if self.rebound_in([base], [loop]) or base.value in _declared_global(self.module):
            return False
        function = _enclosing_def(self.module, loop)
        stores = _attribute_stores(self.module, attribute, base.value)
        order = self._preorder()
        if stores is None or any(
            owner is not function or order[id(node)] > order[id(loop)] for node, owner in stores
        ):
            return False
        for use, parent, grandparent in _name_uses(loop, base.value):
            if isinstance(parent, cst.Attribute) and parent.value is use:
                if not (isinstance(grandparent, cst.Call) and grandparent.func is parent):
                    continue  # `args.distributed`, `args.print_freq`: a read
                return False  # `args.update(...)`: a method may change it
            if isinstance(parent, cst.Arg) and isinstance(grandparent, cst.Call):
                param = self.resolver.local_parameter(grandparent, parent)
                if param is not None and self._reads_attributes_only(param):
                    continue
            return False
        return True

    def _reads_attributes_only(self, param: cst.Param) -> bool:
        """Whether the parameter is only read as ``p.x`` (not called, not stored, not handed
        on) in its function, and never rebound there."""
        scope = self.resolver.scopes.get(param)
        if scope is None or any(a.node is not param for a in scope.assignments[param.name.value]):
            return False
        uses = {id(u) for u in self.resolver.parameter_uses(param)}
        reads = _attribute_reads(self.module)
        return uses <= reads

    def _range_call(self, iterable: cst.BaseExpression, arguments: int) -> bool:
        """``range(...)`` with ``arguments`` plain positional arguments, the builtin."""
        return (
            isinstance(iterable, cst.Call)
            and isinstance(iterable.func, cst.Name)
            and iterable.func.value == "range"
            and not self._shadowed(iterable.func)
            and len(iterable.args) == arguments
            and all(a.keyword is None and not a.star for a in iterable.args)
        )

    def _counts_from_zero(self, iterable: cst.BaseExpression) -> bool:
        """``range(n)``: one positional argument, ``range`` the builtin."""
        return (
            isinstance(iterable, cst.Call)
            and isinstance(iterable.func, cst.Name)
            and iterable.func.value == "range"
            and not self._shadowed(iterable.func)
            and len(iterable.args) == 1
            and iterable.args[0].keyword is None
            and not iterable.args[0].star
        )

    def _assigned_after(self, expression: str, site: Site) -> str | None:
        """A name of ``expression`` (the --steps-per-epoch text) assigned, in the scope of
        ``site``, after the start of its statement; None when there is none."""
        scope = self.resolver.scopes.get(site.call)
        if scope is None:
            return None
        order = self._preorder()
        start = order[id(site.statement)]
        for name in _names(cst.parse_expression(expression)):
            for assignment in scope.assignments[name.value]:
                node = getattr(assignment, "node", None)
                if node is not None and order.get(id(node), -1) > start:
                    return name.value
        return None

    def _stepped_every_k(
        self, schedule: SchedulePlan, steps: list[Site], optimizer_steps: list[Site]
    ) -> tuple[int, int] | str | None:
        """``(k, r)`` when the one ``sched.step()`` runs under ``if counter % k == 0:`` right
        after the one ``opt.step()`` and the counter is provably the update count; a reason
        when it runs under a ``%`` condition that is not that; None for other shapes."""
        if len(steps) != 1 or len(optimizer_steps) != 1:
            return None
        (step,), (opt_step,) = steps, optimizer_steps
        check = self._check_after(step, opt_step)
        if check is None:
            return None
        test = " ".join(code_of(check.test).split())
        condition = stepping.every_k(check.test)
        k = self._integer_value(condition.k, step) if condition is not None else None
        if condition is None or k is None or k < 1:
            if not stepping.is_modulo_test(check.test):
                return None
            return (
                f"step() runs under `if {test}:`, which is not `counter % k == 0` with k an "
                "integer literal (or a name bound once to one), so how often the schedule "
                "advances per update is unknown"
            )
        counter = self._update_counter(condition.counter, opt_step, schedule.optimizer, check)
        if isinstance(counter, str):
            return (
                f"step() runs under `if {test}:`, but `{condition.counter.value}` is not "
                f"provably the update count: {counter}"
            )
        return k, stepping.lr_index_offset(condition, k, counter)

    def _check_after(self, step: Site, opt_step: Site) -> cst.If | None:
        """The ``if`` (no ``else``) of ``opt_step``'s block, after it, whose body holds
        ``step``'s statement, with no jump between the two; None for any other shape."""
        depth = len(opt_step.path) - 1
        check = step.controls[-1] if step.controls else None
        if not isinstance(check, cst.If) or check.orelse is not None:
            return None
        if step.controls[:-1] != opt_step.controls or step.path[:depth] != opt_step.path[:depth]:
            return None
        block, index = step.path[depth]
        body = self.collector.blocks[block].body  # type: ignore[attr-defined]
        if block != opt_step.block or index <= opt_step.index or body[index] is not check:
            return None
        if isinstance(check.body, cst.SimpleStatementSuite):
            inside = any(isinstance(s, cst.Expr) and s.value is step.call for s in check.body.body)
            before: list[cst.CSTNode] = [check.body]
        else:
            inside = len(step.path) == depth + 2 and step.block == id(check.body)
            before = list(check.body.body[: step.index])
        jumps = any(stepping.jumps(s) for s in (*body[opt_step.index + 1 : index], *before))
        return check if inside and not jumps else None

    def _update_counter(
        self, name: cst.Name, opt_step: Site, optimizer: Site, check: cst.If
    ) -> stepping.Counter | str:
        """The counter ``name`` as the update count: assigned exactly twice in its scope,
        ``name = <int>`` in the optimizer's block before the loop that steps it, and
        ``name += 1`` in the block of ``opt_step``, with no jump between it, the step and the
        check. Else why not."""
        text = name.value
        scope = self.resolver.scopes.get(name)
        if scope is None or stepping.names_declared_shared(self.module, text):
            return f"`{text}` is declared global or nonlocal, so other code may change it"
        assignments = list(scope.assignments[text])
        if len(assignments) == 1 and isinstance(assignments[0], Assignment):
            return self._enumerated_counter(assignments[0], opt_step, optimizer, check)
        if len(assignments) != 2 or not all(isinstance(a, Assignment) for a in assignments):
            return (
                f"it is assigned {len(assignments)} times in its scope (a counter is set once "
                f"to an integer literal and incremented once per update with `{text} += 1`)"
            )
        positions = [self.collector.name_positions.get(id(a.node)) for a in assignments]
        statements = {
            p: self.collector.blocks[p[0]].body[p[1]]  # type: ignore[attr-defined]
            for p in positions
            if p is not None
        }
        increments = [p for p, s in statements.items() if stepping.increment(s, text)]
        starts = [p for p, s in statements.items() if stepping.initial_value(s, text) is not None]
        if len(increments) != 1 or len(starts) != 1 or increments[0][0] != opt_step.block:
            return (
                f"it is not set once to an integer literal and incremented once with "
                f"`{text} += 1` next to the optimizer's step() (in the same block)"
            )
        start = starts[0]
        depth = len(optimizer.path) - 1
        if (
            start[0] != optimizer.block
            or len(opt_step.path) <= depth
            or opt_step.path[:depth] != optimizer.path[:depth]
            or opt_step.path[depth][0] != optimizer.block
            or start[1] >= opt_step.path[depth][1]
        ):
            return (
                f"`{text} = ...` is not in the optimizer's block before the loop that steps it, "
                "so it may not count from the optimizer's first update"
            )
        body = self.collector.blocks[opt_step.block].body  # type: ignore[attr-defined]
        check_index = next(i for i, s in enumerate(body) if s is check)
        indices = (increments[0][1], opt_step.index, check_index)
        if any(stepping.jumps(s) for s in body[min(indices) + 1 : max(indices)]):
            return (
                "a `continue`, `break`, `return` or `raise` between its increment and the "
                "optimizer's step() can skip one of them"
            )
        initial = stepping.initial_value(statements[start], text)
        assert initial is not None
        return stepping.Counter(initial, increments[0][1] < check_index)

    def _enumerated_counter(
        self, assignment: Assignment, opt_step: Site, optimizer: Site, check: cst.If
    ) -> stepping.Counter | str:
        """``for step, batch in enumerate(batches[, start]):`` as the update count: the loop
        sits in the optimizer's block (it runs once per optimizer built) and steps it directly
        in its body, with no jump before the check."""
        text = code_of(assignment.node).strip()
        position = self.collector.name_positions.get(id(assignment.node))
        loop = self.collector.blocks[position[0]].body[position[1]] if position else None  # type: ignore[attr-defined]
        start = stepping.enumerated_start(loop, text) if isinstance(loop, cst.For) else None
        if start is None or self._shadowed(loop.iter.func):  # type: ignore[union-attr]
            return (
                f"it is assigned once in its scope, and not as the index of "
                f"`for {text}, ... in enumerate(...)` (a counter is set once to an integer "
                f"literal and incremented once per update with `{text} += 1`)"
            )
        assert position is not None and isinstance(loop, cst.For)
        if position[0] != optimizer.block or opt_step.block != id(loop.body):
            return (
                f"the loop over `enumerate(...)` is not in the optimizer's block, or does not "
                f"step the optimizer directly in its body, so `{text}` may restart while the "
                "optimizer's update count goes on (an inner loop of an epoch loop)"
            )
        body = loop.body.body  # type: ignore[union-attr]
        check_index = next(i for i, s in enumerate(body) if s is check)
        if any(stepping.jumps(s) for s in body[:check_index]):
            return (
                "a `continue`, `break`, `return` or `raise` before the check can skip an update "
                f"while `{text}` goes on"
            )
        return stepping.Counter(start, incremented_before_check=False)

    def _shadowed(self, name: cst.Name) -> bool:
        """Whether the builtin ``name`` is bound by the file where it is used (or unknown)."""
        scope = self.resolver.scopes.get(name)
        return scope is None or any(isinstance(a, Assignment) for a in scope[name.value])

    def _uneven_stepping(self, steps: list[Site], optimizer_steps: list[Site]) -> str | None:
        """Why ``sched.step()`` may not run exactly once per ``opt.step()``: several calls of
        either, or a jump (``continue``, ``break``, ``return``, ``raise``) between the two."""
        if len(steps) > 1:
            return (
                f"step() is called {len(steps)} times where the optimizer steps, so the "
                "schedule may advance more than once per update"
            )
        if len(optimizer_steps) > 1:
            return (
                f"the optimizer's step() is called in {len(optimizer_steps)} places, so the "
                "scheduler may step less than once per update"
            )
        (step,), (opt_step,) = steps, optimizer_steps
        if step.statement is opt_step.statement:
            return None
        owner = self.collector.blocks[step.block]
        between = owner.body[opt_step.index + 1 : step.index]  # type: ignore[attr-defined]
        if any(stepping.jumps(statement) for statement in between):
            return (
                "a `continue`, `break`, `return` or `raise` between the optimizer's step() and "
                "this one can skip it, so it may not run once per update"
            )
        return None

    def _per_epoch(
        self, step: Site, optimizer_steps: list[Site], schedule: SchedulePlan
    ) -> str | None:
        """Where the scheduler steps once per epoch, or None: in an outer loop of the
        optimizer's step, or after calling a function (or a method of its class, through
        ``self``) of this file that steps the optimizer inside a loop: directly in the loop's
        body (no condition of its own), after the statement that steps the optimizer, with no
        jump between the two. A function must step the very optimizer through the parameter
        the call hands it to (``_handed_steps``); the call and its steps are kept for
        ``_batch_loop_problem``."""
        outer_loops = step.loops
        if not outer_loops or step.controls[-1] is not outer_loops[-1]:
            return None
        loop_body = outer_loops[-1].body  # type: ignore[attr-defined]
        depth = len(step.path) - 1
        for opt_step in optimizer_steps:
            inner = opt_step.loops
            same_function = opt_step.function is step.function
            if same_function and inner[: len(outer_loops)] == outer_loops != inner:
                if not self._steps_after(loop_body, opt_step.path[depth][1], step.index):
                    return None
                return (
                    f"{self._place(step.statement)} {_function_name(step)} steps it in the loop "
                    "around the loop that steps the optimizer"
                )
        # A function of this file that steps an optimizer inside a loop (e.g. `train(...)`,
        # which gets the optimizer as a parameter), called in the scheduler's loop; or a method
        # of the scheduler's class that steps the optimizer in a loop (`self.train_epoch()`).
        functions = {
            s.function.name.value  # type: ignore[union-attr]
            for s in self.plan.sites
            if s.role == STEP
            and self._is_step(s)
            and isinstance(s.function, cst.FunctionDef)
            and s.loops
            and s.function is not step.function
        }
        methods = {
            s.function.name.value  # type: ignore[union-attr]
            for s in optimizer_steps
            if isinstance(s.function, cst.FunctionDef)
            and s.loops
            and s.function is not step.function
            and s.enclosing_class is not None
            and s.enclosing_class is step.enclosing_class
        }
        receiver = _self_name(step)
        calls = [
            (index, name)
            for index, statement in enumerate(loop_body.body[: step.index])
            for name in sorted(functions | methods)
            if (name in functions and _calls_name(statement, name))
            or (name in methods and receiver and _calls_self_method(statement, receiver, name))
        ]
        if calls and _direct_call(loop_body.body[calls[-1][0]]) is None:
            return None  # under a condition or in an expression: maybe not once per epoch
        if not calls or not self._steps_after(loop_body, calls[-1][0], step.index):
            return None
        index, name = calls[-1]
        call = _direct_call(loop_body.body[index])
        assert call is not None
        by_name = isinstance(call.func, cst.Name)
        # NNX without --steps-per-epoch writes the lr where torch steps the scheduler: exact
        # however often the method runs (twice an epoch, also from `warm_up()`); the count
        # at the write is proved on its own (`_epoch_count`)
        any_updates = not by_name and self.writes_epoch_lr and self.steps_per_epoch is None
        once = (_references_of if by_name else _calls_of)(self.module, name) == 1
        if not any_updates and not once:
            return None  # also called (or handed on) elsewhere; `model.train()` is no call of it
        if not by_name and _defs_named(self.module, name) != 1:
            return None  # a subclass overrides the method
        if not by_name and not any_updates and _attr_uses(self.module, name) != 1:
            return None  # read (`f = self.train_epoch`): it may run anywhere
        optimizer = schedule.optimizer.target
        if by_name and optimizer is not None and _mentions(call, code_of(optimizer).strip()):
            stepped = self._handed_steps(call, schedule, loop_body.body)
        elif by_name:  # it steps the optimizer it reads from the module (`opt.step()`)
            definition = self._local_definition(call)
            stepped = [s for s in optimizer_steps if definition and s.function is definition]
        else:
            stepped = [s for s in optimizer_steps if _function_name(s) == f"{name}()"]
        if not stepped or any(s not in stepped for s in optimizer_steps):
            return None  # not this optimizer's steps, or it also steps elsewhere
        self._epoch_calls[id(step.call)] = (call, stepped)
        return (
            f"{self._place(loop_body.body[index])} {_function_name(step)} calls {name}(), which "
            "loops over batches and steps the optimizer, once per epoch"
        )

    def _handed_steps(
        self, call: cst.Call, schedule: SchedulePlan, epoch_body: Sequence[cst.BaseStatement]
    ) -> list[Site] | None:
        """The ``p.step()`` sites of the function of this file ``call`` calls, where ``p`` is
        the parameter ``call`` hands the scheduler's optimizer to (its one argument naming it),
        never rebound there and used only as ``p.step()``/``p.zero_grad()``; None when that
        is not certain: the optimizer handed to another call of the epoch loop (which may step
        it too), no such step. (A scheduler handed to a call escapes after this:
        ``_scheduler_handed_to_call``.)"""
        optimizer = schedule.optimizer.target
        if optimizer is None:
            return None
        text = code_of(optimizer).strip()
        handed = [a for a in call.args if _mentions(a, text)]
        if len(handed) != 1 or code_of(handed[0].value).strip() != text:
            return None
        others = [c for c in _calls_in(epoch_body) if c is not call and _arguments_mention(c, text)]
        param = self.resolver.local_parameter(call, handed[0])
        scope = self.resolver.scopes.get(param) if param is not None else None
        if param is None or scope is None or others:
            return None
        if any(a.node is not param for a in scope.assignments[param.name.value]):
            return None  # `optimizer = ...` in the function: it steps another one
        allowed = self.step_methods | self.resolver.map.methods_with_role(ZERO_GRAD)
        receivers = _method_receivers(self.module, allowed)
        uses = self.resolver.parameter_uses(param)
        if not uses or any(id(use) not in receivers for use in uses):
            return None  # handed on, stored, read: the function may do anything with it
        ids = {id(use) for use in uses}
        return [
            s
            for s in self.plan.sites
            if s.role == STEP and self._is_step(s) and id(s.receiver) in ids
        ] or None

    def _batch_loop_problem(self, step: Site, schedule: SchedulePlan) -> str | None:
        """Why the function or method the epoch loop calls (``_per_epoch``) may not update
        the optimizer exactly --steps-per-epoch times an epoch: not one step, directly in the
        body of a ``for`` loop of the function's own body; a jump out of or past the rest of
        that loop, or before it; with ``len(X)`` as --steps-per-epoch, a loop that iterates
        neither what the call passes as ``X`` nor ``enumerate()`` of it; the optimizer handed
        to another call of the scheduler's function (``_handed_elsewhere``). None: it does."""
        if id(step.call) in self._handed_problems:
            return self._handed_problems[id(step.call)]  # a function of another file
        found = self._epoch_calls.get(id(step.call))
        if found is None:
            return None  # stepped in the loop around the optimizer's loop: as before
        call, stepped = found
        name = f"{code_of(call.func).strip()}()"
        elsewhere = self._handed_elsewhere(call, schedule)
        if elsewhere is not None:
            return elsewhere
        if len(stepped) != 1:
            return f"{name} steps the optimizer in {len(stepped)} places"
        (opt_step,) = stepped
        function = opt_step.function
        loop = opt_step.controls[-1]
        assert isinstance(function, cst.FunctionDef)
        body = list(function.body.body)  # type: ignore[attr-defined]
        if not isinstance(loop, cst.For) or loop not in body or opt_step.block != id(loop.body):
            return (
                f"{name} does not step the optimizer directly in a `for` loop of its own body "
                f"({self._place(opt_step.statement)}), so how often per epoch is unknown"
            )
        inside = list(loop.body.body)  # type: ignore[attr-defined]
        jump = next((s for s in inside if stepping.leaves_loop(s)), None)
        jump = jump or next((s for s in body[: body.index(loop)] if stepping.jumps(s)), None)
        if jump is not None:
            return (
                f"{name} can leave or skip its batch loop early ({self._place(jump)}), so an "
                f"epoch may have fewer updates than --steps-per-epoch ({self.steps_per_epoch})"
            )
        return self._iterated_problem(call, loop, name, schedule.outer.call, function)

    def _handed_elsewhere(self, call: cst.Call, schedule: SchedulePlan) -> str | None:
        """A call of the function around ``call`` (the epoch's train call), other than it and
        the scheduler's constructors, handed the optimizer itself (``warmup(model, opt)``
        before the epoch loop): it may update it outside the counted batches."""
        optimizer = schedule.optimizer.target
        if optimizer is None:
            return "the optimizer is not a name"
        text = code_of(optimizer).strip()
        function = _enclosing_def(self.module, call)
        body = function.body.body if function is not None else self.module.body  # type: ignore[union-attr]
        for other in _calls_in(body):
            site = self.by_call.get(id(other))
            if other is call or (site is not None and site.role == SCHEDULER):
                continue
            if _arguments_mention(other, text):
                return (
                    f"the optimizer is also handed to {_short(other.func, 40)}() at "
                    f"{self._place(other)}, which may update it outside the counted batches"
                )
        return None

    def _measured_length(self) -> str | None:
        """``X`` of ``--steps-per-epoch 'len(X)'`` (None for any other expression)."""
        assert self.steps_per_epoch is not None
        length = cst.parse_expression(self.steps_per_epoch)
        if (
            isinstance(length, cst.Call)
            and isinstance(length.func, cst.Name)
            and length.func.value == "len"
            and len(length.args) == 1
        ):
            return code_of(length.args[0].value).strip()
        return None

    def _iterated_problem(
        self,
        call: cst.Call,
        loop: cst.For,
        name: str,
        fold: cst.CSTNode,
        function: cst.FunctionDef,
    ) -> str | None:
        """With ``--steps-per-epoch 'len(X)'``: why ``loop`` may not run ``len(X)`` times (it
        iterates neither the parameter ``call`` binds ``X`` to, never rebound in ``function``
        (the called function or method), nor ``enumerate()`` of it)."""
        measured = self._measured_length()
        if measured is None:
            return None  # a number or another expression: the user's count of updates
        passed = [a for a in call.args if code_of(a.value).strip() == measured]
        param = None
        if len(passed) == 1:
            param = self.resolver.local_parameter(call, passed[0])
            if param is None and _is_self_call(call):  # `self.train_epoch(loader)`
                param = _method_parameter(function, call, passed[0])
        if param is not None and self._parameter_rebound(param):
            param = None  # `loader = loader[:10]` in it: not the loader measured
        if param is not None and not self._same_binding(passed[0].value, fold):
            return (
                f"--steps-per-epoch ({self.steps_per_epoch}) is evaluated where the schedule "
                f"is built, where `{measured}` is not the one {name} is called with"
            )
        iterated = loop.iter
        if (
            isinstance(iterated, cst.Call)
            and code_of(iterated.func).strip() == "enumerate"
            and iterated.args
        ):
            iterated = iterated.args[0].value
        shown = code_of(iterated).strip()
        if param is not None and shown == param.name.value:
            return None  # `train(train_loader, ...)` iterating its parameter
        if shown == measured and measured.startswith("self.") and _is_self_call(call):
            return None  # `self.train_epoch()` iterating `self.train_loader`
        if shown == measured and self._one_binding(iterated, fold):
            return None  # `train()` iterating the module's `loader`, bound once
        return (
            f"the batch loop of {name} iterates `{shown}`, which is not provably `{measured}` "
            f"of --steps-per-epoch ({self.steps_per_epoch})"
        )

    def _parameter_rebound(self, param: cst.Param) -> bool:
        """Whether ``param`` is assigned in its function (or declared shared there)."""
        scope = self.resolver.scopes.get(param)
        if scope is None:
            return True
        return any(a.node is not param for a in scope.assignments[param.name.value])

    def _same_binding(self, name: cst.BaseExpression, other: cst.CSTNode) -> bool:
        """Whether the Name ``name`` means the same bindings where ``other`` is (``loader``
        of the epoch loop's call and of the scheduler's construction; none in both: the same
        global)."""
        here, there = self.resolver.scopes.get(name), self.resolver.scopes.get(other)
        if not isinstance(name, cst.Name) or here is None or there is None:
            return False
        return set(here[name.value]) == set(there[name.value])

    def _one_binding(self, name: cst.BaseExpression, other: cst.CSTNode) -> bool:
        """Whether the Name ``name`` means, where it is and where ``other`` is, the one
        binding of it (``loader = ...`` once at module level, read in both places)."""
        here, there = self.resolver.scopes.get(name), self.resolver.scopes.get(other)
        if not isinstance(name, cst.Name) or here is None or there is None:
            return False
        bindings = [a for a in here[name.value] if isinstance(a, Assignment)]
        return len(bindings) == 1 and set(here[name.value]) == set(there[name.value])

    def _handed_per_epoch(self, schedule: SchedulePlan, step: Site) -> str | None:
        """Where the scheduler steps once per epoch after handing its optimizer to a function
        of another file, or None. For a target that writes the lr where torch steps the
        scheduler (``writes_epoch_lr``, no --steps-per-epoch: exact however often the function
        steps the optimizer), or with --steps-per-epoch (then one function, and why it may not
        step the optimizer once per batch is kept for ``_batch_loop_problem``:
        ``CrossFile.batch_loop_problem``): the step directly in its loop, every use of the
        optimizer in the loop an argument of a direct call before it to a function every call
        site in the repository hands a translated optimizer and that only steps and zeroes it
        (``CrossFile.hand_over``), the scheduler given to none of them."""
        optimizer, scheduler = schedule.optimizer.target, schedule.outer.target
        loops, cross_file = step.loops, self.resolver.cross_file
        flagged = self.steps_per_epoch is not None
        if cross_file is None:
            return None
        if not loops or step.controls[-1] is not loops[-1] or optimizer is None:
            return None
        text, body = code_of(optimizer).strip(), loops[-1].body.body  # type: ignore[attr-defined]
        harmless = _method_calls_other_than(body, text, self.step_methods)
        handed = [s for s in body if _mentions(s, text) and s not in harmless]
        for statement in handed:
            call = _direct_call(statement)
            if call is None or body.index(statement) > step.index:
                return None
            if scheduler is not None and _mentions(call, code_of(scheduler).strip()):
                return None  # the function may step the scheduler too
            arguments = [a for a in call.args if _mentions(a, text)]
            callee = self.resolver.called_function(call.func)
            if callee is None or any(code_of(a.value).strip() != text for a in arguments):
                return None
            facts = [cross_file.hand_over(callee, call, a) for a in arguments]
            if not arguments or any(f is None or f[0] is None for f in facts):
                return None
            if flagged:
                measured = self._measured_length()
                problem = cross_file.batch_loop_problem(callee, call, arguments[0], measured)
                problem = problem or self._handed_elsewhere(call, schedule)
                self._handed_problems[id(step.call)] = problem
        if not handed or (flagged and len(handed) != 1):
            return None
        names = ", ".join(f"{code_of(_direct_call(h).func).strip()}()" for h in handed)  # type: ignore[union-attr]
        return (
            f"{self._place(step.statement)} {_function_name(step)} steps it after handing the "
            f"optimizer to {names} of another file, once per epoch"
        )

    def _unseen_updates(self, schedule: SchedulePlan, steps: list[Site]) -> str:
        """Why the optimizer's step() is not found: the calls the optimizer is handed to in
        the scheduler's loop (``train_one_epoch(model, opt, loader)``), before it (or, when
        none is, after it), each a function of this file (where) or not."""
        optimizer = schedule.optimizer.target
        handed: dict[bool, list[str]] = {True: [], False: []}  # before the step: the calls
        here = False  # a call of a function of this file: its step() is in this file
        for step in steps:
            loops = step.loops
            if not loops or step.controls[-1] is not loops[-1] or optimizer is None:
                continue
            body = loops[-1].body.body  # type: ignore[attr-defined]
            for index, statement in enumerate(body):
                call = _direct_call(statement)
                text = code_of(optimizer).strip()
                if index == step.index or call is None:
                    continue
                if _arguments_mention(call, text):
                    name = code_of(call.func).strip()
                    local = self._local_definition(call)
                    here = here or local is not None
                    shown = f" (defined at {self._place(local)})" if local is not None else ""
                    handed[index < step.index].append(
                        f"{name}() at {self._place(statement)}{shown}"
                    )
        if not handed[True] and not handed[False]:
            return ", and the optimizer's step() is not in this file"
        where = (
            "is not proved to run a known number of times per epoch"
            if here
            else "is not in this file"
        )
        when, calls = ("before", handed[True]) if handed[True] else ("after", handed[False])
        return (
            f", and the optimizer's step() {where}: {when} it, the loop hands the "
            f"optimizer to {', '.join(calls)}, which may step it any number of times"
        )

    def _local_definition(self, call: cst.Call) -> cst.FunctionDef | None:
        """The function of this file ``call`` calls by its name (bound once, to a ``def``)."""
        func = call.func
        scope = self.resolver.scopes.get(func)
        if not isinstance(func, cst.Name) or scope is None:
            return None
        bindings = [a for a in scope[func.value] if isinstance(a, Assignment)]
        if len(bindings) != 1 or not isinstance(bindings[0].node, cst.FunctionDef):
            return None
        return bindings[0].node

    def _where_it_goes(self, scheduler: Site) -> str | None:
        """Where a scheduler leaves this file's view: the first ``return`` or call argument
        that mentions it (``return opt, sched``, ``Trainer(model, opt, sched)``)."""
        if scheduler.target is None:
            return None
        if self._exits is None:  # one walk of the module, for the first scheduler that asks
            self._exits = Exits(self.module)
        text = code_of(scheduler.target).strip()
        places = [self._exit_words(text, node) for node in self._exits.of(text)[:2]]
        return "; ".join(places) or None

    def _exit_words(self, text: str, place: cst.Return | cst.Call) -> str:
        """``text`` is returned at, or passed to a call at, ``place``."""
        if isinstance(place, cst.Return):
            return f"`{text}` is returned at {self._place(place)}"
        return f"`{text}` is passed to {_short(place.func, 40)}() at {self._place(place)}"

    def _origin(self, site: Site) -> str | None:
        """Where the scheduler's optimizer argument comes from, when it is a name or ``self.x``
        of this file: a parameter, or the assignments of it."""
        argument = _optimizer_argument(site)
        if argument is None or not isinstance(argument, (cst.Name, cst.Attribute)):
            return None
        bindings = self.resolver.receiver_bindings(argument, site.enclosing_class)
        if not bindings:
            return None
        text = code_of(argument).strip()
        places = []
        for binding in bindings[:3]:
            node = binding.node
            function = self._parameter_function(node)
            if function is not None:
                places.append(
                    f"a parameter of {function} ({self._place(node)})"
                    + self._factory_calls_note(site, function)
                )
            else:
                value = binding.value
                shown = f" from `{_short(value)}`" if value is not None else ""
                places.append(f"assigned at {self._place(node)}{shown}")
        more = f" and {len(bindings) - 3} more" if len(bindings) > 3 else ""
        return f"`{text}` is " + ", ".join(places) + more

    def _factory_calls_note(self, site: Site, function: str) -> str:
        """Why a factory of the scheduler was not followed to its caller: called several
        times, or with more than one ``return`` (``analysis/factories.py``)."""
        definition = site.function
        if not isinstance(definition, cst.FunctionDef) or f"{definition.name.value}()" != function:
            return ""
        calls = _calls_named(self.module, definition.name.value)
        places = ", ".join(self._place(call) for call in calls[:3])
        if len(calls) > 1:
            return f", called {len(calls)} times ({places}): each call may pass another optimizer"
        returns = returns_of(definition)
        if len(calls) == 1 and len(returns) > 1:
            lines = ", ".join(self._place(node) for node in returns[:3])
            return f", called at {places}, returns on {len(returns)} paths ({lines})"
        at_module_level = any(statement is definition for statement in self.module.body)
        return self._other_files_note(definition) if not calls and at_module_level else ""

    def _other_files_note(self, definition: cst.FunctionDef) -> str:
        """For a scheduler factory called only from other files: where, and that each such
        call is translated in place of this scheduler where it folds (``CrossFile.factory_of``),
        so this torch scheduler stays for the calls that do not."""
        cross = self.resolver.cross_file
        places = cross.factory_call_places(definition.name.value) if cross is not None else []
        if not places and cross is not None and not cross.repository_calls(definition.name.value):
            return (
                ", which no file of this repository calls (an exported function: the optimizer "
                "its callers pass is not known here)"
            )
        if not places:
            return ""
        shown = ", ".join(places[:3]) + (f" and {len(places) - 3} more" if len(places) > 3 else "")
        return (
            f", called from other files ({shown}), where the call is translated in place of this "
            "scheduler when it folds into the caller's optimizer; this one stays for the calls "
            "that keep torch"
        )

    def _parameter_function(self, node: cst.CSTNode) -> str | None:
        """``name()`` (or ``a lambda``) of the function ``node`` is a parameter of (a Param or
        its name), None when it is not one (``_parameter_functions``, one walk per module)."""
        if self._parameters is None:
            self._parameters = _parameter_functions(self.module)
        return self._parameters.get(id(node))

    def _place(self, node: cst.CSTNode) -> str:
        """``file.py:line`` of a node of the planned module."""
        key = self.plan.key(node)
        name = os.path.basename(self.filename) if self.filename else "this file"
        return f"{name}:{key.line}" if key is not None else name

    @staticmethod
    def _steps_after(loop_body: cst.BaseSuite, updates: int, step: int) -> bool:
        """The scheduler's statement (index ``step`` in ``loop_body``) runs after the one that
        updates (``updates``), with no ``continue``/``break``/``return``/``raise`` between."""
        between = loop_body.body[updates + 1 : step]  # type: ignore[attr-defined]
        return updates < step and not any(stepping.jumps(statement) for statement in between)

    # ------------------------------------------------------------------ clipping

    def _plan_clips(self) -> None:
        for site in (s for s in self.plan.sites if s.role == CLIP):
            if site.value_used and not self._value_from_gradients(site):
                self._refuse(site, findings.CLIP_NORM_USED)
                continue
            placed = self._placed_clip(site)
            optimizers = self._optimizers_stepped_after(placed)
            if len(optimizers) != 1:
                self._refuse(
                    site,
                    findings.CLIP_SEVERAL_OPTIMIZERS
                    if optimizers
                    else findings.CLIP_WITHOUT_OPTIMIZER,
                )
                continue
            (optimizer,) = optimizers
            if self._clips_scaled_gradients(site, placed):
                self._refuse(site, findings.CLIP_SCALED_GRADIENTS)
                continue
            if self._stepped_under_other_control(placed):
                self._refuse(site, findings.CLIP_UNDER_OTHER_CONTROL)
                continue
            varying = self._clip_values_vary(site, optimizer)
            if varying is not None:
                self._refuse(site, findings.CLIP_VALUE_VARIES, **varying)
                continue
            subset = self._subset_clip(site, optimizer)
            if subset is not None:
                self.plan.subset_clips[self.plan.key_of(site.call)] = subset
                self._subset_clip_sites.append(site)
                continue
            self.plan.clips.setdefault(self.plan.key_of(optimizer.call), []).append(site)
            self.plan.clip_target[self.plan.key_of(site.call)] = optimizer

    def _value_from_gradients(self, clip: Site) -> bool:
        """``name = clip(...)`` alone on its line, for a target that renders training steps
        (it computes the gradients, so the map's ``value`` of the call can be rendered there;
        the step's renderer checks the rest and escapes otherwise)."""
        return (
            self.region_start == "forward"
            and clip.entry is not None
            and bool(clip.entry.value)
            and isinstance(clip.target, cst.Name)
            and isinstance(clip.statement, cst.SimpleStatementLine)
            and isinstance(clip.statement.body[0], cst.Assign)
        )

    def _clip_values_vary(self, clip: Site, optimizer: Site) -> dict[str, str] | None:
        """Why the clip's arguments may not be the same at the construction as at every step
        (the values of a ``CLIP_VALUE_VARIES`` finding).

        torch evaluates ``max_norm`` at each clip call; folded into the chain, it is evaluated
        once, where the optimizer is built. That is the same value only for literals and for
        names (and attribute chains on them) bound before the construction and never changed
        after it: a name bound after the construction (a loop variable, ``max_norm = ...``), a
        call, or an attribute the file assigns may differ (or not exist yet) there.
        """
        assert clip.entry is not None
        try:
            arguments = clip.entry.signature.bind(clip.call)
        except Untranslatable:
            return None  # the clip's own hook reports the call
        construction = self._preorder().get(id(optimizer.call))
        for name, arg in arguments.items():
            if name in clip.entry.ignore:
                continue
            problem = self._varying_part(arg.value, construction)
            if problem is None:
                continue
            opt = code_of(optimizer.target).strip() if optimizer.target is not None else "it"
            return {
                "name": name,
                "value": code_of(arg.value).strip(),
                "optimizer": opt,
                "problem": problem,
            }
        return None

    def _varying_part(self, value: cst.BaseExpression, construction: int | None) -> str | None:
        """What in ``value`` may change between the construction (a preorder index) and a step."""
        try:
            literal_value(value)
            return None
        except NotALiteral:
            pass
        if isinstance(value, cst.Call) and self._tensor_literal(value):
            return None  # `torch.tensor(1.0)`: the clip's hook makes it the number
        if not is_pure(value):
            return f"`{code_of(value).strip()}` may give another value at each evaluation"
        order = self._preorder()
        for name in _names(value):
            scope = self.resolver.scopes.get(name)
            # Every assignment of the name in the scope that binds it, also those after the use
            # (libcst's referents of an access are only the earlier ones).
            bindings = [
                a.node for a in (scope[name.value] if scope else ()) if isinstance(a, Assignment)
            ]
            if not bindings and name.value not in _BUILTIN_NAMES:
                return f"`{name.value}` is not bound where the optimizer is built"
            for binding in bindings:
                position = order.get(id(binding))
                if construction is None or position is None or position > construction:
                    return f"`{name.value}` is assigned after the optimizer is built"
        stored = self._stored_paths()
        for path in _paths(value):
            if any(_overlaps(path, other) for other in stored):
                return f"`{path}` is assigned in this file, so it may change after that"
        return self._changed_otherwise(value)

    def _changed_otherwise(self, value: cst.BaseExpression) -> str | None:
        """How an attribute or subscript ``value`` reads may change other than by a store of
        its own text: a store of the same key through another name (``c = args; c.clip =
        3``), the object holding it bound to another name or put in a container (``c = cfg``,
        then ``c.update(clip=3)``), a method call on it (``cfg.update(clip=3)``), the object
        handed to a function (``adjust(args)``, which may be of another file; not a builtin
        that only reads it, ``print(args)``), anywhere in the file."""
        for node in _path_nodes(value):
            path = " ".join(code_of(node).split())
            key = _last_key(node)
            for target in _store_targets(self.module):
                if key is not None and _last_key(target) == key:
                    shown = " ".join(code_of(target).split())
                    return f"`{path}` may be assigned through another name (`{shown}`)"
            holders = _holders(node)
            alias = aliasing(self.module, holders)
            if alias is not None:
                shown = " ".join(code_of(alias).split())
                return f"`{path}` may change through another name (`{shown}`)"
            for call in _walk_calls(self.module):
                if _changes_holder(call, holders):
                    shown = " ".join(code_of(call).split())
                    return f"`{shown}` may change `{path}`"
        return None

    def _tensor_literal(self, call: cst.Call) -> bool:
        """``torch.tensor(<literal>, ...)``: a tensor of a constant (the map's tensor literals)."""
        literals = self.resolver.map.tensor_values.literals
        if not call.args or not any(n in literals for n in self.resolver.imported_names(call.func)):
            return False
        try:
            literal_value(call.args[0].value)
        except NotALiteral:
            return False
        return True

    def _preorder(self) -> dict[int, int]:
        """Source order of every node (by id), computed once per file that clips."""
        if self._order is None:
            order: dict[int, int] = {}

            class _Number(cst.CSTVisitor):
                def on_visit(self, node: cst.CSTNode) -> bool:
                    order[id(node)] = len(order)
                    return True

            cst_walk.visit(self.module, _Number())
            self._order = order
        return self._order

    def _stored_paths(self) -> set[str]:
        """Attribute and subscript targets the module assigns (``args.clip = ...``)."""
        if self._stores is None:
            self._stores = _store_paths(self.module)
        return self._stores

    def _subset_clip(self, clip: Site, optimizer: Site) -> SubsetClip | None:
        """A ``SubsetClip`` when the clip's parameters are not provably the optimizer's."""
        spec = self.resolver.map.parameters
        try:
            clipped = parameters_argument(clip.entry, clip.call, spec)  # type: ignore[arg-type]
            trained = parameters_argument(optimizer.entry, optimizer.call, spec)  # type: ignore[arg-type]
        except Untranslatable:
            return None  # the clip's or the optimizer's own hook reports the call
        clip_set = select(clipped, self._names(clip), spec)
        trained_set = select(trained, self._names(optimizer), spec)
        if self._same_model(clipped, clip, trained, optimizer):
            return None
        if clip_set.key == trained_set.key and self._same_names(clipped, clip, trained, optimizer):
            return None
        opt = code_of(optimizer.target).strip() if optimizer.target is not None else "the optimizer"
        shown = " ".join(code_of(clipped).split())
        trains = " ".join(code_of(trained).split())
        finding = Finding(
            findings.CLIP_SUBSET, {"clipped": shown, "optimizer": opt, "trained": trains}
        )
        return SubsetClip(optimizer, shown, self.render(finding).reason)

    def _same_model(
        self, clipped: cst.BaseExpression, clip: Site, trained: cst.BaseExpression, optimizer: Site
    ) -> bool:
        """``clip(self.model.parameters())`` and ``Opt(model.parameters())``: both every
        parameter of one model object, the program proves (``self.model = model`` the one
        store of ``.model`` in the file, ``model`` bound once where both read it)."""
        methods = self.resolver.map.parameters.module_methods
        first, second = _parameters_of(clipped, methods), _parameters_of(trained, methods)
        if first is None or second is None or first[1] != second[1]:
            return False
        origin = self._model_origin(first[0], clip.enclosing_class)
        return origin is not None and origin is self._model_origin(
            second[0], optimizer.enclosing_class
        )

    def _same_names(
        self, clipped: cst.BaseExpression, clip: Site, trained: cst.BaseExpression, optimizer: Site
    ) -> bool:
        """Whether the names in the clip's parameters and the optimizer's (written the same)
        name the same objects: in one function; else only module-level names and ``self`` of
        one class (a local name of another function, a builder's ``model``, may be another
        object)."""
        if clip.function is optimizer.function:
            return True
        same_class = clip.enclosing_class is optimizer.enclosing_class
        for name in [*_names(clipped), *_names(trained)]:
            if name.value == "self" and same_class and clip.enclosing_class is not None:
                continue
            scope = self.resolver.scopes.get(name)
            if scope is None or not all(
                isinstance(a.scope, (GlobalScope, BuiltinScope)) for a in scope[name.value]
            ):
                return False
        return True

    def _model_origin(
        self, model: cst.BaseExpression, enclosing: cst.ClassDef | None, depth: int = 0
    ) -> cst.CSTNode | None:
        """The one binding node (a parameter, an assignment target) the object ``model``
        names comes from: a Name bound once in its scope, or ``self.x`` stored once in the
        file, from such a Name; None when it is not certain."""
        if depth > 4:
            return None
        if isinstance(model, cst.Name):
            scope = self.resolver.scopes.get(model)
            bindings = self.resolver.binding_nodes(model)
            if scope is None or len(bindings) != 1 or len(scope.assignments[model.value]) != 1:
                return None
            value = self.resolver.bindings.get(bindings[0])
            if isinstance(bindings[0], cst.Param):  # a builder's: what its one call passes
                value = self.resolver.builders().passed(bindings[0])
                value = value or self.resolver.constructed_with(bindings[0])
            if isinstance(value, cst.Name):  # `m = model`: the same object
                return self._model_origin(value, enclosing, depth + 1)
            return bindings[0]
        if not self.resolver.is_self_attribute(model, enclosing):
            return None
        assert isinstance(model, cst.Attribute)
        if self._attribute_writes(model.attr.value) != 1:
            return None
        value = self.bound_value(model, enclosing)
        return (
            self._model_origin(value, enclosing, depth + 1) if isinstance(value, cst.Name) else None
        )

    def _attribute_writes(self, attribute: str) -> int:
        """How many places in the file may set ``<anything>.<attribute>``: stores and
        deletions of the attribute, ``setattr`` calls, and definitions of the name (a method
        or property, a class-level assignment); the number is only 1 for one store."""
        counted = 0

        class _Writes(_AttributeStores):
            def stored(self, target: cst.Attribute) -> None:
                nonlocal counted
                counted += 1

            def visit_Name(self, node: cst.Name) -> None:
                nonlocal counted
                if node.value in ("setattr", "__dict__", "vars"):
                    counted += 2

            def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
                nonlocal counted
                counted += 2 if node.name.value == attribute else 0

        cst_walk.visit(self.module, _Writes(attribute))
        return counted

    def _names(self, site: Site) -> Names:
        qualify = self.resolver.imported_names
        spec = self.resolver.map.parameters
        return Names(
            lambda node: self.bound_value(node, site.enclosing_class),
            qualify,
            is_module_class(site.enclosing_class, qualify, spec),
        )

    def _clips_scaled_gradients(self, clip: Site, placed: Site) -> bool:
        """``scaler.step(opt)`` follows ``clip`` (in its function; ``placed``: where it runs,
        ``_placed_clip``) and no statement before ``clip`` in its block calls
        ``<scaler>.unscale_(...)``."""
        scaled = any(
            s.role == SCALER_STEP
            and self._is_step(s)
            and s.function is clip.function
            and _follows(placed, s)
            for s in self.plan.sites
        )
        if not scaled:
            return False
        before = self.collector.blocks[clip.block].body[: clip.index]  # type: ignore[attr-defined]
        unscale = self.scaler_methods.unscale
        return not any(unscale and _calls_a_method(statement, (unscale,)) for statement in before)

    def _stepped_under_other_control(self, clip: Site) -> bool:
        """An optimizer step after ``clip`` (in its function) is nested in a loop or
        condition that ``clip`` is not in (``clip`` every micro-batch, step every k)."""
        return any(
            self._stepped_optimizer(step) is not None
            and step.function is clip.function
            and _follows(clip, step)
            and step.controls != clip.controls
            for step in self.plan.sites
        )

    def _placed_clip(self, clip: Site) -> Site:
        """``clip`` where it runs: for NNX, a clip in the body of an ``if`` whose test is
        always true (no ``else``) placed as that ``if`` statement (it runs every time the
        ``if`` does)."""
        guard = clip.controls[-1] if clip.controls else None
        if self.region_start != "forward" or len(clip.path) < 2 or not self._always_true(guard):
            return clip
        return replace(clip, path=clip.path[:-1], controls=clip.controls[:-1])

    def _always_true(self, node: cst.CSTNode | None) -> bool:
        """An ``if`` with no ``else`` whose test is always true (``constant_guard``)."""
        if not isinstance(node, cst.If) or node.orelse is not None:
            return False
        cross_file = self.resolver.cross_file
        elsewhere = cross_file.mentioned_elsewhere if cross_file is not None else None
        rebound = self._rebinds_globals()
        return always_true(node.test, self.resolver.scopes, self.module, elsewhere, rebound)

    def _helper_problem(self, name: cst.Name, libraries: frozenset[str]) -> str | None:
        """``Plan.helper_problem``: ``loss_helpers.helper_problem`` with this file's facts."""
        cross_file = self.resolver.cross_file
        elsewhere = cross_file.mentioned_elsewhere if cross_file is not None else None
        rebound = self._rebinds_globals()
        facts = FileFacts(
            module=self.module,
            scopes=self.resolver.scopes,
            qualify=self.resolver.imported_names,
            mentioned_elsewhere=elsewhere,
            globals_rebound=rebound,
            in_place_suffix=self.resolver.map.in_place_suffix,
            in_place_keywords=self.resolver.map.in_place_keywords,
            array_namesakes=self.resolver.map.array_namesakes,
            number_constant=lambda read: number_constant(
                read, self.resolver.scopes, self.module, elsewhere, rebound
            ),
        )
        return helper_problem(name, libraries, facts)

    def _global_shared(self, name: str) -> bool:
        """``Plan.global_shared``: another file names ``name``, or the file rebinds its globals
        by name."""
        cross_file = self.resolver.cross_file
        elsewhere = cross_file is not None and cross_file.mentioned_elsewhere(name)
        return elsewhere or self._rebinds_globals()

    def _rebinds_globals(self) -> bool:
        """Whether the module may rebind its globals by name (``constant_guard``), computed
        once per file, at its first always-true ``if`` or ``range`` loop question."""
        if self._globals_rebound is None:
            self._globals_rebound = rebinds_globals(self.module)
        return self._globals_rebound

    def _optimizers_stepped_after(self, site: Site) -> list[Site]:
        found: dict[int, Site] = {}
        for step in self.plan.sites:
            stepped = self._stepped_optimizer(step)
            if stepped is None or step.function is not site.function:
                continue
            if not _follows(site, step):
                continue
            constructor = self._constructor_site(stepped, step)
            if constructor is None:
                return []
            found[id(constructor.call)] = constructor
        return list(found.values())

    # ------------------------------------------------------------------ zero_grad

    def _plan_zero_grads(self) -> None:
        """``opt.zero_grad()`` goes (JAX computes fresh gradients) when one of the optimizer's
        zero_grad() calls runs as often as its step(): under the same loops and conditions as
        one of them. Else torch accumulates gradients in .grad over several steps, which has to
        be ported: its zero_grad() calls escape."""
        by_optimizer: dict[int, list[Site]] = {}
        for site in (s for s in self.plan.sites if s.role == ZERO_GRAD and s.receiver):
            constructor = self._constructor_site(site.receiver, site)  # type: ignore[arg-type]
            if constructor is not None:
                by_optimizer.setdefault(id(constructor.call), []).append(site)
        for key, zero_grads in by_optimizer.items():
            steps = [self._counted(s) for s in self._optimizer_step_sites(self.by_call[key])]
            if not steps or not self.collector.backwards:
                continue  # no gradients computed in this file to accumulate
            runs = {id(z): self._zero_grad_runs(z) for z in zero_grads}
            if any(
                s.controls == r.controls for s in steps for z in zero_grads for r in runs[id(z)]
            ):
                for site in zero_grads:
                    if any(_zeroes_between_updates(r, steps) for r in runs[id(site)]):
                        self._refuse(site, findings.ZERO_GRAD_BETWEEN_UPDATES)
                continue
            for site in zero_grads:
                self._zero_grad_escape(site)

    def _takes_metric(self, step: Site) -> bool:
        """Whether a schedule that joins the chain (ReduceLROnPlateau) is attached to the
        optimizer ``step`` steps (also through a parameter every caller passes it to)."""
        stepped = self._stepped_optimizer(step)
        values = self.resolver.reaching_values(stepped, step.enclosing_class) if stepped else None
        for value in values or []:
            site = self.by_call.get(id(value))
            schedule = self.plan.schedules.get(self.plan.key_of(site.call)) if site else None
            entry = schedule.outer.entry if schedule is not None else None
            if entry is not None and entry.attaches_to_chain and schedule.written is None:  # type: ignore[union-attr]
                return True  # written where it steps (NNX): the update takes no metric
        return False

    def _zeroed_with(self, step: Site) -> bool:
        """Whether a zero_grad() of the optimizer ``step`` steps runs under the same loops and
        conditions as the step (the same constructor, or the same name in the same function)."""
        stepped = self._stepped_optimizer(step)
        if stepped is None:
            return False
        constructor = self._constructor_site(stepped, step)
        controls = self._counted(step).controls
        for site in (s for s in self.plan.sites if s.role == ZERO_GRAD and s.receiver):
            if all(run.controls != controls for run in self._zero_grad_runs(site)):
                continue
            if constructor is not None:
                if self._constructor_site(site.receiver, site) is constructor:  # type: ignore[arg-type]
                    return True
            elif code_of(site.receiver).strip() == code_of(stepped).strip():  # type: ignore[arg-type]
                return True
        return False

    def _counted(self, step: Site) -> Site:
        """``step`` as the zero_grad() calls count its controls: for NNX, without the ``if``
        (no ``else``) holding the step and, before it, the one backward pass of its body
        (``if phase == 'train':``, a GAN's ``if i % n_critic == 0:``): a zero_grad() each
        batch zeroes before each of those backward passes, as one under the ``if`` would.
        A backward pass between that zero_grad() and the ``if`` is the NNX step hook's to
        refuse (``_check_one_backward``: unless what it leaves is zeroed before the step)."""
        branch = step.controls[-1] if step.controls else None
        if self.region_start != "forward" or not isinstance(branch, cst.If) or branch.orelse:
            return step
        body = list(branch.body.body)  # type: ignore[attr-defined]
        index = next((i for i, s in enumerate(body) if s is step.statement), None)
        if index is None:
            return step
        backwards = [s for s in body if _holds_call_of(s, self.backward_methods)]
        if len(backwards) != 1 or not any(s is backwards[0] for s in body[:index]):
            return step
        zeroes = self.resolver.map.methods_with_role(ZERO_GRAD)
        if any(_holds_call_of(s, zeroes) for s in body):
            return step  # zeroed under the `if` itself: counted with it
        if not _lone_backward(backwards[0], self.backward_methods):
            return step
        return replace(step, controls=step.controls[:-1])

    def _zero_grad_escape(self, site: Site) -> None:
        self._refuse(site, findings.ZERO_GRAD_UNDER_OTHER_CONTROL)

    def _zero_grad_runs(self, site: Site) -> list[Site]:
        """Where the zero_grad() ``site`` runs: itself, or for one in the body of a function
        of the file that only zeroes gradients (``reset_grad()``), the same call at each
        line calling that function (its statement, path and controls)."""
        function = site.function
        if not isinstance(function, cst.FunctionDef) or len(site.controls) != 1:
            return [site]
        zero = next(
            (z for z in self._zero_function_map().values() if z.definition is function), None
        )
        if zero is None or not any(call is site.call for call in zero.zeroes):
            return [site]
        return [self._run_at(site, call) for call in zero.calls]

    def _run_at(self, site: Site, statement: cst.SimpleStatementLine) -> Site:
        """``site`` as if it were the line ``statement`` (a call of the function holding it)."""
        parents = self._parent_map()
        path: list[tuple[int, int]] = []
        controls: list[cst.CSTNode] = []
        node: cst.CSTNode = statement
        while node in parents:
            parent = parents[node]
            if isinstance(parent, (cst.Module, cst.IndentedBlock)):
                index = next(i for i, s in enumerate(parent.body) if s is node)
                path.append((id(parent), index))
            if _is_control(parent):
                controls.append(parent)
            node = parent
        return replace(
            site,
            statement=statement,
            path=tuple(reversed(path)),
            controls=tuple(reversed(controls)),
        )

    def _zero_function_map(self) -> dict[int, ZeroFunction]:
        """The file's functions that only zero gradients, by the id of each line calling one
        (``analysis/zero_functions.py``), found once per file."""
        if self._zero_functions is None:
            methods = self.resolver.map.methods_with_role(ZERO_GRAD)
            self._zero_functions = zero_functions(
                self.module,
                self.resolver.scopes,
                methods | self.resolver.map.module_zero_grad_methods,
                lambda node: self._parent_map().get(node),
                self._global_shared,
            )
        return self._zero_functions

    def _zero_function_at(self, statement: cst.CSTNode) -> ZeroFunction | None:
        """The zero function the line ``statement`` calls (``reset_grad()``), or None."""
        return self._zero_function_map().get(id(statement))

    def _zero_call(self, statement: cst.CSTNode) -> tuple[cst.Call, ...] | None:
        """``Plan.zero_call``: the zero calls a line ``reset_grad()`` runs, when none of them
        escapes (each is then one the target drops or keeps as the plan says)."""
        zero = self._zero_function_at(statement)
        if zero is None or any(self.plan.key(call) in self.plan.escapes for call in zero.zeroes):
            return None
        return zero.zeroes

    # ------------------------------------------------------------------ frozen parameters

    def _plan_frozen_parameters(self) -> None:
        """Every optimizer of a file that freezes parameters, or imports a file of the
        repository that does (``CrossFile.imported_freeze``), escapes: torch skips those
        without a gradient, a functional optimizer updates every leaf it is given."""
        spec = self.resolver.map.parameters
        constructors = [s for s in self.plan.sites if s.role == CONSTRUCTOR]
        if not constructors:
            return
        freezing = _first_freeze(self.module, spec, self.resolver.called_function)
        kind = findings.FROZEN_PARAMETERS
        cross_file = self.resolver.cross_file
        if freezing is None and cross_file is not None:
            freezing = cross_file.imported_freeze(spec)
            kind = findings.FROZEN_IN_IMPORTED_FILE
        if freezing is None:
            return
        for site in constructors:
            self._refuse(site, kind, freezing=str(freezing))

    def _plan_changed_models(self) -> None:
        """Every optimizer whose model may change after it took the model's parameters
        escapes: torch trains the tensors it was given, a functional optimizer every leaf
        it is handed (``analysis/changed_models.py``)."""
        spec = self.resolver.map.parameters
        for site in (s for s in self.plan.sites if s.role == CONSTRUCTOR and s.entry):
            try:
                argument = parameters_argument(site.entry, site.call, spec)  # type: ignore[arg-type]
            except Untranslatable:
                continue
            reads = self._reads(site.enclosing_class)
            calls = parameter_calls(argument, reads, spec)
            owner = site.function or self.module
            change = calls and changed_after(owner, calls, reads, spec)  # type: ignore[arg-type]
            if calls and not change and site.enclosing_class and isinstance(owner, cst.FunctionDef):
                change = changed_by_other_methods(site.enclosing_class, owner, calls, reads, spec)
            if change:
                self._refuse(site, findings.MODEL_CHANGED, change=change)

    def _reads(self, enclosing: cst.ClassDef | None) -> Reads:
        """This file's name resolution for ``changed_models``, in a method of ``enclosing``."""
        return Reads(
            lambda node: self.bound_value(node, enclosing),
            self.resolver.called_function,
            self._handed_parameter,
            self._imported_change,
            self.resolver.local_class,
            self._imported_method_change,
            self._imported_own_method_change,
            self.resolver.map.modules.self_methods,
        )

    def _model_changed_after(
        self, call: cst.Call, owner: cst.FunctionDef | cst.Module, enclosing: cst.ClassDef | None
    ) -> str | None:
        """``Plan.model_changed_after``: ``changed_models.changed_after`` for ``call`` in
        ``owner`` (its function, or the module)."""
        spec = self.resolver.map.parameters
        return changed_after(owner, [(call, call)], self._reads(enclosing), spec)

    def _built_by_method(self, call: cst.Call) -> BuiltByMethod | str:
        """``Plan.built_by_method``: ``built_by_method.built_by_method`` with this file's name
        resolution (the file's parents are mapped at the first call asking; one answer per
        call)."""
        if id(call) not in self._built_by_methods:
            facts = MethodFileFacts(
                self.module,
                self._parent_map(),
                self.resolver.reaching_values,
                self._model_changed_after,
            )
            self._built_by_methods[id(call)] = built_by_method(call, facts)
        return self._built_by_methods[id(call)]

    def _method_caller(self, constructor: cst.Call) -> BuiltByMethod | None:
        """``Plan.method_caller``: the fact of the file's one call of the method holding
        ``constructor`` (``built_by_method.method_caller``)."""
        return method_caller(constructor, self._parent_map(), self.module, self._built_by_method)

    def _parent_map(self) -> dict[cst.CSTNode, cst.CSTNode]:
        if self._parents is None:
            self._parents = parent_map(self.module)
        return self._parents

    def _handed_parameter(
        self, call: cst.Call, argument: cst.Arg
    ) -> tuple[cst.FunctionDef, str] | None:
        """The function of this file and the name of its parameter ``argument`` of ``call``
        binds (``Resolver.local_parameter``), or None."""
        param = self.resolver.local_parameter(call, argument)
        function = getattr(self.resolver.scopes.get(param), "node", None) if param else None
        if param is None or not isinstance(function, cst.FunctionDef):
            return None
        return function, param.name.value

    def _imported_change(self, call: cst.Call, argument: cst.Arg) -> str | None:
        """The change a function of another file of the repository ``call`` calls makes to
        the parameter ``argument`` binds (``CrossFile.imported_change``), or None."""
        cross_file = self.resolver.cross_file
        called = self.resolver.called_function(call.func)
        if cross_file is None or called is None:
            return None
        return cross_file.imported_change(called, call, argument, self.resolver.map.parameters)

    def _imported_method_change(self, held: Held) -> str | None:
        """The change the method ``held.call`` of an instance of another file's class makes
        to the models it holds (``CrossFile.imported_method_change``), or None."""
        cross_file = self.resolver.cross_file
        called = self.resolver.called_function(held.construction.func)
        if cross_file is None or called is None:
            return None
        return cross_file.imported_method_change(called, held, self.resolver.map.parameters)

    def _imported_own_method_change(self, qualified: str, method: str) -> str | None:
        """The change the method ``method`` of a model built by the class ``qualified`` of
        another file makes to the model (``CrossFile.imported_own_method_change``), or None."""
        cross_file = self.resolver.cross_file
        if cross_file is None:
            return None
        spec = self.resolver.map.parameters
        return cross_file.imported_own_method_change(qualified, method, spec)

    # ------------------------------------------------------------------ torch-only uses

    def _plan_torch_only_uses(self) -> None:
        """Find where a translated optimizer (or scheduler) is still used as the torch object:
        handed to another library (``accelerator.prepare(model, opt)``), pickled, type-checked,
        a member the translation lacks... (see ``analysis/torch_only.py``)."""
        roles = frozenset(r for r in (CONSTRUCTOR, SCHEDULER) if self.active(r))
        finder = TorchOnlyFinder(self, roles)
        self.plan.torch_only = finder.find()
        self._torch_only_statements = finder.statements

    # ------------------------------------------------------------------ training-step regions

    def _plan_regions(self) -> None:
        anchors = [s for s in self.plan.sites if s.role in STEPS and self._is_step(s)]
        for anchor in anchors:
            region = self._region(anchor)
            if region is None:
                continue
            taken = [s for s in region.statements if self.plan.region_at(s) is not None]
            if taken and not self._zero_handed_over(region, taken):
                continue
            self._add_region(region)

    def _add_region(self, region: Region) -> None:
        self.plan.regions.append(region)
        for statement in region.statements:
            self.plan.region_of[self.plan.key_of(statement)] = region

    def _zero_handed_over(self, region: Region, taken: list[cst.BaseStatement]) -> bool:
        """``netG.zero_grad()`` right after ``optimizerD.step()``, at the head of the
        generator's step (DCGAN): the earlier region took it as the module zero after its step;
        it belongs to ``region`` when the optimizer ``region`` steps is built over
        ``netG.parameters()``. Then the earlier region ends before it (True)."""
        zero = region.statements[0]
        earlier = self.plan.region_at(zero)
        if len(taken) != 1 or taken[0] is not zero or earlier is None:
            return False
        if earlier.statements[-1] is not zero or not self._module_zero(zero):
            return False
        receiver = region.anchor.receiver
        site = self._constructor_site(receiver, region.anchor) if receiver is not None else None
        if site is None or site.entry is None:
            return False
        spec = self.resolver.map.parameters
        try:
            trained = parameters_argument(site.entry, site.call, spec)
        except Untranslatable:
            return False
        model = _parameters_of(trained, spec.module_methods)
        call = zero.body[0].value  # type: ignore[attr-defined]
        if model is None or code_of(model[0]).strip() != code_of(call.func.value).strip():
            return False
        self.plan.regions.remove(earlier)
        shorter = replace(earlier, last=earlier.last - 1, statements=earlier.statements[:-1])
        del self.plan.region_of[self.plan.key_of(zero)]
        self._add_region(shorter)
        return True

    def _region(self, anchor: Site) -> Region | None:
        """The backward pass before the step, found from the step's block outwards (but not
        beyond the function holding the step); the region runs from it to the step."""
        function = anchor.function
        stop_block = id(function.body) if isinstance(function, cst.FunctionDef) else None
        for depth in range(len(anchor.path) - 1, -1, -1):
            block, index = anchor.path[depth]
            backward = self._backward_before(anchor, depth)
            if backward is not None:
                body = self.collector.blocks[block].body  # type: ignore[attr-defined]
                first = backward.path[depth][1]
                if self.region_start == "forward":
                    first = self._forward_start(body, first)
                last = index
                if last + 1 < len(body) and self._is_scaler_update(body[last + 1], anchor):
                    last += 1
                if self.region_start == "forward" and last + 1 < len(body):
                    last += self._module_zero(body[last + 1])  # `model.zero_grad()` after it
                gated = any(
                    isinstance(c, cst.If) for c in anchor.controls if c not in backward.controls
                )
                branch = self._branch_region(anchor, backward, depth, first, last)
                if branch is not None:
                    return branch
                return Region(
                    block=block,
                    first=first,
                    last=last,
                    anchor=anchor,
                    backward=backward,
                    loss=_loss_name(backward),
                    scaler=self._scaler_name(anchor, backward),
                    gated=gated,
                    statements=list(body[first : last + 1]),
                    true_guards=self._true_guards(body[first : last + 1]),
                    nonempty_loops=self._nonempty_loops(body[first : last + 1]),
                )
            if block == stop_block or (stop_block is None and depth == 0):
                return None
        return None

    def _true_guards(self, statements: Sequence[cst.BaseStatement]) -> list[cst.If]:
        """NNX: the statements of a region that are an always-true ``if`` (``_always_true``)."""
        if self.region_start != "forward":
            return []
        return [s for s in statements if isinstance(s, cst.If) and self._always_true(s)]

    def _nonempty_loops(self, statements: Sequence[cst.BaseStatement]) -> list[cst.For]:
        """NNX: the statements of a region that are ``for x in range(k):``, ``range`` the
        builtin and ``k`` an integer literal or module constant >= 1 (``constant_guard``)."""
        if self.region_start != "forward":
            return []
        found = []
        cross_file = self.resolver.cross_file
        elsewhere = cross_file.mentioned_elsewhere if cross_file is not None else None
        for loop in (s for s in statements if isinstance(s, cst.For)):
            call = loop.iter
            if not (
                isinstance(call, cst.Call)
                and isinstance(call.func, cst.Name)
                and call.func.value == "range"
                and not self._bound_at(call.func, "range")
                and len(call.args) == 1
                and call.args[0].keyword is None
                and not call.args[0].star
            ):
                continue
            count = call.args[0].value
            rebound = self._rebinds_globals()
            if positive_count(count, self.resolver.scopes, self.module, elsewhere, rebound):
                found.append(loop)
        return found

    def _branch_region(
        self, anchor: Site, backward: Site, depth: int, first: int, last: int
    ) -> Region | None:
        """NNX (``region_start == "forward"``): the backward pass and the step, the whole body
        of an ``if`` (no ``else``) that follows the forward pass computing the loss in the
        block around it: the region is that forward pass and the ``if`` (``Region.branch``).
        The block is a function's or loop's body, or that of a
        ``with torch.set_grad_enabled(<the if's test>):``. None for any other shape."""
        if self.region_start != "forward" or first != 0 or depth != len(anchor.path) - 1:
            return None
        branch = anchor.controls[-1] if anchor.controls else None
        if not isinstance(branch, cst.If) or branch.orelse is not None or depth == 0:
            return None
        body = list(branch.body.body)  # type: ignore[attr-defined]
        if len(body) != 2 or body[0] is not backward.statement or last != 1:
            return None
        block, index = anchor.path[depth - 1]
        outer = list(self.collector.blocks[block].body)  # type: ignore[attr-defined]
        if outer[index] is not branch or not self._grad_context_agrees(block, branch):
            return None
        start = self._forward_start(outer, index)
        bound = set().union(*(_bound_names(s) for s in outer[start:index]))
        if start == index or bound & {n.value for n in _names(branch.test)}:
            return None  # the test would be evaluated before the forward pass binds it
        return Region(
            block=block,
            first=start,
            last=index,
            anchor=anchor,
            backward=backward,
            loss=_loss_name(backward),
            scaler=self._scaler_name(anchor, backward),
            gated=False,
            statements=list(outer[start : index + 1]),
            branch=branch,
        )

    def _grad_context_agrees(self, block: int, branch: cst.If) -> bool:
        """Whether the block holding ``branch`` is a loop's or function's body, or that of
        ``with torch.set_grad_enabled(X):`` (the map's ``modules: grad_contexts``) with ``X``
        the ``if``'s test as written."""
        owner = _owner_of(self.module, self.collector.blocks[block])
        if not isinstance(owner, cst.With):
            return not isinstance(owner, (cst.Try, cst.If, cst.Else))
        if len(owner.items) != 1 or not isinstance(owner.items[0].item, cst.Call):
            return False
        call = owner.items[0].item
        names = self.resolver.imported_names(call.func)
        if not set(names) & self.resolver.map.modules.grad_contexts or len(call.args) != 1:
            return False
        return code_of(call.args[0].value).strip() == code_of(branch.test).strip()

    def _forward_start(self, body: Sequence[cst.BaseStatement], first: int) -> int:
        """The first statement of the forward pass before the backward at ``body[first]``: the
        statements right before it that bind a name a later one of them reads (and the
        ``zero_grad()`` calls among them), and between those, simple statements that feed no
        later one (logging, accuracy: ``_movable``; the NNX step runs them after the gradient).
        A line of in-place calls changing a name a later one reads, and none calls (not a
        model), counts as binding it (the old DCGAN example's ``noise.data.normal_(0, 1)``
        before ``fake = netG(noise)``).
        An earlier ``l1.backward()`` right before the region, with no zero_grad() after it,
        sums its gradients into this step: it joins the region (the NNX step decides whether
        it renders the sum); so does one separated from it by assignments that call nothing of
        the map (``D_x = output.mean().item()`` between DCGAN's two backward passes)."""
        needed = {name.value for name in _names(body[first])}
        start = index = first
        zeroed = False  # a zero_grad() seen: a backward before it does not feed this step
        while index > 0:
            previous = body[index - 1]
            # (right before the region: a statement skipped in between may be another step)
            summed = (
                not zeroed
                and _lone_backward(previous, self.backward_methods)
                and all(self._records_only(s) for s in body[index:start])
            )
            changed = changed_in_place(previous, self.resolver.map.in_place_suffix)
            changed_input = (
                changed is not None
                and changed in needed
                and not any(_calls_name(s, changed) for s in body[index:first])
            )
            if _bound_names(previous) & needed or summed or changed_input:
                needed |= {name.value for name in _names(previous)}
            elif self._only_zero_grad(previous):
                zeroed = True
            else:
                if not _movable(previous) or _calls_a_method(previous, self.backward_methods):
                    break
                index -= 1
                continue  # part of the region only if a statement of the loss comes before it
            index -= 1
            start = index
        return start

    def _records_only(self, statement: cst.BaseStatement) -> bool:
        """Assignments only (``D_x = output.mean().item()``), calling no API of the map (no
        step, zero_grad or scheduler step of any optimizer) and no backward pass."""
        return (
            isinstance(statement, cst.SimpleStatementLine)
            and all(isinstance(small, (cst.Assign, cst.AnnAssign)) for small in statement.body)
            and not any(id(call) in self.by_call for call in _walk_calls(statement))
            and not _calls_a_method(statement, self.backward_methods)
        )

    def _only_zero_grad(self, statement: cst.BaseStatement) -> bool:
        """``opt.zero_grad()`` alone on its line, or a module's (``model.zero_grad()``: a
        method of the map's ``module_zero_grad_methods``; the step's hook decides whose)."""
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            return False
        expression = statement.body[0]
        if not isinstance(expression, cst.Expr) or not isinstance(expression.value, cst.Call):
            return False
        site = self.by_call.get(id(expression.value))
        if site is not None:
            return site.role == ZERO_GRAD
        return self._module_zero(statement) or self._zero_function_at(statement) is not None

    def _module_zero(self, statement: cst.BaseStatement) -> bool:
        """``model.zero_grad()`` alone on its line: a method of the map's
        ``module_zero_grad_methods`` on a name or ``self.x``, not wired to an entry."""
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            return False
        expression = statement.body[0]
        call = expression.value if isinstance(expression, cst.Expr) else None
        return (
            isinstance(call, cst.Call)
            and id(call) not in self.by_call
            and isinstance(call.func, cst.Attribute)
            and call.func.attr.value in self.resolver.map.module_zero_grad_methods
            and dotted_name(call.func.value) is not None
        )

    def _backward_before(self, anchor: Site, depth: int) -> Site | None:
        """The last ``.backward()`` at or before the anchor's statement at ``depth``."""
        block, index = anchor.path[depth]
        candidates = [
            b
            for b in self.collector.backwards
            if b.function is anchor.function
            and len(b.path) > depth
            and b.path[:depth] == anchor.path[:depth]
            and b.path[depth][0] == block
            and b.path[depth][1] <= index
        ]
        return max(candidates, key=lambda b: b.path[depth][1]) if candidates else None

    # ------------------------------------------------------------------ steps

    def _is_step(self, site: Site) -> bool:
        """A call of a step method of the map (``opt.step()``, ``scaler.step(opt)``)."""
        func = site.call.func
        return isinstance(func, cst.Attribute) and func.attr.value in self.step_methods

    def _stepped_optimizer(self, site: Site) -> cst.BaseExpression | None:
        """The optimizer a step call steps: ``opt`` in ``opt.step()`` or ``scaler.step(opt)``."""
        if not self._is_step(site):
            return None
        if site.role == STEP:
            return site.receiver
        if site.role == SCALER_STEP and site.call.args:
            return site.call.args[0].value
        return None

    def _scaler_name(self, anchor: Site, backward: Site | None) -> str | None:
        """The loss scaler of a training step: ``scaler`` of ``scaler.step(opt)`` or of
        ``scaler.scale(loss).backward()``."""
        if anchor.role == SCALER_STEP and anchor.receiver is not None:
            return code_of(anchor.receiver).strip()
        scale = self.scaler_methods.scale
        if backward is not None and isinstance(backward.receiver, cst.Call):
            func = backward.receiver.func
            if isinstance(func, cst.Attribute) and func.attr.value == scale:
                return code_of(func.value).strip()
        return None

    def _is_scaler_update(self, statement: cst.BaseStatement, anchor: Site) -> bool:
        scaler = self._scaler_name(anchor, None)
        if scaler is None:
            return False
        update = self.scaler_methods.update
        return update is not None and code_of(statement).strip().startswith(f"{scaler}.{update}(")


# ---------------------------------------------------------------------- small helpers


def _optimizer_argument(site: Site) -> cst.BaseExpression | None:
    entry = site.entry
    assert entry is not None
    try:
        bound = entry.signature.bind(site.call)
    except Untranslatable:
        return None
    argument = bound.get("optimizer")
    return argument.value if argument is not None else None


def _parameters_of(
    value: cst.BaseExpression, methods: frozenset[str]
) -> tuple[cst.BaseExpression, str] | None:
    """``(m, "parameters")`` for ``m.parameters()`` with no arguments."""
    if (
        isinstance(value, cst.Call)
        and not value.args
        and isinstance(value.func, cst.Attribute)
        and value.func.attr.value in methods
    ):
        return value.func.value, value.func.attr.value
    return None


def _elements(value: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(value, (cst.List, cst.Tuple)):
        return [e.value for e in value.elements if isinstance(e, cst.Element)]
    return []


def _combined_into(site: Site, outer: Site, components: dict[int, Site]) -> bool:
    parent = components.get(id(site.call))
    while parent is not None:
        if parent is outer:
            return True
        parent = components.get(id(parent.call))
    return False


def _first_freeze(
    module: cst.Module, spec: ParameterSpec, called: Callable[[cst.BaseExpression], str | None]
) -> str | None:
    """Source of the first ``x.requires_grad = v``, ``x.requires_grad_(v)`` or
    ``setattr(x, 'requires_grad', v)`` (the map's ``freeze_setters``, ``called`` naming the
    function; a name other than a plain string literal, ``setattr(p, name, v)``, may be it,
    unless ``x`` is ``self`` of a class based on no ``tensor_classes``) whose value is not a
    literal ``True`` (``requires_grad_()`` alone unfreezes), or of a call making parameters
    frozen (``_makes_frozen``), or None."""
    attributes, methods = spec.freeze_attributes, spec.freeze_methods
    found: list[str] = []

    def is_true(node: cst.BaseExpression) -> bool:
        return isinstance(node, cst.Name) and node.value == "True"

    class _Find(cst.CSTVisitor):
        def __init__(self) -> None:
            self.frames: list[str | None] = []  # per class/function: the `self` no tensor is

        def visit_ClassDef(self, node: cst.ClassDef) -> None:
            bases = [code_of(b.value).strip() for b in node.bases]
            tensor = any(may_be_tensor_class(b, spec.tensor_classes) for b in bases)
            self.frames.append(None if tensor else "")

        def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
            self.frames.pop()

        def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
            outer = self.frames[-1] if self.frames else None
            params = node.params.params
            static = any(code_of(d.decorator).strip() == "staticmethod" for d in node.decorators)
            if outer == "" and params and not static:  # a method of a class based on no tensor
                outer = params[0].name.value
            elif outer and any(p.name.value == outer for p in params):
                outer = None  # a nested function rebinding it
            self.frames.append(outer or None)

        def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
            self.frames.pop()

        def visit_Assign(self, node: cst.Assign) -> None:
            for target in node.targets:
                if _is_attribute(target.target, attributes) and not is_true(node.value):
                    found.append(code_of(node).strip())

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            if _is_attribute(node.target, attributes):
                found.append(code_of(node).strip())

        def visit_Call(self, node: cst.Call) -> None:
            frozen = _makes_frozen(node, spec)
            if frozen or (
                _is_attribute(node.func, methods) and node.args and not is_true(node.args[0].value)
            ):
                found.append(code_of(node).strip())
            elif len(node.args) == 3 and called(node.func) in spec.freeze_setters:
                target, name, value = (a.value for a in node.args)
                if isinstance(name, cst.SimpleString):
                    named = name.evaluated_value in attributes
                else:  # computed: may be requires_grad, unless set on an object no tensor is
                    own = self.frames[-1] if self.frames else None
                    named = not (own and isinstance(target, cst.Name) and target.value == own)
                if named and not is_true(value):
                    found.append(code_of(node).strip())

    cst_walk.visit(module, _Find())
    return found[0] if found else None


def _makes_frozen(call: cst.Call, spec: ParameterSpec) -> bool:
    """``nn.Parameter(w, requires_grad=v)`` (the map's ``freeze_keywords``) with ``v`` (the
    keyword or the second positional argument) given and not a literal True, or
    ``nn.Embedding.from_pretrained(w)`` (``frozen_by_default``) without its keyword a literal
    False; the ``cst`` twin of ``cross_file._makes_frozen``."""
    written = " ".join(code_of(call.func).split())
    positional = [a.value for a in call.args if a.keyword is None and not a.star]

    def given(keyword: str) -> cst.BaseExpression | None:
        named = [a.value for a in call.args if a.keyword and a.keyword.value == keyword]
        values = named + positional[1:2]
        return values[0] if values else None

    def literal(value: cst.BaseExpression | None, name: str) -> bool:
        return isinstance(value, cst.Name) and value.value == name

    for callee, keyword in spec.freeze_keywords:
        if written == callee or written.endswith("." + callee):
            value = given(keyword)
            return value is not None and not literal(value, "True")
    for callee, keyword in spec.frozen_by_default:
        if written == callee or written.endswith("." + callee):
            return not literal(given(keyword), "False")
    return False


def _is_attribute(node: cst.BaseExpression, names: frozenset[str]) -> bool:
    return isinstance(node, cst.Attribute) and node.attr.value in names


def _impure_calls(
    nodes: Sequence[cst.CSTNode], harmless: Callable[[cst.Call], bool]
) -> list[cst.Call]:
    """The outermost calls in ``nodes`` that are not ``harmless`` (lambdas aside)."""
    found: list[cst.Call] = []

    class _Find(cst.CSTVisitor):
        def visit_Lambda(self, node: cst.Lambda) -> bool:
            return False

        def visit_Call(self, node: cst.Call) -> bool:
            if harmless(node):
                return False
            found.append(node)
            return False

    for node in nodes:
        cst_walk.visit(node, _Find())
    return found


_EXPRESSION_CONTROL = (
    cst.IfExp,
    cst.BooleanOperation,
    cst.ListComp,
    cst.SetComp,
    cst.DictComp,
    cst.GeneratorExp,
    cst.Lambda,
)


def _runs_conditionally(site: Site) -> bool:
    """Whether ``site``'s call sits, within its statement, in an expression that may run it
    any number of times (``a if c else b``, ``c and a``, a comprehension, a lambda)."""
    found = False
    depth = 0

    class _Find(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            nonlocal found, depth
            if node is site.call:
                found = depth > 0
                return False
            if isinstance(node, _EXPRESSION_CONTROL):
                depth += 1
            return True

        def on_leave(self, original_node: cst.CSTNode) -> None:
            nonlocal depth
            if isinstance(original_node, _EXPRESSION_CONTROL):
                depth -= 1

    cst_walk.visit(site.statement, _Find())
    return found


def _same_control(step: Site, optimizer_steps: list[Site]) -> bool:
    """``sched.step()`` under exactly the same loops and conditions as an ``opt.step()``,
    and after it."""
    for opt_step in optimizer_steps:
        if opt_step.controls != step.controls:
            continue
        if opt_step.path[:-1] == step.path[:-1] and opt_step.index < step.index:
            return True
        if opt_step.statement is step.statement:
            return True
    return False


def _follows(first: Site, later: Site) -> bool:
    """``later`` is in a statement after ``first``'s, in ``first``'s block or nested in it."""
    depth = len(first.path) - 1
    if len(later.path) <= depth or later.path[:depth] != first.path[:depth]:
        return False
    block, index = first.path[depth]
    return later.path[depth][0] == block and later.path[depth][1] > index


def _loss_name(backward: Site) -> str:
    """The loss the suggestion names: a plain (dotted) name, else ``loss``."""
    positional = [a for a in backward.call.args if a.keyword is None and not a.star]
    receiver = backward.receiver
    if positional and isinstance(receiver, (cst.Name, cst.Attribute)):
        candidate = positional[0].value  # accelerator.backward(loss), self.manual_backward(loss)
    elif isinstance(receiver, cst.Call) and receiver.args:  # scaler.scale(loss).backward()
        candidate = receiver.args[0].value
    else:
        candidate = receiver  # loss.backward(), loss.backward(retain_graph=True)
    name = dotted_name(candidate) if candidate is not None else None
    return name or "loss"


_BUILTIN_NAMES = frozenset({"float", "int", "inf", "len", "abs", "min", "max", "round"})


def _paths(value: cst.CSTNode) -> list[str]:
    """The attribute and subscript expressions ``value`` reads (``args.clip``, ``cfg["c"]``)."""
    return [" ".join(code_of(node).split()) for node in _path_nodes(value)]


def _schedule_values(members: list[Site]) -> list[cst.BaseExpression]:
    """The arguments of the schedule's constructors but the optimizer they wrap."""
    return [a.value for m in members for a in m.call.args if a.value is not _optimizer_argument(m)]


def _store_paths(node: cst.CSTNode) -> set[str]:
    """The attribute and subscript targets ``node`` assigns (``args.clip = ...``), as text."""
    return {" ".join(code_of(t).split()) for t in _store_targets(node)}


def _store_targets(node: cst.CSTNode) -> list[cst.BaseExpression]:
    """The attribute and subscript targets ``node`` assigns, deletes or loops over."""
    stores: list[cst.BaseExpression] = []

    class _Stores(cst.CSTVisitor):
        def _add(self, target: cst.BaseExpression) -> None:
            if isinstance(target, (cst.Attribute, cst.Subscript)):
                stores.append(target)
            elif isinstance(target, (cst.Tuple, cst.List)):
                for element in target.elements:
                    self._add(element.value)

        def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
            self._add(node.target)

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            self._add(node.target)

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            self._add(node.target)

        def visit_For(self, node: cst.For) -> None:
            self._add(node.target)

        def visit_Del(self, node: cst.Del) -> None:
            self._add(node.target)

    cst_walk.visit(node, _Stores())
    return stores


def _path_nodes(value: cst.CSTNode) -> list[cst.BaseExpression]:
    """The attribute and subscript expressions ``value`` reads (``_paths``, as nodes)."""
    found: list[cst.BaseExpression] = []

    class _Collect(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> None:
            found.append(node)

        def visit_Subscript(self, node: cst.Subscript) -> None:
            found.append(node)

    cst_walk.visit(value, _Collect())
    return found


def _last_key(node: cst.BaseExpression) -> str | None:
    """The last attribute or string key of a path (``clip`` of ``args.clip``, ``cfg["clip"]``)."""
    if isinstance(node, cst.Attribute):
        return node.attr.value
    if isinstance(node, cst.Subscript) and len(node.slice) == 1:
        index = node.slice[0].slice
        if isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString):
            return str(index.value.evaluated_value)
    return None


def _holders(node: cst.BaseExpression) -> set[str]:
    """The objects a path goes through, as text (``args``, ``args.opt`` of ``args.opt.clip``)."""
    found: set[str] = set()
    inner: cst.BaseExpression = node
    while isinstance(inner, (cst.Attribute, cst.Subscript)):
        inner = inner.value
        found.add(" ".join(code_of(inner).split()))
    return found


# builtins that only read the objects handed to them
_READING_BUILTINS = frozenset(
    {"print", "len", "str", "repr", "format", "isinstance", "hasattr", "getattr", "id", "type"}
)


def _changes_holder(call: cst.Call, holders: set[str]) -> bool:
    """Whether ``call`` is a method call on one of ``holders``, or hands one to a function that
    may store into it (``adjust(args)``, in this file or another; a builtin that changes
    attributes by name), not to a builtin that only reads it (``print(args)``)."""
    func = call.func
    if isinstance(func, cst.Attribute) and " ".join(code_of(func.value).split()) in holders:
        return True
    if isinstance(func, cst.Name) and func.value in _READING_BUILTINS:
        return False
    return any(" ".join(code_of(arg.value).split()) in holders for arg in call.args)


def _overlaps(read: str, stored: str) -> bool:
    """``args.clip`` is changed by a store to ``args.clip``, ``args.clip.x`` or ``args.clip[0]``
    and reads through a store to ``args.clip`` (one is a prefix path of the other)."""
    if read == stored:
        return True
    shorter, longer = sorted((read, stored), key=len)
    return longer.startswith(shorter) and longer[len(shorter)] in ".["


def _calls_a_method(node: cst.CSTNode, methods: Iterable[str]) -> bool:
    """Whether ``node`` calls ``x.<method>(...)`` for one of ``methods``."""
    wanted = frozenset(methods)
    found = False

    class _Find(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            nonlocal found
            func = call.func
            found = found or (isinstance(func, cst.Attribute) and func.attr.value in wanted)

    cst_walk.visit(node, _Find())
    return found


def _holds_call_of(statement: cst.CSTNode, methods: Iterable[str]) -> bool:
    """Whether ``statement`` holds a call of a method named in ``methods``."""
    names = set(methods)
    stack = [statement]
    while stack:
        node = stack.pop()
        if (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Attribute)
            and node.func.attr.value in names
        ):
            return True
        stack.extend(cst_walk.children(node))
    return False


def _lone_backward(statement: cst.BaseStatement, methods: Iterable[str]) -> bool:
    """``loss.backward(...)`` alone on its line: a backward method of a name, no positional
    argument (``accelerator.backward(loss)`` is not one)."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    call = small.value if isinstance(small, cst.Expr) else None
    return (
        isinstance(call, cst.Call)
        and isinstance(call.func, cst.Attribute)
        and call.func.attr.value in methods
        and isinstance(call.func.value, cst.Name)
        and all(argument.keyword is not None for argument in call.args)
    )


def _movable(statement: cst.BaseStatement) -> bool:
    """A simple line of expressions and assignments only (no jump, no definition)."""
    return isinstance(statement, cst.SimpleStatementLine) and all(
        isinstance(small, (cst.Expr, cst.Assign, cst.AugAssign, cst.AnnAssign))
        for small in statement.body
    )


def changed_in_place(statement: cst.BaseStatement, suffix: str | None) -> str | None:
    """The name a line of in-place method calls alone changes (``label.data.resize_(n).fill_(
    1)``, ``noise.normal_(0, 1)``: each method ends in the map's ``in_place_suffix``, on the
    name or its ``.data``), else None."""
    if not suffix or not isinstance(statement, cst.SimpleStatementLine):
        return None
    if len(statement.body) != 1 or not isinstance(statement.body[0], cst.Expr):
        return None
    node = statement.body[0].value
    if not isinstance(node, cst.Call):
        return None
    while isinstance(node, cst.Call):
        if not isinstance(node.func, cst.Attribute) or not node.func.attr.value.endswith(suffix):
            return None
        node = node.func.value
    if isinstance(node, cst.Attribute) and node.attr.value == "data":
        node = node.value
    return node.value if isinstance(node, cst.Name) else None


def _bound_names(statement: cst.BaseStatement) -> set[str]:
    """The plain names a simple statement assigns (``a, b = ...``, ``a += ...``)."""
    if not isinstance(statement, cst.SimpleStatementLine):
        return set()
    targets: list[cst.BaseExpression] = []
    for small in statement.body:
        if isinstance(small, cst.Assign):
            targets.extend(t.target for t in small.targets)
        elif isinstance(small, (cst.AnnAssign, cst.AugAssign)):
            targets.append(small.target)
    found: set[str] = set()
    while targets:
        target = targets.pop()
        if isinstance(target, cst.Name):
            found.add(target.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            targets.extend(e.value for e in target.elements)
    return found


def _names(node: cst.CSTNode) -> list[cst.Name]:
    found: list[cst.Name] = []

    class _Collect(cst.CSTVisitor):
        def visit_Name(self, name: cst.Name) -> None:
            found.append(name)

        def visit_Attribute(self, attribute: cst.Attribute) -> bool:
            cst_walk.visit(attribute.value, self)
            return False

    cst_walk.visit(node, _Collect())
    return found


def _node_ids(statements: Sequence[cst.BaseStatement]) -> set[int]:
    found: set[int] = set()

    class _Collect(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            found.add(id(node))
            return True

    for statement in statements:
        cst_walk.visit(statement, _Collect())
    return found


def _mentions_but_lr_reads(module: cst.Module, groups: str) -> bool:
    """Whether ``module`` uses ``groups`` (``opt.param_groups``) otherwise than to read
    ``groups[0]["lr"]`` (a read changes nothing the scheduler multiplies)."""
    other = False

    class _Find(cst.CSTVisitor):
        def __init__(self) -> None:
            super().__init__()
            self.reads: set[int] = set()

        def visit_Subscript(self, node: cst.Subscript) -> None:
            inner = node.value
            if (
                isinstance(inner, cst.Subscript)
                and code_of(inner.value).strip() == groups
                and _one_literal_index(inner, 0)
                and _one_literal_index(node, "lr")
            ):
                self.reads.add(id(inner.value))

        def visit_Assign(self, node: cst.Assign) -> None:
            for target in node.targets:  # `groups[0]["lr"] = v` is a write
                self.writes(target.target)

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            self.writes(node.target)

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            self.writes(node.target)

        def visit_Del(self, node: cst.Del) -> None:
            self.writes(node.target)

        def writes(self, target: cst.CSTNode) -> None:
            nonlocal other
            other = other or _mentions(target, groups)

        def on_leave(self, original_node: cst.CSTNode) -> None:
            nonlocal other
            node = original_node
            if isinstance(node, (cst.Name, cst.Attribute)) and code_of(node).strip() == groups:
                other = other or id(node) not in self.reads

    cst_walk.visit(module, _Find())
    return other


def _one_literal_index(node: cst.Subscript, value: object) -> bool:
    """``x[<value>]``: one index, an integer or string literal equal to ``value``."""
    if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
        return False
    index = node.slice[0].slice.value
    if isinstance(index, cst.Integer):
        return index.evaluated_value == value
    return isinstance(index, cst.SimpleString) and index.evaluated_value == value


def _mentions(node: cst.CSTNode, text: str) -> bool:
    """Whether a name or attribute in ``node`` is written ``text`` (``self.sched``)."""
    return any(_written_as(found, text) for found in cst_walk.walk(node))


_is_name_or_attribute = cst_walk.instance_test((cst.Name, cst.Attribute))
_is_attribute_node = cst_walk.instance_test(cst.Attribute)


def _written_as(node: cst.CSTNode, text: str) -> bool:
    """Whether ``node`` is a name or attribute whose code is ``text`` (its last name, which its
    code holds, must then be in ``text``: checked before the code is written out)."""
    if not _is_name_or_attribute(node):
        return False
    last = node.attr.value if _is_attribute_node(node) else node.value  # type: ignore[attr-defined]
    return last in text and code_of(node).strip() == text


def _calls_self_method(node: cst.CSTNode, receiver: str, name: str) -> bool:
    """Whether ``node`` calls ``receiver.name(...)`` (``self.train_one_epoch(...)``)."""
    found = False

    class _Find(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            nonlocal found
            func = call.func
            if (
                isinstance(func, cst.Attribute)
                and func.attr.value == name
                and isinstance(func.value, cst.Name)
                and func.value.value == receiver
            ):
                found = True

    cst_walk.visit(node, _Find())
    return found


def _calls_of(module: cst.Module, name: str) -> int:
    """How many calls in ``module`` call ``name(...)`` or ``<anything>.name(...)``."""
    return len(_calls_named(module, name))


def _attribute_read(module: cst.Module, owner: str, attribute: str) -> bool:
    """Whether ``module`` uses ``<anything>.<owner>.<attribute>`` (``self.opt.param_groups``)."""
    found = False

    class _Find(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> None:
            nonlocal found
            value = node.value
            found = found or (
                node.attr.value == attribute
                and isinstance(value, cst.Attribute)
                and value.attr.value == owner
            )

    cst_walk.visit(module, _Find())
    return found


# Methods of a torch scheduler that leave its step count alone (``_self_attributes_stable``)
_SCHEDULER_READS = frozenset({"get_last_lr", "state_dict"})


def _methods_called_on(module: cst.Module, attribute: str) -> list[tuple[str, str]]:
    """``(base, method)`` of every ``<base>.<attribute>.<method>(...)`` call in ``module``
    (``self.sched.step()``, ``t.sched.step()`` in a function given the trainer)."""
    found: list[tuple[str, str]] = []

    class _Find(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            func = node.func
            if (
                isinstance(func, cst.Attribute)
                and isinstance(func.value, cst.Attribute)
                and func.value.attr.value == attribute
            ):
                found.append((code_of(func.value.value).strip(), func.attr.value))

    cst_walk.visit(module, _Find())
    return found


def _only_method_receiver(module: cst.Module, built: cst.Attribute) -> bool:
    """Whether every ``<anything>.<attr>`` of ``built``'s attribute in ``module`` other than
    ``built`` itself (its store) is the receiver of a method call (``self.sched.step()``)."""
    attribute = built.attr.value
    ok = True

    class _Find(cst.CSTVisitor):
        def __init__(self) -> None:
            self.receivers: set[int] = set()

        def visit_Call(self, node: cst.Call) -> None:
            func = node.func
            if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Attribute):
                self.receivers.add(id(func.value))

        def visit_Attribute(self, node: cst.Attribute) -> None:
            nonlocal ok
            if node.attr.value == attribute and node is not built:
                ok = ok and id(node) in self.receivers

    cst_walk.visit(module, _Find())
    return ok


def _handed_as_argument(module: cst.Module, name: str) -> bool:
    """Whether a call in ``module`` is given the name ``name`` itself as an argument."""
    found = False

    class _Find(cst.CSTVisitor):
        def visit_Arg(self, node: cst.Arg) -> None:
            nonlocal found
            found = found or (isinstance(node.value, cst.Name) and node.value.value == name)

    cst_walk.visit(module, _Find())
    return found


def _function_arguments(site: Site) -> list[cst.BaseExpression]:
    """The arguments of ``site``'s call its map entry lists as ``functions`` (``lr_lambda``);
    every argument when they cannot be bound (conservative)."""
    entry = site.entry
    if entry is None or not entry.functions:
        return []
    try:
        bound = entry.signature.bind(site.call)
    except Untranslatable:
        return [a.value for a in site.call.args]
    return [bound[name].value for name in sorted(entry.functions) if name in bound]


def _walk_calls(module: cst.CSTNode) -> list[cst.Call]:
    """Every call in ``module`` (or another node), in source order."""
    found: list[cst.Call] = []

    class _Find(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            found.append(call)

    cst_walk.visit(module, _Find())
    return found


def _defs_named(module: cst.Module, name: str) -> int:
    """How many ``def name(...)`` (functions or methods, any class) ``module`` holds."""
    found = 0

    class _Find(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
            nonlocal found
            found += node.name.value == name

    cst_walk.visit(module, _Find())
    return found


def _attr_uses(module: cst.Module, name: str) -> int:
    """How many ``<anything>.name`` attributes ``module`` holds (calls and reads)."""
    found = 0

    class _Find(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> None:
            nonlocal found
            found += node.attr.value == name

    cst_walk.visit(module, _Find())
    return found


def _calls_named(module: cst.Module, name: str) -> list[cst.Call]:
    """The calls in ``module`` of ``name(...)`` or ``<anything>.name(...)``."""
    return [
        call
        for call in _walk_calls(module)
        if (isinstance(call.func, cst.Name) and call.func.value == name)
        or (isinstance(call.func, cst.Attribute) and call.func.attr.value == name)
    ]


def _short(node: cst.CSTNode, limit: int = 60) -> str:
    text = " ".join(code_of(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parameter_functions(module: cst.Module) -> dict[int, str]:
    """For every parameter of the module's functions and lambdas (the Param, and its name):
    ``name()`` of its function, or ``a lambda``."""
    found: dict[int, str] = {}

    class _Find(cst.CSTVisitor):
        def visit_FunctionDef(self, definition: cst.FunctionDef) -> None:
            self._hold(definition.params, f"{definition.name.value}()")

        def visit_Lambda(self, definition: cst.Lambda) -> None:
            self._hold(definition.params, "a lambda")

        @staticmethod
        def _hold(parameters: cst.Parameters, function: str) -> None:
            star = parameters.star_arg if isinstance(parameters.star_arg, cst.Param) else None
            every = [*parameters.posonly_params, *parameters.params, *parameters.kwonly_params]
            for param in [*every, star, parameters.star_kwarg]:
                if param is not None:
                    found[id(param)] = found[id(param.name)] = function

    cst_walk.visit(module, _Find())
    return found


def _steps_at(epoch: str, start: cst.Integer | cst.Name | cst.Attribute) -> str:
    """The scheduler's step count at its step in ``for epoch in range(start, n)`` of a fresh
    scheduler: ``epoch - start + 1`` (``epoch + 1`` from 0, ``epoch`` from 1)."""
    if isinstance(start, (cst.Name, cst.Attribute)):
        return f"{epoch} - {code_of(start).strip()} + 1"
    offset = 1 - int(start.evaluated_value)
    if offset == 0:
        return epoch
    return f"{epoch} + {offset}" if offset > 0 else f"{epoch} - {-offset}"


def _declared_global(module: cst.Module) -> set[str]:
    """Names a ``global`` or ``nonlocal`` statement of ``module`` declares."""
    names: set[str] = set()

    class _Find(cst.CSTVisitor):
        def visit_Global(self, node: cst.Global) -> None:
            names.update(item.name.value for item in node.names)

        def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
            names.update(item.name.value for item in node.names)

    cst_walk.visit(module, _Find())
    return names


def _owner_of(module: cst.Module, block: cst.CSTNode) -> cst.CSTNode | None:
    """The statement whose body is the indented ``block`` (None: the module's)."""
    found: list[cst.CSTNode] = []

    class _Find(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            if not found and getattr(node, "body", None) is block:
                found.append(node)
            return not found

    cst_walk.visit(module, _Find())
    return found[0] if found else None


def _plain(node: cst.BaseExpression) -> cst.Name | None:
    """``node`` when it is a plain name, else None."""
    return node if isinstance(node, cst.Name) else None


def _direct_call(statement: cst.BaseStatement) -> cst.Call | None:
    """The call a statement consists of: ``f(...)``, ``x = f(...)``, ``loss = self.f(...)``."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    value = small.value if isinstance(small, (cst.Expr, cst.Assign, cst.AnnAssign)) else None
    return value if isinstance(value, cst.Call) else None


def _self_name(site: Site) -> str | None:
    """The first parameter of the method ``site`` sits in (``self``), or None."""
    function = site.function
    if not isinstance(function, cst.FunctionDef) or site.enclosing_class is None:
        return None
    position = next(i for i, control in enumerate(site.controls) if control is function)
    if position == 0 or site.controls[position - 1] is not site.enclosing_class:
        return None  # a function nested in a method
    if any(code_of(d.decorator).strip() == "staticmethod" for d in function.decorators):
        return None
    parameters = function.params.params
    return parameters[0].name.value if parameters else None


def _function_name(site: Site) -> str:
    """``name()`` of the function ``site`` is in, or ``the module``."""
    function = site.function
    return f"{function.name.value}()" if isinstance(function, cst.FunctionDef) else "the module"


def _calls_name(node: cst.CSTNode, name: str) -> bool:
    found = False

    class _Find(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            nonlocal found
            if isinstance(call.func, cst.Name) and call.func.value == name:
                found = True

    cst_walk.visit(node, _Find())
    return found


def _stepping(schedule: SchedulePlan) -> dict[str, str]:
    """The values of a finding about how a scheduler steps: its optimizer's name."""
    opt = code_of(schedule.optimizer.target).strip() if schedule.optimizer.target else "opt"
    return {"optimizer": opt}


def _references_of(module: cst.Module, name: str) -> int:
    """How many names in ``module`` refer to ``name`` (loads: not a ``def``'s or a
    parameter's own name, an attribute (``model.train``) or a keyword)."""
    found = 0

    class _Find(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            nonlocal found
            found += node.value == name

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            for part in (node.params, node.body, *node.decorators):
                cst_walk.visit(part, self)
            if node.returns is not None:
                cst_walk.visit(node.returns, self)
            return False

        def visit_Attribute(self, node: cst.Attribute) -> bool:
            cst_walk.visit(node.value, self)
            return False

        def visit_Arg(self, node: cst.Arg) -> bool:
            cst_walk.visit(node.value, self)
            return False

        def visit_Param(self, node: cst.Param) -> bool:
            for part in (node.annotation, node.default):
                if part is not None:
                    cst_walk.visit(part, self)
            return False

    cst_walk.visit(module, _Find())
    return found


def _calls_in(statements: Sequence[cst.BaseStatement]) -> list[cst.Call]:
    """Every call in ``statements``."""
    found: list[cst.Call] = []

    class _Find(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            found.append(call)

    for statement in statements:
        cst_walk.visit(statement, _Find())
    return found


def _arguments_mention(call: cst.Call, text: str) -> bool:
    """Whether an argument of ``call`` holds the value ``text`` itself (``f(opt)``,
    ``f(x=[opt])``), not only a method's result or an attribute of it (``opt.state_dict()``)."""
    found = False

    class _Find(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            nonlocal found
            found = found or node.value == text

        def visit_Attribute(self, node: cst.Attribute) -> bool:
            nonlocal found
            if code_of(node).strip() == text:
                found = True
                return False
            if code_of(node.value).strip() == text:
                return False  # `opt.state_dict`, `opt.param_groups`
            cst_walk.visit(node.value, self)
            return False

    for argument in call.args:
        cst_walk.visit(argument.value, _Find())
    return found


def _method_receivers(module: cst.Module, methods: frozenset[str]) -> set[int]:
    """The ids of the names ``x`` of every ``x.m(...)`` in ``module``, ``m`` in ``methods``."""
    found: set[int] = set()

    class _Find(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            func = call.func
            if isinstance(func, cst.Attribute) and func.attr.value in methods:
                found.add(id(func.value))

    cst_walk.visit(module, _Find())
    return found


def _method_parameter(
    method: cst.FunctionDef, call: cst.Call, argument: cst.Arg
) -> cst.Param | None:
    """The parameter of ``method`` that ``argument`` of ``call`` (``self.method(...)``) binds,
    past its ``self``; None when not certain (star arguments or parameters, a decorator)."""
    params = method.params
    if method.decorators or params.star_kwarg is not None or any(a.star for a in call.args):
        return None
    if not isinstance(params.star_arg, cst.MaybeSentinel) or params.posonly_params:
        return None
    positional = list(params.params[1:])
    if argument.keyword is None:
        index = [a for a in call.args if a.keyword is None].index(argument)
        return positional[index] if index < len(positional) else None
    named = [*positional, *params.kwonly_params]
    return next((p for p in named if p.name.value == argument.keyword.value), None)


def _is_self_call(call: cst.Call) -> bool:
    """``self.method(...)``."""
    func = call.func
    return (
        isinstance(func, cst.Attribute)
        and isinstance(func.value, cst.Name)
        and func.value.value == "self"
    )


def _enclosing_def(module: cst.Module, node: cst.CSTNode) -> cst.FunctionDef | None:
    """The innermost ``def`` around ``node`` (None at module level)."""
    stack: list[cst.FunctionDef] = []
    found: list[cst.FunctionDef | None] = []

    class _Find(cst.CSTVisitor):
        def on_visit(self, visited: cst.CSTNode) -> bool:
            if visited is node:
                found.append(stack[-1] if stack else None)
                return False
            if isinstance(visited, cst.FunctionDef):
                stack.append(visited)
            return not found

        def on_leave(self, original_node: cst.CSTNode) -> None:
            if isinstance(original_node, cst.FunctionDef) and stack and stack[-1] is original_node:
                stack.pop()

    cst_walk.visit(module, _Find())
    return found[0] if found else None


class _AttributeStores(cst.CSTVisitor):
    """Calls ``stored`` with each ``<anything>.<attribute>`` a statement stores or deletes
    (assignment, augmented or annotated assignment, ``for`` and ``with ... as`` targets,
    ``del``), also inside tuple, list and starred targets."""

    def __init__(self, attribute: str) -> None:
        super().__init__()
        self.attribute = attribute

    def stored(self, target: cst.Attribute) -> None:
        raise NotImplementedError

    def _target(self, target: cst.CSTNode) -> None:
        if isinstance(target, cst.Attribute) and target.attr.value == self.attribute:
            self.stored(target)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._target(element.value)
        elif isinstance(target, cst.StarredElement):
            self._target(target.value)

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._target(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._target(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._target(node.target)

    def visit_For(self, node: cst.For) -> None:
        self._target(node.target)

    def visit_AsName(self, node: cst.AsName) -> None:
        self._target(node.name)

    def visit_Del(self, node: cst.Del) -> None:
        self._target(node.target)


def _attribute_stores(
    module: cst.Module, attribute: str, base: str
) -> list[tuple[cst.CSTNode, cst.FunctionDef | None]] | None:
    """Every store or deletion of ``<anything>.<attribute>`` in ``module`` with its innermost
    ``def``; None when something else may set it (``setattr``, ``vars``, ``base.__dict__``, a
    method or property of that name)."""
    stores: list[tuple[cst.CSTNode, cst.FunctionDef | None]] = []
    stack: list[cst.FunctionDef] = []
    unknown = False

    class _Find(_AttributeStores):
        def stored(self, target: cst.Attribute) -> None:
            stores.append((target, stack[-1] if stack else None))

        def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
            nonlocal unknown
            unknown = unknown or node.name.value == attribute  # a property may compute it
            stack.append(node)

        def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
            stack.pop()

        def visit_Name(self, node: cst.Name) -> None:
            nonlocal unknown
            unknown = unknown or node.value in ("setattr", "vars")

        def visit_Attribute(self, node: cst.Attribute) -> None:
            nonlocal unknown
            if node.attr.value == "__dict__" and code_of(node.value).strip() == base:
                unknown = True

    cst_walk.visit(module, _Find(attribute))
    return None if unknown else stores


def _name_uses(
    node: cst.CSTNode, name: str
) -> list[tuple[cst.Name, cst.CSTNode | None, cst.CSTNode | None]]:
    """Each ``Name`` ``name`` in ``node`` (not an attribute's or keyword's own name) with its
    parent and grandparent."""
    found: list[tuple[cst.Name, cst.CSTNode | None, cst.CSTNode | None]] = []
    stack: list[cst.CSTNode] = []

    class _Find(cst.CSTVisitor):
        def on_visit(self, visited: cst.CSTNode) -> bool:
            if isinstance(visited, cst.Name) and visited.value == name:
                parent = stack[-1] if stack else None
                grandparent = stack[-2] if len(stack) > 1 else None
                own_name = (isinstance(parent, cst.Attribute) and parent.attr is visited) or (
                    isinstance(parent, cst.Arg) and parent.keyword is visited
                )
                if not own_name:
                    found.append((visited, parent, grandparent))
            stack.append(visited)
            return True

        def on_leave(self, original_node: cst.CSTNode) -> None:
            stack.pop()

    cst_walk.visit(node, _Find())
    return found


def _attribute_reads(module: cst.Module) -> set[int]:
    """The ids of the names ``x`` of every ``x.attr`` in ``module`` that is read: not the
    function of a call (``x.update(...)``), not a store or deletion target."""
    found: set[int] = set()
    targets: set[int] = set()

    class _Find(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> None:
            if isinstance(node.value, cst.Name) and id(node) not in targets:
                found.add(id(node.value))

        def visit_Call(self, node: cst.Call) -> None:
            targets.add(id(node.func))

        def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
            targets.add(id(node.target))

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            targets.add(id(node.target))

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            targets.add(id(node.target))

        def visit_Del(self, node: cst.Del) -> None:
            targets.add(id(node.target))

    cst_walk.visit(module, _Find())
    return found


def _method_calls_other_than(
    statements: Sequence[cst.BaseStatement], text: str, excluded: frozenset[str]
) -> list[cst.BaseStatement]:
    """The statements that use ``text`` (the optimizer) only as the receiver of method calls
    none of which is in ``excluded`` (``opt.state_dict()`` in a checkpoint: no update)."""
    found = []
    for statement in statements:
        uses, calls = 0, 0

        class _Count(cst.CSTVisitor):
            def on_visit(self, node: cst.CSTNode) -> bool:
                nonlocal uses, calls
                if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
                    method = node.func
                    if code_of(method.value).strip() == text and method.attr.value not in excluded:
                        calls += 1
                if isinstance(node, (cst.Name, cst.Attribute)) and code_of(node).strip() == text:
                    uses += 1
                    return False
                return True

        cst_walk.visit(statement, _Count())
        if uses and uses == calls:
            found.append(statement)
    return found


def _zeroes_between_updates(zero: Site, steps: list[Site]) -> bool:
    """Whether ``zero``, not under the same loops and conditions as any step, runs inside a
    loop that also runs a step (``opt.zero_grad()`` each batch, the step every k): torch then
    drops the gradients summed since the last update, so it is no mere repetition of the
    zero_grad() that runs with the step and cannot go without a word."""
    if any(step.controls == zero.controls for step in steps):
        return False
    loops = [c for c in zero.controls if isinstance(c, (cst.For, cst.While))]
    return any(loop in step.controls for step in steps for loop in loops)
