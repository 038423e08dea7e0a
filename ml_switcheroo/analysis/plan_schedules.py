"""``Planner`` on LR schedulers: attaching each scheduler (and factory-built schedules, warmup
pairs) to its optimizer, and the statements to move so that the schedule precedes the optimizer.

Split from ``plan.py`` by ``tools/split_plan.py``: the methods of ``ScheduleFacts`` run on
``Planner`` (one of its bases) and use the state ``Planner.__init__`` sets.
"""

from __future__ import annotations

from contextlib import suppress

import libcst as cst
from libcst.metadata import BuiltinScope

from ml_switcheroo.analysis import cst_walk, stepping
from ml_switcheroo.analysis.factories import (
    BUILTIN_NAMES,
    FactoryCall,
    bound_arguments,
    lambda_parameters,
    parameter_of,
    read_names,
)
from ml_switcheroo.analysis.hidden_code import HiddenMethod, fired
from ml_switcheroo.analysis.parameters import (
    parameters_argument,
)
from ml_switcheroo.analysis.plan_facts import SchedulePlan, Site, Warmup
from ml_switcheroo.analysis.plan_places import (
    _combined_into,
    _elements,
    _optimizer_argument,
    _overlaps,
    _paths,
    _schedule_values,
    _store_paths,
)
from ml_switcheroo.analysis.plan_walks import (
    _declared_global,
    _function_arguments,
    _function_name,
    _impure_calls,
    _mentions,
    _names,
    _short,
    defines_hidden_code,
    may_bind,
    may_run_code,
)
from ml_switcheroo.analysis.purity import is_pure
from ml_switcheroo.analysis.schedule_functions import FunctionFacts, function_problem
from ml_switcheroo.spec import findings
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.roles import (
    CONSTRUCTOR,
    SCHEDULER,
)
from ml_switcheroo.spec.signature import code_of, dotted_name


class ScheduleFacts:
    """The methods of ``Planner`` on the concern of ``plan_schedules`` (a mixin)."""

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
                if self._refused_unbound(site):
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

    def _refused_unbound(self, site: Site) -> bool:
        """Escape a scheduler call that does not bind to the map's (torch's) signature with
        that reason (``StepLR(opt, 3, verbos=True)``: torch 2.13 raises TypeError),
        not as one without a translated optimizer: whether the call escaped."""
        assert site.entry is not None
        try:
            site.entry.signature.bind(site.call)
        except Untranslatable as error:
            self.plan.escapes.setdefault(self.plan.key_of(site.call), error)
            return True
        return False

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
        hidden = self._hidden_between(optimizer, statement_members, move)
        if hidden is not None:
            self._refuse(outer, findings.SCHEDULE_MOVE_PAST_HIDDEN_CODE, **hidden)
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
        if schedule.per_epoch is not None and move == "up":  # `--steps-per-epoch` moves up too
            changed = self._per_epoch_changed(optimizer, statement_members, schedule.per_epoch)
            if changed is not None:
                self._refuse(outer, findings.SCHEDULE_MOVE_PAST_CHANGE, statement=changed)
                return
            hidden = self._hidden_between(optimizer, statement_members, move, schedule.per_epoch)
            if hidden is not None:
                self._refuse(outer, findings.SCHEDULE_MOVE_PAST_HIDDEN_CODE, **hidden)
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
            for argument, traced in _function_arguments(site):
                problem = function_problem(argument, built, facts, traced)
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
        for node in self._module_calls():  # type: ignore[attr-defined]
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
        return self._changed_for(moved, self._between(optimizer, members))

    def _changed_for(
        self, moved: list[cst.BaseExpression], between: list[cst.BaseStatement]
    ) -> str | None:
        """``_changed_between`` for the values that move (``moved``) past ``between``. A bare
        name holding a value that may be mutable (``betas = [0.9, 0.999]``, a parameter) is
        changed, like a path, by any store through an attribute or a subscript (``betas[0] =
        0.5``, through an alias too), ``del``, or a call that is not harmless (``tweak()``)."""
        paths = [path for value in moved for path in _paths(value)]
        names = {n.value for value in moved for n in _names(value)}
        mutable = any(self._may_be_mutable(n) for value in moved for n in _names(value))
        rebindable = {n for n in names if self._rebindable_by_calls(n)}
        for statement in between:
            if names and any(may_bind(n, names) for n in cst_walk.walk(statement)):
                return code_of(statement).strip()  # `case lr:`, `exec(...)` (probe s31 G7)
            calls = _impure_calls([statement], self._harmless_call)
            mentioned = {n.value for call in calls for n in _names(call)}
            if (paths and (_store_paths(statement) or calls)) or names & mentioned:
                return code_of(statement).strip()
            if paths and self._hidden_code() and may_run_code(statement):
                # `y = p.x` whose getter writes `cfg.lr` (probe s35O F5); a class of another
                # file: `_hidden_between` (probe s37 H1)
                return code_of(statement).strip()
            if rebindable and (calls or may_run_code(statement)):
                # `bump()` whose `global MAX` rebinds it (probe s35O F2), or code run without
                # a call written: `@register`, a class body, `p.x`, `p + 1` (F4)
                return code_of(statement).strip()
            if mutable and (_store_paths(statement) or calls):
                return code_of(statement).strip()
        return None

    def _hidden_between(
        self, optimizer: Site, members: list[Site], move: str, per_epoch: str | None = None
    ) -> dict[str, str] | None:
        """Probe s37 H1: a statement between the optimizer and its schedule statements that
        may run, without a call written, a method of a class of another file of the
        repository whose body may change a value (``hidden_code.fired``: ``y = hp.bump``
        whose property writes ``hp.lr``, read by ``max_lr=hp.lr`` moved up past it), when
        the values that move read an attribute path or a name that may hold a mutable
        object. Only the methods the statement's syntax can reach count (an item access a
        ``__getitem__``, ``.bump`` a property ``bump``): a ``Dataset.__getitem__`` elsewhere
        does not stop a schedule built after ``steps = len(loader) * epochs``. (The file's
        own classes are ``_hidden_code``'s.) The values of the finding, or None."""
        cross_file = self.resolver.cross_file
        if cross_file is None:
            return None
        optimizer_values = self._optimizer_values(optimizer)
        if optimizer_values is None:
            return None  # the optimizer's own hook reports the call
        moved = _schedule_values(members) if move == "up" else optimizer_values
        if per_epoch is not None:
            with suppress(cst.ParserSyntaxError):  # else refused where the option is read
                moved = [*moved, cst.parse_expression(per_epoch)]
        paths = [path for value in moved for path in _paths(value)]
        mutable = any(self._may_be_mutable(n) for value in moved for n in _names(value))
        if not paths and not mutable:
            return None
        methods: tuple[HiddenMethod, ...] | None = None
        for statement in self._between(optimizer, members):
            if not may_run_code(statement):
                continue
            if methods is None:
                methods = cross_file.hidden_methods_elsewhere()
            method = fired(statement, methods)
            if method is not None:
                return {"statement": code_of(statement).strip(), "method": method.shown()}
        return None

    def _hidden_code(self) -> bool:
        """Whether a class of this file runs code that may change a value on attribute or
        item access or an operator (``defines_hidden_code``), computed once."""
        if self._runs_hidden_code is None:
            self._runs_hidden_code = defines_hidden_code(self.module)
        return self._runs_hidden_code

    def _rebindable_by_calls(self, name: str) -> bool:
        """Whether a call may rebind the variable ``name`` without naming it: a function of
        this file declares it ``global`` or ``nonlocal``, another file may write this
        module's global of that name, or the module writes its globals by name
        (``Plan.global_shared``)."""
        if self._declared_names is None:
            self._declared_names = frozenset(_declared_global(self.module))
        shared = self._global_shared(name)  # type: ignore[attr-defined]
        return name in self._declared_names or bool(shared)

    def _may_be_mutable(self, name: cst.Name) -> bool:
        """Whether the variable ``name`` may hold a mutable object: it is bound in this file
        (not an import, not a builtin) to something but a number, string, bool or None
        literal (or a tuple of them) on some binding."""
        bindings = self.resolver.binding_nodes(name)
        if not bindings:
            return False  # a builtin, an undefined name
        for binding in bindings:
            if isinstance(binding, (cst.Import, cst.ImportFrom, cst.ImportAlias)):
                return False
            value = self.resolver.bindings.get(binding) if isinstance(binding, cst.Name) else None
            if not isinstance(value, cst.BaseExpression) or not _immutable_literal(value):
                return True
        return False

    def _per_epoch_changed(
        self, optimizer: Site, members: list[Site], expression: str
    ) -> str | None:
        """A statement between the optimizer and its schedule that binds, changes or reads a
        name of the ``--steps-per-epoch`` expression, which moves up with the schedule
        (``loader = loader[:4]``, or ``train_loader = DataLoader(...)`` binding it there)."""
        try:
            parsed = cst.parse_expression(expression)
        except cst.ParserSyntaxError:
            return None  # the option is refused where it is read
        between = self._between(optimizer, members)
        words = {n.value for n in _names(parsed)}
        for statement in between:
            if words & {n.value for n in _names(statement)}:
                return code_of(statement).strip()
        return self._changed_for([parsed], between)

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
        a tensor literal, one of the map's ``python_values`` (``dist.get_world_size()``), one of
        its ``pure_calls`` of such arguments (``math.ceil(len(loader) / k)``)."""
        if is_pure(call) or self._tensor_literal(call):
            return True
        names = self.resolver.imported_names(call.func)
        if names and all(name in self.resolver.map.pure_calls for name in names):
            return all(a.star == "" and self._harmless_value(a.value) for a in call.args)
        values = self.resolver.map.tensor_values.python_values
        return any(name in values for name in names)

    def _harmless_value(self, value: cst.BaseExpression) -> bool:
        """An argument of a pure call that runs nothing: ``is_pure`` or a harmless call."""
        if isinstance(value, cst.Call):
            return self._harmless_call(value)
        return is_pure(value)

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


def _immutable_literal(value: cst.BaseExpression) -> bool:
    """A number, string, bool or None literal (signed), or a tuple of them."""
    if isinstance(value, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString)):
        return True
    if isinstance(value, cst.Name):
        return value.value in ("True", "False", "None")
    if isinstance(value, cst.UnaryOperation):
        return _immutable_literal(value.expression)
    if isinstance(value, cst.Tuple):
        return all(_immutable_literal(e.value) for e in value.elements)
    return False
