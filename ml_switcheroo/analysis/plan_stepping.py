"""``Planner`` on how often a scheduler's ``step()`` runs: once per update, once per epoch (counted
epochs, phases, metric epochs), every k updates, or unknown.

Split from ``plan.py`` by ``tools/split_plan.py``: the methods of ``SteppingFacts`` run on
``Planner`` (one of its bases) and use the state ``Planner.__init__`` sets.
"""

from __future__ import annotations

from collections.abc import Collection

import libcst as cst
from libcst.metadata import Assignment, GlobalScope

from ml_switcheroo.analysis import cst_walk, stepping
from ml_switcheroo.analysis.counted import Counted, CountFacts, Step, count_problem
from ml_switcheroo.analysis.counted_attributes import Owner, attribute_count_problem
from ml_switcheroo.analysis.plan_facts import COUNTED, SchedulePlan, Site
from ml_switcheroo.analysis.plan_places import (
    _calls_a_method,
    _runs_conditionally,
    _same_control,
    _stepping,
    _steps_at,
)
from ml_switcheroo.analysis.plan_walks import (
    _SCHEDULER_READS,
    _attribute_read,
    _attribute_reads,
    _attribute_stores,
    _declared_global,
    _direct_call,
    _enclosing_def,
    _function_name,
    _handed_as_argument,
    _last_name,
    _mentions,
    _mentions_but_lr_reads,
    _methods_called_on,
    _name_uses,
    _names,
    _only_method_receiver,
    _plain,
    _references_of,
    _self_name,
    _short,
    _use_but_lr_reads,
)
from ml_switcheroo.spec import findings
from ml_switcheroo.spec.findings import Finding
from ml_switcheroo.spec.roles import (
    SCHEDULER,
)
from ml_switcheroo.spec.signature import code_of


class SteppingFacts:
    """The methods of ``Planner`` on the concern of ``plan_stepping`` (a mixin)."""

    def _classify_stepping(self, schedule: SchedulePlan) -> bool:
        steps = self._step_sites_of(schedule.outer)
        schedule.step_sites = steps
        entry = schedule.outer.entry
        assert entry is not None
        groups = self._lr_written(schedule)
        if groups is not None:
            self._refuse(
                schedule.outer, findings.SCHEDULER_LR_WRITTEN, groups=groups, **_stepping(schedule)
            )
            return False
        if entry.role == SCHEDULER and entry.attaches_to_chain:
            elsewhere = self._attributes_used_elsewhere(schedule)
            if elsewhere is not None:  # `def bump(t): s = t.plateau; s.step(m)` in another file
                self._refuse(
                    schedule.outer,
                    findings.SCHEDULER_STEPPING_NOT_PROVED,
                    reason=elsewhere,
                    **_stepping(schedule),
                )
                return False
            if self.writes_epoch_lr:  # NNX: the lr is written where step(metric) runs
                schedule.written = self._metric_epoch_count(schedule, steps)
                if schedule.written is not None:
                    schedule.move = "none"  # the optimizer does not use it: nothing moves
                    return True
            problem = self._metric_not_per_update(schedule, steps)
            if problem is not None:
                self._refuse(
                    schedule.outer,
                    findings.PLATEAU_NOT_PER_UPDATE,
                    reason=problem,
                    **_stepping(schedule),
                )
                return False
            return True  # ReduceLROnPlateau in the chain: its step(metric) escapes on its own
        per_update = self._handed_per_update(schedule) if not steps else False
        if per_update is False and not steps:
            per_update = self._handed_across_files(schedule)
        if per_update is True:
            return True
        handed = self._handed_scheduler(schedule) if not steps else False
        if isinstance(per_update, str) and handed is False:
            handed = per_update
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
            # unproved every-k stepping, or a subclass in another file stepping `self.sched`
            unproved = every if isinstance(every, str) else self._stepped_elsewhere(schedule)
            if unproved is not None:
                return self._counted_or_refused(
                    schedule,
                    steps,
                    findings.SCHEDULER_STEPPING_NOT_PROVED,
                    reason=unproved,
                    **_stepping(schedule),
                )
            schedule.every = every
            return True
        leading = self._leading_step(schedule, steps, optimizer_steps)
        if leading is not None:  # NNX counts the steps where they run, exactly
            return self._counted_or_refused(
                schedule,
                steps,
                findings.SCHEDULER_STEP_UNEVEN,
                reason=leading,
                **_stepping(schedule),
            )
        if all(_same_control(step, optimizer_steps) for step in steps):
            uneven = self._uneven_stepping(steps, optimizer_steps) or self._stepped_elsewhere(
                schedule
            )
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
            elsewhere = self._attributes_used_elsewhere(schedule)
            if elsewhere is not None:  # a subclass in another file stepping `self.sched`, say
                return self._counted_or_refused(
                    schedule,
                    steps,
                    findings.SCHEDULER_STEPPING_NOT_PROVED,
                    reason=elsewhere,
                    **_stepping(schedule),
                )
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
                inferred, why = self._inferred_length(steps[0], schedule)
                if inferred is not None:
                    why = self._length_problem(inferred, steps[0], schedule)
                    if not why:
                        schedule.per_epoch = inferred
                        return True
                return self._counted_or_refused(
                    schedule,
                    steps,
                    findings.SCHEDULER_PER_EPOCH_WITHOUT_LENGTH,
                    where=f" ({epochs[0]}{'; ' + why if why else ''})",
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

    def _length_problem(self, inferred: str, step: Site, schedule: SchedulePlan) -> str:
        """The --steps-per-epoch checks (``_assigned_after``, ``_batch_loop_problem``) for
        ``len(X)`` found by ``_inferred_length``: why it may not count each epoch's updates
        where the schedule is built (empty: it does)."""
        late = self._assigned_after(inferred, schedule.outer)
        if late is not None:
            return f"`{late}` of {inferred} is assigned after this scheduler"
        self.steps_per_epoch = inferred
        try:
            problem = self._batch_loop_problem(step, schedule)
        finally:
            self.steps_per_epoch = None
        if problem is not None:
            return problem.replace(f"--steps-per-epoch ({inferred})", inferred)
        return ""

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
            self._used_elsewhere,
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

    def _refuse_counted_steps_in_regions(self) -> None:
        """A counted scheduler is exact when each of its ``step()`` calls is rewritten where it
        runs (``counted.py``); one inside a training-step region is not (the step's hook
        renders the region's statements, or keeps them all in its escape hatch, where
        ``sched.step()`` would stay on an object that is no torch scheduler any more): the
        scheduler escapes, and its optimizer keeps no schedule."""
        for schedule in list(self.plan.schedules.values()):
            if schedule.written != COUNTED:
                continue
            for step in schedule.step_sites:
                region = self._region_holding(step.statement)
                if region is None:
                    continue
                self._unattach_schedule(schedule)
                self._refuse(
                    schedule.outer,
                    findings.COUNTED_STEP_IN_REGION,
                    step=self._place(step.call),
                    optimizer_step=self._place(region.anchor.call),
                )
                break

    def _region_holding(self, statement: cst.BaseStatement) -> object | None:
        """The training-step region ``statement`` is in, or a statement around it is in."""
        node: cst.BaseStatement | None = statement
        while node is not None:
            region = self.plan.region_at(node)
            if region is not None:
                return region
            node = self.collector.parents.get(id(node))
        return None

    def _unattach_schedule(self, schedule: SchedulePlan) -> None:
        """Take ``schedule`` out of the plan's tables (``_attach_schedule`` put it there)."""
        key = self.plan.key_of
        self.plan.schedules.pop(key(schedule.optimizer.call), None)
        if self.plan.moves.get(key(schedule.optimizer.statement)) is schedule:
            del self.plan.moves[key(schedule.optimizer.statement)]
        for member in schedule.calls:
            self.plan.scheduler_of.pop(key(member.call), None)
        for step in schedule.step_sites:
            self.plan.steps.pop(key(step.call), None)

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

    def _used_elsewhere(self, attributes: Collection[str]) -> str | None:
        """``CrossFile.attribute_used_elsewhere`` (None without a repository)."""
        cross_file = self.resolver.cross_file
        return None if cross_file is None else cross_file.attribute_used_elsewhere(attributes)

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

    def _handed_per_update(self, schedule: SchedulePlan) -> bool | str:
        """A scheduler handed, with its optimizer, to a function of this file that steps both
        once per batch (``train_epoch(model, loader, optimizer, scheduler)`` running
        ``optimizer.step(); scheduler.step()``): True when each ``step()`` of the scheduler is
        proved to follow one of the optimizer's, in the same loops and conditions (sets
        ``step_sites`` and ``step_names``); why not (a str); False when the scheduler's one
        use is not an argument of a call of a function of this file. Every call of the
        function hands it this scheduler and this optimizer, it reads the scheduler only as
        one ``.step()``, and nothing else in the file steps the optimizer or is handed it."""
        optimizer, scheduler = schedule.optimizer.target, schedule.outer.target
        if not isinstance(optimizer, cst.Name) or not isinstance(scheduler, cst.Name):
            return False
        handing = self._one_handing(scheduler)
        if handing is None:
            return False
        call, param = handing
        name = f"{code_of(call.func).strip()}()"
        cross_file = self.resolver.cross_file
        if cross_file is not None and cross_file.mentioned_elsewhere(code_of(call.func).strip()):
            return f"{name} is named in another file, which may hand it another scheduler"
        step = self._one_step_of(param, schedule)
        if isinstance(step, str):
            return f"{name} {step}"
        opt_param = self._handed_param(call, optimizer, schedule.optimizer.call)
        if opt_param is None:
            return f"{name} is not handed `{optimizer.value}` as a parameter it never rebinds"
        opt_steps = self._steps_through(opt_param)
        if opt_steps is None or self._optimizer_step_sites(schedule.optimizer):
            return f"`{optimizer.value}` may be stepped elsewhere than in {name}"
        if not self._handed_only_to(optimizer, call, schedule):
            return (
                f"`{optimizer.value}` is read otherwise than as a method's receiver or an "
                f"argument of {name}"
            )
        if any(_runs_conditionally(s) for s in (step, *opt_steps)):
            return f"{name} steps its optimizer or scheduler in a conditional expression"
        if not _same_control(step, opt_steps):
            return (
                f"{name} steps `{param.name.value}` elsewhere than right after "
                f"`{opt_param.name.value}.step()`, under the same loops and conditions"
            )
        uneven = self._uneven_stepping([step], opt_steps)
        if uneven is not None:
            return uneven
        schedule.step_sites = [step]
        schedule.step_names = (opt_param.name.value, param.name.value)
        return True

    def _handed_across_files(self, schedule: SchedulePlan) -> bool | str:
        """A scheduler handed, with its optimizer, to a function of another file that steps
        both once per update (``analysis/stepped_together.py``, which that file's planner asks
        too: its ``step()`` goes there): True (sets ``step_names``); why not (a str); False when
        the scheduler's one read is not an argument of a call of another file's function.
        Here the scheduler's name is read only there, and the optimizer's only as a method's
        receiver or an argument of that call or of the scheduler, never stepped."""
        optimizer, scheduler = schedule.optimizer.target, schedule.outer.target
        cross_file = self.resolver.cross_file
        if not isinstance(optimizer, cst.Name) or not isinstance(scheduler, cst.Name):
            return False
        handing = self._one_argument_read(scheduler)
        callee = self.resolver.called_function(handing[0].func) if handing else None
        if cross_file is None or handing is None or callee is None:
            return False
        call, argument = handing
        found = cross_file.handed_scheduler(callee, call, argument)
        if found is None:
            return False
        name = f"{code_of(call.func).strip()}()"
        if isinstance(found, str):
            return f"{name} of another file: {found}"
        if self._optimizer_step_sites(schedule.optimizer):  # the call site hands it (the index)
            return f"`{optimizer.value}` is stepped elsewhere than in {name}"
        if not self._handed_only_to(optimizer, call, schedule):
            return (
                f"`{optimizer.value}` is read otherwise than as a method's receiver or an "
                f"argument of {name}"
            )
        schedule.step_names = (found.optimizer, found.scheduler)
        return True

    def _one_argument_read(self, name: cst.Name) -> tuple[cst.Call, cst.Arg] | None:
        """The call and argument that the one read of the variable ``name`` (assigned once,
        never ``global``/``nonlocal``, not a module global others may read) is, plainly."""
        scope = self.resolver.scopes.get(name)
        if scope is None or stepping.names_declared_shared(self.module, name.value):
            return None
        assignments = list(scope.assignments[name.value])  # type: ignore[attr-defined]
        if len(assignments) != 1 or isinstance(scope, GlobalScope):
            return None
        reads = [access.node for access in assignments[0].references]
        if len(reads) != 1:
            return None
        for call in self._module_calls():  # type: ignore[attr-defined]
            for argument in call.args:
                if argument.value is reads[0] and not argument.star:
                    return call, argument
        return None

    def _one_handing(self, name: cst.Name) -> tuple[cst.Call, cst.Param] | None:
        """The call of a function of this file, and its parameter, that the one read of the
        variable ``name`` (assigned once, never ``global``/``nonlocal``; a module global
        unknown to other files) is handed to as a plain argument; None for any other use."""
        scope = self.resolver.scopes.get(name)
        if scope is None or stepping.names_declared_shared(self.module, name.value):
            return None
        assignments = list(scope.assignments[name.value])  # type: ignore[attr-defined]
        if len(assignments) != 1:
            return None
        if isinstance(scope, GlobalScope) and self._global_shared(name.value):  # type: ignore[attr-defined]
            return None  # a module global: another file or globals() may read or rebind it
        reads = [access.node for access in assignments[0].references]
        if len(reads) != 1:
            return None
        for call in self._module_calls():  # type: ignore[attr-defined]
            for argument in call.args:
                if argument.value is reads[0]:
                    param = self.resolver.local_parameter(call, argument)
                    if param is None or not self._never_rebound(param):
                        return None
                    return call, param
        return None

    def _one_step_of(self, param: cst.Param, schedule: SchedulePlan) -> Site | str:
        """The one ``param.step()`` (no arguments) that is the only read of ``param``, with
        the scheduler the only value reaching it; else why not (after the function's name)."""
        uses = self.resolver.parameter_uses(param)
        steps = [s for s in self.plan.sites if any(s.receiver is u for u in uses)]
        if len(uses) != 1 or len(steps) != 1 or not self._is_step(steps[0]):
            return f"uses `{param.name.value}` otherwise than by one `.step()`"
        if steps[0].call.args:
            return f"calls `{param.name.value}.step()` with an argument (an epoch)"
        reached = self.resolver.reaching_values(uses[0], steps[0].enclosing_class)
        if reached is None or len(reached) != 1 or reached[0] is not schedule.outer.call:
            return f"may be handed another value than this scheduler as `{param.name.value}`"
        return steps[0]

    def _handed_param(self, call: cst.Call, name: cst.Name, value: cst.Call) -> cst.Param | None:
        """The parameter ``call`` hands the variable ``name`` to (its one argument naming
        it, plainly), never rebound in the function, which every call hands ``value``."""
        handed = [a for a in call.args if _mentions(a, name.value)]
        if len(handed) != 1 or handed[0].value is not _plain(handed[0].value):
            return None
        param = self.resolver.local_parameter(call, handed[0])
        uses = self.resolver.parameter_uses(param) if param is not None else []
        if param is None or not uses or not self._never_rebound(param):
            return None
        reached = self.resolver.reaching_values(uses[0], None)  # type: ignore[arg-type]
        if reached is None or len(reached) != 1 or reached[0] is not value:
            return None
        return param

    def _steps_through(self, param: cst.Param) -> list[Site] | None:
        """The optimizer steps (``opt.step()``, ``scaler.step(opt)``) through the parameter
        ``param``; None when the function reads it otherwise than as a method's receiver or
        a step's argument (``o = opt``, ``run(opt)``: that may step it too)."""
        uses = self.resolver.parameter_uses(param)
        steps = [s for s in self.plan.sites if any(self._stepped_optimizer(s) is u for u in uses)]
        function = steps[0].function if steps else None
        if function is None:
            return None
        allowed = {id(s.call) for s in steps}
        return steps if _receivers_or_arguments_of(function, uses, allowed) else None

    def _handed_only_to(self, optimizer: cst.Name, call: cst.Call, schedule: SchedulePlan) -> bool:
        """Whether every read of the variable ``optimizer`` is a method's receiver
        (``opt.zero_grad()``) or an argument of ``call`` or of the schedule's constructors."""
        scope = self.resolver.scopes.get(optimizer)
        if scope is None:
            return False
        reads = [
            access.node
            for assignment in scope.assignments[optimizer.value]  # type: ignore[attr-defined]
            for access in assignment.references
        ]
        allowed = {id(call), *(id(m.call) for m in schedule.calls)}
        return _receivers_or_arguments_of(self.module, reads, allowed)

    def _handed_optimizer(
        self, call: cst.Call, optimizer: cst.Name, schedule: SchedulePlan
    ) -> str | None:
        """The parameter ``call`` hands ``optimizer`` to (its one argument naming it), which
        every call of the function in this file gives that optimizer and the function never
        rebinds; None otherwise."""
        param = self._handed_param(call, optimizer, schedule.optimizer.call)
        return param.name.value if param is not None else None

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

    def _lr_written(self, schedule: SchedulePlan) -> str | None:
        """``opt.param_groups`` (or ``self.opt.param_groups``) when this file uses it otherwise
        than to read ``[0]["lr"]``: a write there changes the lr torch's scheduler works from
        (``for g in opt.param_groups: g["lr"] = ...``), which no folded schedule sees."""
        optimizer = schedule.optimizer.target
        if not isinstance(optimizer, (cst.Name, cst.Attribute)):
            return None
        groups = f"{code_of(optimizer).strip()}.param_groups"
        used = _use_but_lr_reads(self.module, groups)
        if used is not None:
            return f"`{groups}` at {self._place(used)}"
        cross_file = self.resolver.cross_file
        if isinstance(optimizer, cst.Attribute) and cross_file is not None:
            # a subclass or a callee in another file (`self.opt.param_groups` there)
            attribute = optimizer.attr.value
            other = cross_file.member_used_elsewhere(attribute, ("param_groups",))
            if other is not None:
                return f"`.{attribute}.param_groups` at {other}"
        return None

    def _metric_not_per_update(self, schedule: SchedulePlan, steps: list[Site]) -> str | None:
        """Why a scheduler that joins the chain (ReduceLROnPlateau) may not see its metric
        once per update: its chain transform counts updates, so its one ``step(metric)``
        (the metric its only argument) must run exactly once after each ``opt.step()``,
        under the same loops and conditions, nothing able to skip it in between."""
        if not steps:
            goes = self._where_it_goes(schedule.outer)
            return "its step(metric) is not called in this file" + (f" ({goes})" if goes else "")
        places = ", ".join(f"{self._place(s.statement)} in {_function_name(s)}" for s in steps)
        if len(steps) > 1:
            return f"its step(metric) is called {len(steps)} times ({places})"
        arguments = steps[0].call.args
        if len(arguments) != 1 or arguments[0].star:
            return f"its step() at {places} does not take the metric alone"
        optimizer_steps = self._optimizer_step_sites(schedule.optimizer)
        if any(_runs_conditionally(site) for site in (*steps, *optimizer_steps)):
            return (
                f"its step(metric) at {places} or the optimizer's step() is called in a "
                "conditional expression, so it may not run once per update"
            )
        if not _same_control(steps[0], optimizer_steps):
            where = "; ".join(
                f"{self._place(s.statement)} in {_function_name(s)}" for s in optimizer_steps
            )
            return (
                f"its step(metric) at {places} is not under the same loops and conditions as, "
                "and after, the optimizer's step()"
                + (f" (at {where})" if where else " (not seen in this file)")
                + ", so it does not run once per update (per epoch, say)"
            )
        return self._uneven_stepping(steps, optimizer_steps)

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

    def _leading_step(
        self, schedule: SchedulePlan, steps: list[Site], optimizer_steps: list[Site]
    ) -> str | None:
        """Why the one ``sched.step()`` running before the one ``opt.step()`` in its block,
        under the same loops and conditions, is not folded; None for other shapes. torch's
        update ``u`` (from 0) then uses the schedule at ``u + 1``: ``schedule(count + 1)``
        while every scheduler step is followed by its update, which an exception the forward
        or backward pass raises and code anywhere catches (an out-of-memory skip in a caller)
        breaks, and no proof from the file holds (s41 probe: 0.16 relative off torch when it
        was folded). The reason says so, with what else was seen between the two."""
        if len(steps) != 1 or len(optimizer_steps) != 1:
            return None
        (step,), (opt_step,) = steps, optimizer_steps
        if (
            step.controls != opt_step.controls
            or step.path[:-1] != opt_step.path[:-1]
            or step.statement is opt_step.statement
            or step.index >= opt_step.index
        ):
            return None
        seen = self._may_skip(step, opt_step)
        read = self._learning_rate_read(schedule, step)
        return (
            "it runs before the optimizer's step() (at "
            f"{self._place(opt_step.statement)}): torch's update u then uses the schedule at "
            "u + 1, `lambda count: schedule(count + 1)` only while every scheduler step is "
            "followed by its update, which an exception the forward or backward pass raises "
            "and code anywhere catches (an out-of-memory skip) breaks"
            + (f"; here {seen} between the two" if seen else "")
            + (f"; the learning rate is also read ({read})" if read else "")
        )

    def _learning_rate_read(self, schedule: SchedulePlan, step: Site) -> str | None:
        """``file:line`` of a use of the scheduler's name other than its construction and
        ``step``, or of ``param_groups`` (any receiver), in this file; None when none."""
        target = schedule.outer.target
        name = target.attr.value if isinstance(target, cst.Attribute) else None
        name = target.value if isinstance(target, cst.Name) else name
        if name is None:
            return "the scheduler is not bound to a name"
        own = {id(n) for n in cst_walk.walk(schedule.outer.statement)}
        own |= {id(n) for n in cst_walk.walk(step.statement)}
        for node in cst_walk.walk(self.module):
            if id(node) in own:
                continue
            if isinstance(node, cst.Name) and node.value in (name, "param_groups"):
                return f"`{node.value}` at {self._place(node)}"
        return None

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
        skip = self._may_skip(opt_step, step)
        if skip is None:
            return None
        return (
            f"{skip} between the optimizer's step() and this one can skip it, so it may not "
            "run once per update"
        )

    def _may_skip(self, first: Site, later: Site) -> str | None:
        """What between ``first`` and ``later`` (two sites of one block) may leave ``later``
        not run after ``first`` ran: a jump, a ``yield``/``await`` that may never resume, an
        exception a ``try``/``with`` around ``later`` in its loop may catch; None."""
        owner = self.collector.blocks[first.block]
        between = owner.body[first.index + 1 : later.index]  # type: ignore[attr-defined]
        if any(stepping.jumps(statement) for statement in between):
            return "a `continue`, `break`, `return` or `raise`"
        if any(stepping.suspends(statement) for statement in between):
            return "a `yield` or `await` (a caller may stop iterating)"
        catcher = self._catching_around(later) if between else None
        if catcher is not None:
            return f"an exception caught by the {catcher}"
        return None

    def _stepped_elsewhere(self, schedule: SchedulePlan) -> str | None:
        """A call of the file other than the plan's own (scheduler constructors, ``scaler.step``)
        handed the scheduler's optimizer (``warmup(opt)``): it may step it outside the loop the
        scheduler counts (before the scheduler is built, twice per iteration, after the loop),
        and torch's schedule follows its own steps, not the optimizer's updates."""
        optimizer = schedule.optimizer.target
        if optimizer is None:
            return None
        text = code_of(optimizer).strip()
        reached = self._attributes_used_elsewhere(schedule)
        if reached is not None:
            return reached
        hidden = self._read_out_of_sight(optimizer) if isinstance(optimizer, cst.Name) else None
        if hidden is not None:
            return (
                f"the optimizer is also read at {self._place(hidden)} (`{_short(hidden, 40)}`), "
                "which may step it outside the updates this scheduler counts (an alias, a "
                "container, a bound method)"
            )
        steppers = self._functions_calling(self.step_methods)
        own = {id(schedule.outer.call), *(id(m.call) for m in schedule.calls)}
        for call in self._module_calls():  # type: ignore[attr-defined]
            if id(call) in self.by_call:
                continue
            handed = [a for a in call.args if code_of(a.value).strip() == text]
            if handed and id(call) in own:
                continue  # a factory building this scheduler (`get_lr_scheduler(opt, n)`)
            if not handed:
                continue
            if _last_name(call.func) in steppers:
                where = ""
            else:
                other = self._steps_in_other_file(call)
                used = self._handed_optimizer_use(call, handed[0]) if other is None else None
                if other is None and used is None:
                    continue
                where = f" (its step at {other})" if other else f" (it is used at {used})"
            return (
                f"the optimizer is also handed to {_short(call.func, 40)}() at "
                f"{self._place(call)}{where}, which may step it outside "
                "the updates this scheduler counts (before it is built, twice per update, "
                "after the loop)"
            )
        return None

    def _handed_optimizer_use(self, call: cst.Call, argument: cst.Arg) -> str | None:
        """Where the function ``call`` calls (of this file or another) uses the parameter
        ``argument`` binds otherwise than as ``p.m(...)`` (no step, no ``load_state_dict`` or
        ``add_param_group``) or a read of ``p.param_groups[i]["lr"]``: handed on, aliased,
        stored or its lr written (``file:line``); None, or when the callee is not known."""
        methods = self.step_methods | _OPTIMIZER_CHANGES
        param = self.resolver.local_parameter(call, argument)
        if param is not None:
            if not self._never_rebound(param):
                return f"{self._place(param)} (`{param.name.value}` is rebound)"
            parents = self._parent_map()  # type: ignore[attr-defined]
            for use in self.resolver.parameter_uses(param):
                if self._handed_outside(use, parents):
                    continue  # `print(opt)`, `torch.save(opt)`: code outside the repository
                if not _read_as_optimizer(use, parents, methods):
                    return f"{self._place(use)} (`{_short(self._statement_holding(use), 40)}`)"
            return None
        cross_file = self.resolver.cross_file
        callee = self.resolver.called_function(call.func)
        if cross_file is None or callee is None:
            return None
        return cross_file.handed_optimizer_use(callee, call, argument, methods)

    def _handed_outside(self, use: cst.CSTNode, parents: dict[cst.CSTNode, cst.CSTNode]) -> bool:
        """Whether ``use`` is a plain argument of a call of a builtin or of a function
        imported from outside the repository (not a function of this file)."""
        argument = parents.get(use)
        call = parents.get(argument) if isinstance(argument, cst.Arg) else None
        if not isinstance(call, cst.Call) or argument.value is not use or argument.star:  # type: ignore[union-attr]
            return False
        definition = self.resolver.local_definition(call.func)
        if definition is not None and not isinstance(definition, (cst.Import, cst.ImportFrom)):
            return False  # a function or class of this file, a variable
        callee = self.resolver.called_function(call.func)
        if callee is None:
            return False
        cross_file = self.resolver.cross_file
        return cross_file is None or cross_file.outside_repository(callee)

    def _attributes_used_elsewhere(self, schedule: SchedulePlan) -> str | None:
        """For a scheduler held as an attribute (``self.sched``): why another file of the
        repository may step it or change its lr (``<x>.sched.step()``, or a file naming the
        class that uses the scheduler's or optimizer's attribute: a subclass, an alias); None."""
        optimizer = schedule.optimizer.target
        scheduler = schedule.outer.target
        cross_file = self.resolver.cross_file
        if isinstance(scheduler, cst.Attribute) and cross_file is not None:
            # `self.sched.step()` of a subclass (or of code given the object) in another file
            attribute = scheduler.attr.value
            other = cross_file.member_used_elsewhere(attribute, self.step_methods)
            if other is not None:
                return (
                    f"`.{attribute}.step()` is also called at {other}, which steps the "
                    "scheduler outside the updates it counts here"
                )
            owner = schedule.outer.enclosing_class
            held = {attribute}
            if isinstance(optimizer, cst.Attribute):
                held.add(optimizer.attr.value)
            reached = (
                None
                if owner is None
                else cross_file.attribute_reached_elsewhere(owner.name.value, held)
            )
            if reached is not None:
                return (
                    f"another file naming `{owner.name.value}` uses its scheduler or optimizer "
                    f"at {reached} (a subclass, an alias), which may step it or change its lr "
                    "outside the updates this scheduler counts"
                )
            used = cross_file.attribute_used_elsewhere(held)
            if used is not None:  # `def bump(t): s = t.sched; s.step()`, a mixin's self.sched
                return (
                    f"another file of the repository reaches an attribute named like its "
                    f"scheduler or optimizer at {used} (a parameter of unknown type, an alias, "
                    "a mixin), which may step it or change its lr outside the updates this "
                    "scheduler counts"
                )
        return None

    def _read_out_of_sight(self, optimizer: cst.Name) -> cst.CSTNode | None:
        """The first statement reading the variable ``optimizer`` otherwise than as ``opt.m(...)``,
        ``opt.attr`` (not a step method) or a plain argument of a call (whose callee
        ``_stepped_elsewhere`` reads): an alias, a container, ``opt.step`` uncalled, ``return
        opt``; None."""
        scope = self.resolver.scopes.get(optimizer)
        if scope is None:
            return None
        parents = self._parent_map()  # type: ignore[attr-defined]
        accesses = (
            access
            for assignment in scope.assignments[optimizer.value]  # type: ignore[attr-defined]
            for access in assignment.references
        )
        for access in self.resolver.in_tree_order(accesses):  # the first in the file is named
            read = access.node
            parent = parents.get(read)
            if isinstance(parent, cst.Attribute) and parent.value is read:
                called = parents.get(parent)
                is_call = isinstance(called, cst.Call) and called.func is parent
                if is_call or parent.attr.value not in self.step_methods:
                    continue
            elif isinstance(parent, cst.Arg) and parent.value is read and not parent.star:
                continue
            statement = self._statement_holding(read)
            if isinstance(statement, cst.Return) and _returned_plainly(statement, read):
                continue  # a builder's `return opt, sched`: its callers are read there
            return statement
        return None

    def _statement_holding(self, node: cst.CSTNode) -> cst.CSTNode:
        """The (small) statement ``node`` is part of (``node`` itself when none is found)."""
        parents = self._parent_map()  # type: ignore[attr-defined]
        current: cst.CSTNode | None = node
        while current is not None and not isinstance(
            current, (cst.BaseSmallStatement, cst.BaseCompoundStatement)
        ):
            current = parents.get(current)
        return current if current is not None else node

    def _steps_in_other_file(self, call: cst.Call) -> str | None:
        """``file:line`` of a step-method call in the function of another file of the
        repository that ``call`` calls (or of that file, when it fails to parse); else None."""
        cross_file = self.resolver.cross_file
        callee = self.resolver.called_function(call.func)
        if cross_file is None or callee is None:
            return None
        return cross_file.steps_in(callee, self.step_methods)

    def _functions_calling(self, methods: Collection[str]) -> frozenset[str]:
        """The names of the functions, methods and classes of the file whose own body (a
        class's: any of its methods) calls one of ``methods`` on something (``opt.step()``;
        ``Warm(opt).run()`` with ``run`` stepping what ``Warm`` stored)."""
        return frozenset(
            node.name.value
            for node in cst_walk.walk(self.module)
            if isinstance(node, (cst.FunctionDef, cst.ClassDef))
            and _calls_a_method(node.body, methods)
        )

    def _catching_around(self, step: Site) -> str | None:
        """The ``try`` (with ``except`` or ``finally``) or ``with`` statement around ``step``
        inside its innermost loop (``file:line``), which may go on past an exception raised
        before ``step`` runs (``contextlib.suppress``, ``except ValueError: pass``); None."""
        loops = [c for c in step.controls if isinstance(c, (cst.For, cst.While))]
        stop = loops[-1] if loops else None
        node = self.collector.parents.get(id(step.statement))
        while node is not None and node is not stop:
            if isinstance(node, (cst.Try, cst.TryStar)):
                return f"`try` at {self._place(node)}"
            if isinstance(node, cst.With):
                return f"`with` at {self._place(node)}"
            node = self.collector.parents.get(id(node))
        return None


_OPTIMIZER_CHANGES = frozenset({"load_state_dict", "add_param_group"})  # its lr, its groups


def _read_as_optimizer(
    use: cst.CSTNode, parents: dict[cst.CSTNode, cst.CSTNode], methods: Collection[str]
) -> bool:
    """Whether ``use`` is read as ``use.m(...)`` (``m`` not among ``methods``) or as
    ``use.param_groups[i]["lr"]`` (not written)."""
    member = parents.get(use)
    if not isinstance(member, cst.Attribute) or member.value is not use:
        return False
    above = parents.get(member)
    if isinstance(above, cst.Call) and above.func is member:
        return member.attr.value not in methods
    top = parents.get(above) if isinstance(above, cst.Subscript) else None
    if member.attr.value != "param_groups" or not isinstance(top, cst.Subscript):
        return False
    if top.value is not above or len(top.slice) != 1:
        return False
    index = top.slice[0].slice
    is_lr = isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString)
    if not is_lr or index.value.evaluated_value != "lr":  # type: ignore[union-attr]
        return False
    return not _written(top, parents)


def _written(node: cst.CSTNode, parents: dict[cst.CSTNode, cst.CSTNode]) -> bool:
    """Whether ``node`` is an assignment's target (``x = ...``, ``x += ...``, ``del x``)."""
    parent = parents.get(node)
    if isinstance(parent, cst.AssignTarget):
        return parent.target is node
    if isinstance(parent, (cst.AugAssign, cst.AnnAssign)):
        return parent.target is node
    return isinstance(parent, cst.Del)


def _returned_plainly(statement: cst.Return, read: cst.CSTNode) -> bool:
    """Whether ``read`` is the value ``statement`` returns, or an element of the tuple it
    returns (``return opt, sched``)."""
    value = statement.value
    if value is read:
        return True
    return isinstance(value, cst.Tuple) and any(e.value is read for e in value.elements)


def _receivers_or_arguments_of(
    root: cst.CSTNode, reads: list[cst.CSTNode], calls: Collection[int]
) -> bool:
    """Whether each of ``reads`` (nodes under ``root``) is the receiver of a method call
    (``opt.zero_grad()``) or a plain argument of one of the calls whose ids are ``calls``."""
    wanted = {id(read) for read in reads}
    fine: set[int] = set()

    class _Find(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            func = node.func
            if isinstance(func, cst.Attribute) and id(func.value) in wanted:
                fine.add(id(func.value))
            if id(node) in calls:
                fine.update(id(a.value) for a in node.args if id(a.value) in wanted)

    cst_walk.visit(root, _Find())
    return wanted <= fine
