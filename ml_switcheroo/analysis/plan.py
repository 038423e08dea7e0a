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

The planner is split by concern (``tools/split_plan.py``): ``plan_facts`` (data types),
``plan_walks`` and ``plan_places`` (module-level walks and queries), ``plan_collector``, and the
mixins ``Planner`` is built from (plan_schedules, plan_stepping, plan_epochs, plan_notes,
plan_clips, plan_models, plan_regions); this module keeps the core and re-exports the names
other modules import from it.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.built_by_method import BuiltByMethod
from ml_switcheroo.analysis.exits import Exits
from ml_switcheroo.analysis.freeze_reach import FreezeReach
from ml_switcheroo.analysis.plan_clips import ClipFacts
from ml_switcheroo.analysis.plan_collector import _Collector
from ml_switcheroo.analysis.plan_epochs import EpochFacts
from ml_switcheroo.analysis.plan_facts import COUNTED as COUNTED
from ml_switcheroo.analysis.plan_facts import Attachments as Attachments
from ml_switcheroo.analysis.plan_facts import ClipFeed as ClipFeed
from ml_switcheroo.analysis.plan_facts import FoldedElsewhere as FoldedElsewhere
from ml_switcheroo.analysis.plan_facts import Plan as Plan
from ml_switcheroo.analysis.plan_facts import PlanItem as PlanItem
from ml_switcheroo.analysis.plan_facts import Region as Region
from ml_switcheroo.analysis.plan_facts import SchedulePlan as SchedulePlan
from ml_switcheroo.analysis.plan_facts import Site as Site
from ml_switcheroo.analysis.plan_facts import SubsetClip as SubsetClip
from ml_switcheroo.analysis.plan_facts import Warmup as Warmup
from ml_switcheroo.analysis.plan_facts import WireFunction as WireFunction
from ml_switcheroo.analysis.plan_models import ModelFacts
from ml_switcheroo.analysis.plan_notes import NoteFacts
from ml_switcheroo.analysis.plan_places import FreezeScan, ModuleScan
from ml_switcheroo.analysis.plan_places import changed_in_place as changed_in_place
from ml_switcheroo.analysis.plan_regions import RegionFacts
from ml_switcheroo.analysis.plan_schedules import ScheduleFacts
from ml_switcheroo.analysis.plan_stepping import SteppingFacts
from ml_switcheroo.analysis.plan_walks import _mentions as _mentions
from ml_switcheroo.analysis.plan_walks import _names, _node_ids, may_bind
from ml_switcheroo.analysis.resolver import Resolver
from ml_switcheroo.analysis.site_key import Positions
from ml_switcheroo.analysis.zero_functions import ZeroFunction
from ml_switcheroo.spec import findings
from ml_switcheroo.spec.errors import Untranslatable
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
from ml_switcheroo.spec.semantic_map import ApiEntry

_BASE_LR = "base_lr"  # the optimizer's lr in a refused scheduler's written-out schedule
# The findings whose fix is the schedule itself, placed otherwise: their suggestion also
# writes out the schedule the call means (``Planner.schedule_text``).
_WRITTEN_OUT = frozenset(
    {
        findings.SCHEDULE_WITHOUT_TRANSLATED_OPTIMIZER,
        findings.SCHEDULER_PER_EPOCH_WITHOUT_LENGTH,
        findings.SCHEDULER_STEP_NOT_CALLED,
        findings.SCHEDULER_STEP_UNKNOWN,
    }
)


class Planner(
    ScheduleFacts, SteppingFacts, EpochFacts, NoteFacts, ClipFacts, ModelFacts, RegionFacts
):
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
        transform: Callable[[cst.Call, ApiEntry], str | None] = lambda call, entry: None,
        clip_norm: Callable[[cst.Call, ApiEntry], str | None] = lambda call, entry: None,
        schedule_text: Callable[[cst.Call, ApiEntry, str], str | None] = lambda c, e, lr: None,
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
        # the map's transform of a clip call as the target writes it (None: the map escapes
        # it), for the suggestions of clip findings
        self.transform = transform
        # the schedule a scheduler call means as the target writes it, the optimizer's lr
        # written as the given name (None: not known), for the suggestion of its escape
        self.schedule_text = schedule_text
        self.clip_norm = clip_norm  # what a clip call returns, from ``grads`` (None: no value)
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
        self._declared_names: frozenset[str] | None = None  # see _rebindable_by_calls
        self._runs_hidden_code: bool | None = None  # see _hidden_code
        self._computed: tuple[frozenset[str], bool] | None = None  # see _computed_read
        self._stores: set[str] | None = None  # see _stored_paths
        # id of a per-epoch sched.step() -> (the call in its epoch loop that steps the
        # optimizer, the steps it runs): see _per_epoch, _batch_loop_problem
        self._epoch_calls: dict[int, tuple[cst.Call, list[Site]]] = {}
        # the same for a function of another file: why it may not step once per batch
        self._handed_problems: dict[int, str | None] = {}
        self._parents: dict[cst.CSTNode, cst.CSTNode] | None = None  # see _built_by_method
        self._built_by_methods: dict[int, BuiltByMethod | str] = {}
        self._zero_functions: dict[int, ZeroFunction] | None = None  # see _zero_function_at
        self._scan: ModuleScan | None = None  # see _module_scan
        self._freezes: FreezeScan | None = None  # see freeze_reaching
        # see freeze_reaching: a freeze in another file, and this file's FreezeReach
        self._file_freeze: tuple[str, str] | tuple[()] | None = None
        self._freeze_reach: FreezeReach | None = None
        self._freeze_nodes: dict[tuple[int, int, str], ast.AST] = {}
        self._calls: tuple[cst.Call, ...] | None = None  # see _module_calls

    def bound_value(
        self, expression: cst.BaseExpression, enclosing: cst.ClassDef | None
    ) -> cst.BaseExpression | None:
        return self.resolver.bound_value(expression, enclosing)

    def referents_after(
        self, nodes: list[cst.CSTNode], block: int, index: int, ignore: set[int]
    ) -> bool:
        """Whether a name used in ``nodes`` is bound in ``block`` at statement ``index`` or on
        (a ``def`` or ``class`` statement there too: probe s41a M1, the schedule moved above
        ``def lr_lambda(step): ...`` read it before it was defined)."""
        later = self.collector.blocks[block].body[index:]  # type: ignore[attr-defined]
        for node in nodes:
            for name in _names(node):
                for binding in self.resolver.binding_nodes(name):
                    if id(binding) in ignore:
                        continue
                    position = self.collector.name_positions.get(id(binding))
                    if position is not None and position[0] == block and position[1] >= index:
                        return True
                    if position is None and any(binding is s for s in later):
                        return True
        return False

    def rebound_in(self, nodes: list[cst.CSTNode], statements: list[cst.BaseStatement]) -> bool:
        """Whether a name used in ``nodes`` is assigned (in its own scope) in ``statements``,
        or may be: a ``match`` capture of that name (libcst's scopes record none), or a call
        that binds names by string (``exec``, ``globals()[...] = ``: probe s31 G7)."""
        inside = _node_ids(statements)
        used: set[str] = set()
        for node in nodes:
            for name in _names(node):
                used.add(name.value)
                scope = self.resolver.scopes.get(name)
                if scope is not None and any(
                    id(assignment.node) in inside for assignment in scope.assignments[name.value]
                ):
                    return True
        return bool(used) and any(may_bind(n, used) for s in statements for n in cst_walk.walk(s))

    def active(self, role: str) -> bool:
        return self.active_roles is None or role in self.active_roles

    def build(self) -> Plan:
        collector = _Collector(
            self.wire, self.backward_methods, self.wired_attributes or frozenset()
        )
        cst_walk.visit(self.module, collector)
        self.collector = collector
        plan = Plan(module=self.filename, positions=self.positions, sites=collector.sites)
        plan.hatched = frozenset(collector.hatched)
        self.plan = plan
        plan.model_origin = self._model_origin  # for the NNX step hook (``HookContext``)
        plan.helper_problem = self._helper_problem
        plan.copied_helper = self._copied_helper
        plan.data_object_problem = self._data_object_problem
        plan.own_optimizer_problem = self._own_optimizer_problem
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
            self._plan_replaced_apis()
            self._plan_frozen_parameters()
            self._plan_overridden_parameters()
            self._plan_loaded_models()
            self._plan_complex_parameters()
            self._plan_gradient_skips()
            self._plan_changed_models()
            self._plan_shared_parameters()
        if self.active(SCHEDULER):
            self._plan_schedules()
            self._plan_folded_elsewhere()
            self._note_steps_dropped_elsewhere()
        if self.active(CLIP):
            self._plan_clips()
        if self.active(ZERO_GRAD):
            self._plan_zero_grads()
        if any(self.active(role) for role in STEPS):
            self._plan_regions()
            self._refuse_counted_steps_in_regions()
        if self.active(CONSTRUCTOR):
            self._plan_torch_only_uses()
        for region in plan.regions:
            statements = {id(s) for s in region.statements}
            statements |= {id(s) for g in region.true_guards for s in g.body.body}  # type: ignore[attr-defined]
            region.clip_sites = [
                site
                for sites in plan.clips.values()
                for site in sites
                if id(site.statement) in statements
            ]
            region.clipped = bool(region.clip_sites)
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
        """Escape ``site`` for a finding, in the target's words; a scheduler's suggestion
        also names the schedule its call means (``schedule_text``)."""
        key = self.plan.key_of(site.call)
        if key in self.plan.escapes:
            return
        stated = self.render(Finding(kind, values))
        text = (
            self.schedule_text(site.call, site.entry, _BASE_LR)
            if site.role == SCHEDULER and site.entry is not None and kind in _WRITTEN_OUT
            else None
        )
        if text:
            written = self.render(
                Finding(findings.SCHEDULE_WRITTEN_OUT, {"schedule": text, "lr": _BASE_LR})
            )
            if written.suggestion:
                suggestion = stated.suggestion or ""
                suggestion = (
                    f"{suggestion}; {written.suggestion}" if suggestion else written.suggestion
                )
                stated = Untranslatable(stated.reason, suggestion)
        self.plan.escapes[key] = stated
        self.plan.findings[key] = Finding(kind, values)

    def _plan_folded_elsewhere(self) -> None:
        """``sched.step()`` on a parameter another file's folded scheduler is handed to
        (``Resolver.folded_elsewhere``): the step goes (``FoldedElsewhere``)."""
        folded = self.resolver.folded_elsewhere
        for site in self.plan.sites if folded else ():
            if site.role != SCHEDULER_STEP or not isinstance(site.receiver, cst.Name):
                continue
            bound = self.resolver.binding_nodes(site.receiver)
            optimizer = folded.get(id(bound[0])) if len(bound) == 1 else None
            if optimizer is not None and not site.call.args:
                key = self.plan.key_of(site.call)
                self.plan.folded_elsewhere[key] = FoldedElsewhere(site, optimizer)

    def _note_steps_dropped_elsewhere(self) -> None:
        """A scheduler this file escapes although a function of another file it is handed to
        drops its ``sched.step()`` (``analysis/stepped_together.py`` holds there): the escape
        says so, since torch's step is gone from that file."""
        cross_file = self.resolver.cross_file
        for site in self.plan.sites if cross_file is not None and self.plan.escapes else ():
            key = self.plan.key_of(site.call)
            escaped = self.plan.escapes.get(key)
            if site.role != SCHEDULER or escaped is None or not isinstance(site.target, cst.Name):
                continue
            handing = self._one_argument_read(site.target)
            callee = self.resolver.called_function(handing[0].func) if handing else None
            found = cross_file.handed_scheduler(callee, *handing) if callee and handing else None
            if found is None or isinstance(found, str):
                continue
            where = found.step.named(cross_file.index.root)
            note = (
                f" ({where}: `{found.scheduler}.step()` goes there all the same, the schedule "
                "belonging in the optimizer's learning rate)"
            )
            self.plan.escapes[key] = Untranslatable(escaped.reason + note, escaped.suggestion)

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
