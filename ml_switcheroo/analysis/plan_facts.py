"""The planner's facts: what a file's ``Plan`` holds (``Site``, ``SchedulePlan``, ``Warmup``,
``Region``, ``SubsetClip``, ``Attachments``, ``Plan``) and the constants the planner's modules
share.

Split from ``plan.py`` by ``tools/split_plan.py``; imports no other ``plan_*`` module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.built_by_method import BuiltByMethod
from ml_switcheroo.analysis.factories import (
    FactoryCall,
)
from ml_switcheroo.analysis.site_key import Positions, SiteKey
from ml_switcheroo.analysis.torch_only import TorchOnlyUse
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.findings import Finding
from ml_switcheroo.spec.semantic_map import ApiEntry

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
    clip_sites: list[Site] = field(default_factory=list)  # those clip calls
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
    # NNX: the statements as planned when the step reshaped them (``targets/nnx/step_lines.py``:
    # lines split, the loss bound to a name); empty otherwise. Nodes of the file, found by
    # identity (``statements`` may hold new lines around the user's nodes)
    planned: list[cst.BaseStatement] = field(default_factory=list)


@dataclass(eq=False)
class SubsetClip:
    """A clip call before an optimizer's step that clips other parameters than it trains."""

    optimizer: Site
    clipped: str  # the clip call's parameters, as written
    reason: str
    # every parameter of another model than the one the optimizer trains (``CLIP_OTHER_MODEL``,
    # its suggestion), not a part of that model
    other_model_suggestion: str | None = None


class ClipFeed(NamedTuple):
    """A clip call the optimizer's chain takes: the optimizer and every clip call feeding its
    steps (this one among them, in source order). The chain takes all of them or none
    (``ClipFacts._all_or_none``; a target whose map escapes one of them folds none)."""

    optimizer: Site
    clips: list[Site]


class Attachments(NamedTuple):
    """What an optimizer constructor's hook may fold: its schedule and the clip calls before
    its steps."""

    schedule: SchedulePlan | None
    clips: list[Site]


# What the plan holds for one call (a hook's ``ctx.plan``): a scheduler's or a scheduler
# step's schedule, a clip call's optimizer and the clips beside it, a clip of other
# parameters, a constructor's attachments, a training-step region (for the region's anchor),
# or a scheduler step another file folds.
@dataclass(frozen=True)
class FoldedElsewhere:
    """``sched.step()`` on a parameter whose scheduler another file folds into its optimizer
    (``analysis/stepped_together.py``): the step goes."""

    step: Site
    optimizer: str  # the function's optimizer parameter, stepped right before


PlanItem = SchedulePlan | Site | ClipFeed | SubsetClip | Attachments | Region | FoldedElsewhere


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
    clip_target: dict[SiteKey, ClipFeed] = field(default_factory=dict)  # by clip call
    subset_clips: dict[SiteKey, SubsetClip] = field(default_factory=dict)  # by clip call
    steps: dict[SiteKey, SchedulePlan] = field(default_factory=dict)  # by sched.step() call
    # sched.step() calls whose schedule another file's planner folds
    folded_elsewhere: dict[SiteKey, FoldedElsewhere] = field(default_factory=dict)
    escapes: dict[SiteKey, Untranslatable] = field(default_factory=dict)  # call -> reason
    findings: dict[SiteKey, Finding] = field(default_factory=dict)  # what an escape states
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
    # ids of the calls inside an escape hatch of an earlier run: torch code the user has not
    # ported yet (a constructor there stays torch, whatever a dry run of it would say)
    hatched: frozenset[int] = field(default=frozenset(), repr=False, compare=False)
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
    # The module-level ``def`` a loss calls, proven as ``helper_problem`` proves one but for
    # the namesake calls of its own body, which a copy of it writes, or why not
    # (``analysis/loss_helpers.copied_helper``).
    copied_helper: Callable[[cst.Name, frozenset[str]], cst.FunctionDef | str] = field(
        default=lambda name, libraries: "not planned", repr=False, compare=False
    )
    # Why ``self.opt`` (stepped) may hold an optimizer (the constructor stored in it) built over
    # another object than the step's ``self``, given the ``self`` of ``self.parameters()``
    # (``analysis/own_optimizer.py``; None: the step's ``self`` is the trained model).
    own_optimizer_problem: Callable[[cst.Attribute, cst.Call, cst.Name], str | None] = field(
        default=lambda stepped, constructor, trained: "not planned", repr=False, compare=False
    )
    # Why the object a call builds, read at the given nodes (each with its parents), may reach
    # a model, given the modules its class may import (``analysis/data_objects.py``; None:
    # an object of a class of this file that only makes data).
    data_object_problem: Callable[
        [cst.Call, Sequence[tuple[cst.CSTNode, ...]], frozenset[str]], str | None
    ] = field(default=lambda value, reads, modules: "not planned", repr=False, compare=False)
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
        tables = (
            self.scheduler_of,
            self.steps,
            self.clip_target,
            self.subset_clips,
            self.folded_elsewhere,
        )
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
        if key in self.folded_elsewhere:
            return self.folded_elsewhere[key]
        if key in self.schedules or key in self.clips:
            return Attachments(self.schedules.get(key), self.clips.get(key, []))
        return None

    def escape_for(self, call: cst.Call) -> Untranslatable | None:
        """Why the planner escapes ``call``, or None."""
        return self.escapes.get(self.key(call)) if self.escapes else None  # type: ignore[arg-type]

    def finding_for(self, call: cst.Call) -> Finding | None:
        """The finding the planner's escape of ``call`` states (None: none, or a text)."""
        return self.findings.get(self.key(call)) if self.findings else None  # type: ignore[arg-type]

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
