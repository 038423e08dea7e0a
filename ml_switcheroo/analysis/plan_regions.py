"""``Planner`` on training-step regions: the statements from the forward pass to ``opt.step()``
that share one escape hatch.

Split from ``plan.py`` by ``tools/split_plan.py``: the methods of ``RegionFacts`` run on
``Planner`` (one of its bases) and use the state ``Planner.__init__`` sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.constant_guard import (
    positive_count,
)
from ml_switcheroo.analysis.parameters import (
    parameters_argument,
)
from ml_switcheroo.analysis.plan_facts import Region, Site
from ml_switcheroo.analysis.plan_places import (
    _calls_a_method,
    _lone_backward,
    _loss_name,
    _movable,
    _parameters_of,
    changed_in_place,
)
from ml_switcheroo.analysis.plan_walks import (
    _bound_names,
    _calls_name,
    _names,
    _owner_of,
    _walk_calls,
)
from ml_switcheroo.analysis.statements import loss_branch_names, loss_loop_names
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.roles import (
    SCALER_STEP,
    STEP,
    STEPS,
    ZERO_GRAD,
)
from ml_switcheroo.spec.signature import code_of, dotted_name


def _runs_in_its_statement(site: Site) -> bool:
    """The call runs where its statement runs: not in a lambda, function or class defined
    there (``do = lambda: opt.step()`` steps when ``do()`` runs, if ever; s24d: the NNX
    translation dropped the lambda and kept ``do()``)."""
    nested = (cst.Lambda, cst.FunctionDef, cst.ClassDef)
    return any(n is site.call for n in cst_walk.walk(site.statement, nested))


class RegionFacts:
    """The methods of ``Planner`` on the concern of ``plan_regions`` (a mixin)."""

    # ------------------------------------------------------------------ training-step regions

    def _plan_regions(self) -> None:
        anchors = [
            s
            for s in self.plan.sites
            if s.role in STEPS and self._is_step(s) and _runs_in_its_statement(s)
        ]
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
                if last + 1 < len(body) and self._is_scaler_update(
                    body[last + 1], anchor, backward
                ):
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
        before ``fake = netG(noise)``); so does a ``for`` statement of plain assignments
        binding one (``statements.loss_loop_names``: fast_neural_style's style-loss loop; the
        NNX step decides whether its loss function takes it in).
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
            looped = {
                name.value
                for name in loss_loop_names(previous) or loss_branch_names(previous) or ()
            }
            if (_bound_names(previous) | looped) & needed or summed or changed_input:
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

    def _is_scaler_update(
        self, statement: cst.BaseStatement, anchor: Site, backward: Site | None = None
    ) -> bool:
        """``scaler.update()`` of the step's scaler: of ``scaler.step(opt)``, or (s37) of
        ``scaler.scale(loss).backward()`` before a plain ``opt.step()`` (after
        ``scaler.unscale_(opt)``; without it the step's checks escape)."""
        scaler = self._scaler_name(anchor, backward)
        if scaler is None:
            return False
        update = self.scaler_methods.update
        return update is not None and code_of(statement).strip().startswith(f"{scaler}.{update}(")
