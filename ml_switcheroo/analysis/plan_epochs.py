"""``Planner`` on schedulers stepped once per epoch: the batch loop that counts the updates, steps
handed to other functions, and updates the loop does not see.

Split from ``plan.py`` by ``tools/split_plan.py``: the methods of ``EpochFacts`` run on
``Planner`` (one of its bases) and use the state ``Planner.__init__`` sets.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst
from libcst.metadata import Assignment

from ml_switcheroo.analysis import stepping
from ml_switcheroo.analysis.loader_length import LoaderFacts, measured_read
from ml_switcheroo.analysis.plan_facts import SchedulePlan, Site
from ml_switcheroo.analysis.plan_walks import (
    _arguments_mention,
    _attr_uses,
    _calls_in,
    _calls_name,
    _calls_of,
    _calls_self_method,
    _defs_named,
    _direct_call,
    _enclosing_def,
    _function_name,
    _is_self_call,
    _mentions,
    _method_calls_other_than,
    _method_parameter,
    _method_receivers,
    _references_of,
    _self_name,
    _short,
)
from ml_switcheroo.spec.roles import (
    SCHEDULER,
    STEP,
    ZERO_GRAD,
)
from ml_switcheroo.spec.signature import code_of


class EpochFacts:
    """The methods of ``Planner`` on the concern of ``plan_epochs`` (a mixin)."""

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

    def _inferred_length(self, step: Site, schedule: SchedulePlan) -> tuple[str | None, str]:
        """Without --steps-per-epoch: ``len(X)`` when the batch loop that steps the optimizer
        once per batch (in the loop around it, or in the function the epoch loop calls:
        ``_per_epoch``) iterates ``X`` (or ``enumerate(X)``; through the parameter of that
        function the call hands ``X`` to) and ``len(X)`` is provably the batches of each pass
        (``analysis/loader_length.py``); else None and why not (empty: not such a loop). The
        caller then runs the --steps-per-epoch checks with it."""
        if id(step.call) in self._handed_problems:
            return None, ""  # a function of another file
        found = self._epoch_calls.get(id(step.call))
        stepped = self._optimizer_step_sites(schedule.optimizer) if found is None else found[1]
        if len(stepped) != 1 or not stepped[0].controls:
            return None, ""
        loop = stepped[0].controls[-1]
        if not isinstance(loop, cst.For):
            return None, ""
        iterated = loop.iter
        if (
            isinstance(iterated, cst.Call)
            and isinstance(iterated.func, cst.Name)
            and iterated.func.value == "enumerate"
            and len(iterated.args) == 1
        ):
            iterated = iterated.args[0].value
        if not isinstance(iterated, cst.Name):
            return None, f"the batch loop iterates `{_short(loop.iter, 40)}`, not a name"
        facts = LoaderFacts(
            self.resolver.scopes,  # type: ignore[arg-type]
            self.resolver.imported_names,
            self._parent_map(),
            self.resolver.map,
            self.resolver.uses_of,
        )
        if not facts.builtin_len(schedule.outer.call):
            return None, "`len` is not the builtin where the schedule is built"
        loader, handed = iterated, ()
        if found is not None:
            call = found[0]
            function = stepped[0].function
            param = next(
                (
                    p
                    for p in (
                        self.resolver.local_parameter(call, arg)
                        or (
                            _method_parameter(function, call, arg)  # type: ignore[arg-type]
                            if _is_self_call(call)
                            else None
                        )
                        for arg in call.args
                    )
                    if p is not None and p.name.value == iterated.value
                ),
                None,
            )
            if param is not None:
                passed = [
                    a.value
                    for a in call.args
                    if (
                        self.resolver.local_parameter(call, a)
                        or (
                            _method_parameter(function, call, a)  # type: ignore[arg-type]
                            if _is_self_call(call)
                            else None
                        )
                    )
                    is param
                ]
                if len(passed) != 1 or not isinstance(passed[0], cst.Name):
                    return None, f"{_short(call, 40)} does not hand the loader as a name"
                builtin = facts.builtin_len(param)
                parent = self._parent_map()
                for use in self.resolver.parameter_uses(param):
                    if not measured_read(use, parent, builtin):
                        return None, (
                            f"`{iterated.value}` is used in {_short(call.func, 30)}() otherwise "
                            "than iterated or measured with len()"
                        )
                loader, handed = passed[0], (call,)
        problem = facts.loader_problem(loader, handed)
        if problem is not None:
            return None, problem
        return f"len({loader.value})", ""

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
        if found is None:  # stepped in the loop around the optimizer's loop
            return self._inline_batch_loop_problem(step, schedule)
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

    def _inline_batch_loop_problem(self, step: Site, schedule: SchedulePlan) -> str | None:
        """``_batch_loop_problem`` for a scheduler stepped in the loop around the optimizer's
        loop: one optimizer step, directly in the body of a ``for`` loop of the epoch loop's
        body, nothing that can leave or skip the rest of that loop; with ``len(X)`` as
        --steps-per-epoch, that loop iterating ``X`` or ``enumerate(X)``."""
        optimizer_steps = self._optimizer_step_sites(schedule.optimizer)
        if len(optimizer_steps) != 1:
            return (
                f"the optimizer is stepped in {len(optimizer_steps)} places, so an epoch may "
                f"have another number of updates than --steps-per-epoch ({self.steps_per_epoch})"
            )
        (opt_step,) = optimizer_steps
        epoch_loop = step.controls[-1]
        loop = opt_step.controls[-1] if opt_step.controls else None
        epoch_body = list(epoch_loop.body.body)  # type: ignore[attr-defined]
        if (
            not isinstance(loop, cst.For)
            or opt_step.block != id(loop.body)
            or loop not in epoch_body
        ):
            return (
                "the optimizer is not stepped directly in a `for` loop of the epoch loop's body "
                f"({self._place(opt_step.statement)}: under a condition, say), so how often per "
                "epoch is unknown"
            )
        jump = next((s for s in loop.body.body if stepping.leaves_loop(s)), None)  # type: ignore[attr-defined]
        if jump is not None:
            return (
                f"the batch loop can be left or skipped early ({self._place(jump)}), so an "
                f"epoch may have fewer updates than --steps-per-epoch ({self.steps_per_epoch})"
            )
        measured = self._measured_length()
        if measured is None:
            return None  # a number or another expression: the user's count of updates
        iterated = loop.iter
        if (
            isinstance(iterated, cst.Call)
            and code_of(iterated.func).strip() == "enumerate"
            and len(iterated.args) == 1
            and iterated.args[0].keyword is None
            and not iterated.args[0].star
        ):
            iterated = iterated.args[0].value
        if code_of(iterated).strip() != measured:
            return (
                f"the batch loop iterates `{_short(loop.iter, 40)}`, not `{measured}` of "
                f"--steps-per-epoch 'len({measured})', so an epoch may have another number "
                "of updates"
            )
        return None

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
            if optimizer is None:
                return ", and the optimizer's step() is not found in this file"
            # not "is not in this file": the step may be in this file under another name
            # (``opt = t.opt; opt.step()``), which this search does not follow
            return (
                f", and no `{code_of(optimizer).strip()}.step()` is found in this file (it "
                "may be stepped under another name or by another file)"
            )
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

    @staticmethod
    def _steps_after(loop_body: cst.BaseSuite, updates: int, step: int) -> bool:
        """The scheduler's statement (index ``step`` in ``loop_body``) runs after the one that
        updates (``updates``), with no ``continue``/``break``/``return``/``raise`` between."""
        between = loop_body.body[updates + 1 : step]  # type: ignore[attr-defined]
        return updates < step and not any(stepping.jumps(statement) for statement in between)
