"""Torch-only uses of a translated optimizer or scheduler, found before rewriting.

Once ``opt = torch.optim.Adam(...)`` is translated (a functional optimizer), every use of ``opt``
that is not a translated consumer (``opt.step()``, ``opt.zero_grad()``, a wired scheduler or
clip call, a wired member such as ``opt.state_dict()``) still treats it as a torch optimizer:
``pickle.dump(opt, f)``, ``isinstance(opt, Adam)``, ``hook = opt.step``, ``opt.foo``,
``return opt``, ``Trainer(optimizer=torch.optim.Adam(...))``... ``TorchOnlyFinder`` follows the
value (a variable, ``self.x`` in its class, the parameter of a function of the file that every
caller passes it to, or the constructor call itself) to each use and records the uses that need
an escape hatch, with the text the map gives (the type's ``translated`` block, or the
``torch_only_calls`` entry of the function it is passed to). The engine marks them only when
the constructor really is translated.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.site_key import SiteKey
from ml_switcheroo.analysis.stored import NotStored, owner_of
from ml_switcheroo.spec.roles import SCHEDULER
from ml_switcheroo.spec.semantic_map import TorchOnlyText, Translated
from ml_switcheroo.spec.signature import code_of

_DESCRIPTION_LIMIT = 100


@dataclass(eq=False)
class TorchOnlyUse:
    """One statement's use of a translated value as the torch object."""

    origin: Any  # the constructor's plan Site: marked only if it translates
    node: cst.CSTNode  # what the report points at
    text: TorchOnlyText
    names: dict[str, str]  # name, use: the text's placeholders
    owner: str  # whose state ``{state}`` names: the value's name, or ``opt`` for an expression

    def render(self, text: str, translation: str, state_name: str) -> str:
        """``text`` with its placeholders filled (``translation``: the constructor's translated
        code; ``state_name``: the target's name of ``{x}``'s state)."""
        name, use = self.names["name"], self.names["use"]
        state = state_name.format(x=self.owner)
        names = {"name": name, "state": state, "use": use, "translation": translation}
        for key, value in names.items():
            text = text.replace("{" + key + "}", value)
        return text


@dataclass(frozen=True)
class _Handle:
    """A way the code reaches the translated value: uses of one binding."""

    origin: Any
    name: str
    translated: Translated
    type_name: str
    uses: tuple[cst.CSTNode, ...]
    enclosing_class: cst.ClassDef | None


class TorchOnlyFinder:
    """Finds the torch-only uses of the values a file's wired constructors build."""

    def __init__(self, planner: Any, constructor_roles: frozenset[str]) -> None:
        self.planner = planner
        self.resolver = planner.resolver
        self.map = planner.resolver.map
        self.collector = planner.collector
        self.constructor_roles = constructor_roles  # the roles of the values followed
        # statement -> (id(node), value name) -> use (the inner ids never leave the finder)
        self.found: dict[SiteKey, dict[tuple[int, str], TorchOnlyUse]] = {}
        self.statements: list[cst.BaseStatement] = []  # the statements ``found`` keys
        self._followed: set[int] = set()

    def find(self) -> dict[SiteKey, list[TorchOnlyUse]]:
        """A statement's key -> the torch-only uses in it."""
        for site in self.planner.plan.sites:
            if site.role not in self.constructor_roles or not self._is_value(site):
                continue
            translated = self._translated(site)
            if translated is not None:
                self._follow_site(site, translated)
        return {key: list(uses.values()) for key, uses in self.found.items()}

    # ------------------------------------------------------------------ handles

    def _is_value(self, site: Any) -> bool:
        """An optimizer constructor, or a scheduler linked to one (not a component inside
        another scheduler's call)."""
        if site.role == SCHEDULER:
            scheduled = self.planner.plan.schedule_of(site.call) is not None
            return scheduled and not self._in_wired_call(site)
        return True

    def _in_wired_call(self, site: Any) -> bool:
        return site.parent_call is not None and id(site.parent_call) in self.planner.by_call

    def _translated(self, site: Any) -> tuple[str, Translated] | None:
        type_name = site.entry.returns if site.entry is not None else None
        entry = self.map.types.get(type_name) if type_name else None
        if entry is None or entry.translated is None:
            return None
        return type_name, entry.translated

    def _follow_site(self, site: Any, translated: tuple[str, Translated]) -> None:
        type_name, text = translated
        target = site.target
        if isinstance(target, cst.Name):
            uses = tuple(self.resolver.uses_of(target))
            handle = _Handle(site, target.value, text, type_name, uses, None)
            self._follow(handle)
            self._read_by_other_files(handle, target, site.statement)
        elif self.resolver.is_self_attribute(target, site.enclosing_class):
            uses = tuple(_self_attribute_uses(site.enclosing_class, target, self.resolver))
            name = code_of(target).strip()
            self._follow(_Handle(site, name, text, type_name, uses, site.enclosing_class))
        elif not self._in_wired_call(site):
            name = f"{code_of(site.call.func).strip()}(...)"
            text = replace(text, text=text.inline or text.text)
            handle = _Handle(site, name, text, type_name, (site.call,), site.enclosing_class)
            self._use(handle, site.call, site.statement)

    def _read_by_other_files(
        self, handle: _Handle, target: cst.Name, statement: cst.BaseStatement
    ) -> None:
        """A module-level variable (``global opt`` included) that another file of the
        repository reads keeps torch calls there: the binding is escaped, naming the place."""
        cross_file = getattr(self.resolver, "cross_file", None)
        if cross_file is None or not self.resolver.binds_module_global(target):
            return
        reason = cross_file.global_read_elsewhere(target.value)
        if reason is not None:
            self._mark(handle, statement, target, handle.translated.text, reason)

    def _follow(self, handle: _Handle) -> None:
        for use in handle.uses:
            statement = self._statement_of(use)
            if statement is None or self.planner.plan.region_at(statement) is not None:
                continue  # in an escape hatch already (earlier run, or a training step)
            self._use(handle, use, statement)

    def _statement_of(self, use: cst.CSTNode) -> cst.BaseStatement | None:
        name = use.value if isinstance(use, cst.Attribute) else use
        position = self.collector.name_positions.get(id(name))
        if position is None:
            return None
        block, index = position
        return self.collector.blocks[block].body[index]  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ one use

    def _use(self, handle: _Handle, use: cst.CSTNode, statement: cst.BaseStatement) -> None:
        ancestors = _ancestors(statement, use)
        if ancestors is None or self._in_wired_arguments(ancestors):
            return
        parent = ancestors[-1] if ancestors else None
        grand = ancestors[-2] if len(ancestors) > 1 else None
        if isinstance(parent, cst.AssignTarget) and parent.target is use:
            return  # `self.opt = ...` binds, it does not use
        if isinstance(parent, cst.Attribute) and parent.value is use:
            problem = self._member_problem(handle, use, parent, grand)
            if problem is not None:
                self._mark(handle, statement, parent, handle.translated.text, problem)
            return
        if isinstance(parent, cst.Arg) and isinstance(grand, cst.Call) and parent.value is use:
            self._argument(handle, statement, use, parent, grand)
            return
        if _harmless(use, parent) or self._followed_to_the_caller(handle, use, ancestors):
            return
        returned = self._returned_fact(parent, statement)
        if returned is not None and returned[0] == handle.type_name:
            return  # a builder whose callers only step and zero what it returns
        context = _context(use, ancestors)
        use_text = f"`{_shortened(code_of(context))}`"
        if returned is not None:
            use_text += f" ({returned[1]})"
        self._mark(handle, statement, context, handle.translated.text, use_text)

    def _followed_to_the_caller(
        self, handle: _Handle, use: cst.CSTNode, ancestors: list[cst.CSTNode]
    ) -> bool:
        """``return opt`` (``return opt, sched``) of a builder of this file
        (``analysis/builders.py``): the value lives on in its caller's target, whose uses are
        followed instead."""
        returned = _returned_element(use, ancestors)
        builders = self.resolver.builders()
        targets = builders.targets.get(id(returned[0])) if returned else None
        if returned is None or targets is None or returned[1] not in targets:
            return False
        target = targets[returned[1]]
        if id(target) in self._followed:
            return True
        self._followed.add(id(target))
        owner = builders.callers.get(id(returned[0]))
        if isinstance(target, cst.Name):
            uses = tuple(self.resolver.uses_of(target))
        else:
            uses = tuple(_self_attribute_uses(owner, target, self.resolver))  # type: ignore[arg-type]
        name = code_of(target).strip()
        self._follow(_Handle(handle.origin, name, handle.translated, handle.type_name, uses, owner))
        return True

    def _returned_fact(
        self, parent: Any, statement: cst.BaseStatement
    ) -> tuple[str | None, str] | None:
        """For ``return <value>`` in a module-level function that other files of the
        repository call: the type it returns when they only step and zero the value, else
        None with the reason (``analysis/cross_file.py``)."""
        cross_file = getattr(self.resolver, "cross_file", None)
        if not isinstance(parent, cst.Return) or cross_file is None:
            return None
        function = self._module_level_function(statement)
        if function is None:
            method = self._method_of_module_class(statement)
            return cross_file.method_builder_type(*method) if method else None  # type: ignore[no-any-return]
        return cross_file.builder_type(function.name.value)  # type: ignore[no-any-return]

    def _method_of_module_class(self, statement: cst.BaseStatement) -> tuple[str, str] | None:
        """(class, method) for a statement in a method of a module-level class."""
        for node in self.planner.module.body:
            if not isinstance(node, cst.ClassDef) or not isinstance(node.body, cst.IndentedBlock):
                continue
            for method in node.body.body:
                inside = _ancestors(method, statement) is not None
                if isinstance(method, cst.FunctionDef) and inside:
                    return node.name.value, method.name.value
        return None

    def _module_level_function(self, statement: cst.BaseStatement) -> cst.FunctionDef | None:
        for node in self.planner.module.body:
            if isinstance(node, cst.FunctionDef) and _ancestors(node, statement) is not None:
                return node
        return None

    def _in_wired_arguments(self, ancestors: list[cst.CSTNode]) -> bool:
        """Whether the use sits in the arguments of a wired call (``SequentialLR(opt,
        [warmup, cosine])``, ``scaler.step(opt)``): that call's hook handles it."""
        for node, child in zip(ancestors, ancestors[1:], strict=False):
            if isinstance(child, cst.Arg) and id(node) in self.planner.by_call:
                return True
        return False

    def _folded_factory_call(self, call: cst.Call) -> bool:
        """Whether ``call`` is the one call of a scheduler factory whose schedule the plan
        folds into the optimizer (``analysis/factories.py``)."""
        return any(
            schedule.factory is not None and schedule.factory.call is call
            for schedule in self.planner.plan.schedules.values()
        )

    def _member_problem(
        self, handle: _Handle, use: cst.CSTNode, member: cst.Attribute, grand: Any
    ) -> str | None:
        """None when ``use.member`` is translated (a wired member, or one the translated value
        has); otherwise what is wrong with it."""
        attribute = member.attr.value
        if attribute in handle.translated.members:
            return None
        called = isinstance(grand, cst.Call) and grand.func is member
        entry = self.map.method(handle.type_name, attribute)
        text = f"`{code_of(member).strip()}`"
        if entry is None:
            return f"{text} is not a member of the translated value"
        if entry.attribute or called:
            # The engine runs the member's hook, and escapes it where the receiver may also
            # hold another object (analysis/flow.py) or is typed only by its name.
            return None
        return f"{text} is used without calling it (a bound method of the torch object)"

    def _argument(
        self,
        handle: _Handle,
        statement: cst.BaseStatement,
        use: cst.CSTNode,
        argument: cst.Arg,
        call: cst.Call,
    ) -> None:
        if self._folded_factory_call(call):
            return  # the factory only builds the scheduler the optimizer folds (plan.py)
        callee = self.resolver.called_function(call.func)
        description = f"`{code_of(call.func).strip()}(...)` gets `{handle.name}`"
        if callee in self.map.torch_only_calls:
            self._mark(handle, statement, call, self.map.torch_only_calls[callee], description)
            return
        if callee in self.map.passthrough_calls:
            return
        param = self.resolver.local_parameter(call, argument)
        if param is not None and self._typed_parameter(param, handle):
            self._follow_parameter(handle, param)
            return
        stored = self.resolver.stored_attribute(param) if param is not None else None
        if isinstance(stored, NotStored):  # a class of the file that does not only keep it
            description += f" ({self.planner._place(stored.node)} {stored.why})"
        other = self.resolver.other_argument(param, handle.type_name) if param else None
        if other is not None and stored is not None:  # another construction of the class
            shown = _shortened(code_of(other))
            description += f" ({self.planner._place(other)} passes `{shown}` for it)"
        if self._scheduler_folded_across_files(handle, callee, call, argument):
            return  # another file's function steps it with its optimizer: its step() goes
        across = self._across_files(callee, call, argument)
        if across is not None:
            type_name, reason = across
            if type_name == handle.type_name:
                return  # a function of another file that every call site hands a translated one
            description += f" ({reason})"
        self._mark(handle, statement, call, handle.translated.text, description)

    def _across_files(
        self, callee: str | None, call: cst.Call, argument: cst.Arg
    ) -> tuple[str | None, str] | None:
        """The repository's fact for the parameter of another file's function that
        ``argument`` binds (``analysis/cross_file.py``); None when there is none."""
        cross_file = getattr(self.resolver, "cross_file", None)
        if callee is None or cross_file is None:
            return None
        return cross_file.hand_over(callee, call, argument)  # type: ignore[no-any-return]

    def _scheduler_folded_across_files(
        self, handle: _Handle, callee: str | None, call: cst.Call, argument: cst.Arg
    ) -> bool:
        """A scheduler folded into its optimizer, handed to a function of another file that
        steps it once per update (``analysis/stepped_together.py``)."""
        cross_file = getattr(self.resolver, "cross_file", None)
        schedule = self.planner.plan.schedule_of(handle.origin.call)
        if callee is None or cross_file is None or schedule is None or not schedule.step_names:
            return False
        found = cross_file.handed_scheduler(callee, call, argument)
        return found is not None and not isinstance(found, str)

    def _typed_parameter(self, param: cst.Param, handle: _Handle) -> bool:
        typed = self.resolver.parameter_type(param)
        return typed is not None and typed.name == handle.type_name

    def _follow_parameter(self, handle: _Handle, param: cst.Param) -> None:
        if id(param) in self._followed:
            return
        self._followed.add(id(param))
        stored = self.resolver.stored_attribute(param)
        if isinstance(stored, cst.Attribute):  # `self.opt = opt` in `__init__`: its uses
            owner = owner_of(self.resolver, param)
            uses = tuple(_self_attribute_uses(owner, stored, self.resolver))
            name = code_of(stored).strip()
            self._follow(
                _Handle(handle.origin, name, handle.translated, handle.type_name, uses, owner)
            )
            return
        uses = tuple(self.resolver.parameter_uses(param))
        self._follow(
            _Handle(
                handle.origin, param.name.value, handle.translated, handle.type_name, uses, None
            )
        )

    def _mark(
        self,
        handle: _Handle,
        statement: cst.BaseStatement,
        node: cst.CSTNode,
        text: TorchOnlyText,
        use: str,
    ) -> None:
        named = all(part.isidentifier() for part in handle.name.split("."))
        owner = handle.name if named else "opt"
        names = {"name": handle.name, "use": use}
        uses = self.found.setdefault(self.planner.plan.key_of(statement), {})
        self.statements.append(statement)
        found = TorchOnlyUse(handle.origin, node, text, names, owner)
        uses.setdefault((id(node), handle.name), found)


# ---------------------------------------------------------------------- helpers


def _ancestors(statement: cst.CSTNode, target: cst.CSTNode) -> list[cst.CSTNode] | None:
    """The nodes from ``statement`` down to ``target``'s parent; None if it is not inside."""
    stack: list[cst.CSTNode] = []
    found: list[cst.CSTNode] | None = None

    class _Walk(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            nonlocal found
            if found is not None:
                return False
            if node is target:
                found = list(stack)
                return False
            stack.append(node)
            return True

        def on_leave(self, original_node: cst.CSTNode) -> None:
            if stack and stack[-1] is original_node:
                stack.pop()

    cst_walk.visit(statement, _Walk())
    return found


def _self_attribute_uses(
    enclosing: cst.ClassDef | None, target: cst.Attribute, resolver: Any
) -> Iterator[cst.Attribute]:
    """Every ``self.<attr>`` of the methods of ``enclosing`` and of its bases and subclasses in
    the file (assignments included: the caller skips them)."""
    if enclosing is None:
        return iter(())
    found: list[cst.Attribute] = []
    attribute = target.attr.value

    class _Find(cst.CSTVisitor):
        def __init__(self, owner: cst.ClassDef) -> None:
            super().__init__()
            self.owner = owner

        def visit_Attribute(self, node: cst.Attribute) -> None:
            if (
                node.attr.value == attribute
                and node is not target
                and node not in found
                and resolver.is_self_attribute(node, self.owner)
            ):
                found.append(node)

    for owner in resolver.class_family(enclosing):
        cst_walk.visit(owner, _Find(owner))
    return iter(found)


def _returned_element(
    use: cst.CSTNode, ancestors: list[cst.CSTNode]
) -> tuple[cst.Return, int] | None:
    """``(return, 0)`` for ``return use``; ``(return, i)`` for ``use`` the i-th element of
    ``return a, b``."""
    if ancestors and isinstance(ancestors[-1], cst.Return) and ancestors[-1].value is use:
        return ancestors[-1], 0
    if len(ancestors) < 3:
        return None
    statement, display, element = ancestors[-3:]
    if (
        isinstance(statement, cst.Return)
        and isinstance(display, cst.Tuple)
        and statement.value is display
        and isinstance(element, cst.Element)
        and element.value is use
    ):
        return statement, list(display.elements).index(element)
    return None


def _harmless(use: cst.CSTNode, parent: Any) -> bool:
    """Uses that work the same on any object: ``opt is None``, ``if opt:``, ``del opt``."""
    if isinstance(parent, cst.Comparison):
        return all(
            isinstance(target.operator, (cst.Is, cst.IsNot)) for target in parent.comparisons
        )
    if isinstance(parent, (cst.If, cst.While, cst.IfExp)):
        return parent.test is use
    if isinstance(parent, cst.UnaryOperation):
        return isinstance(parent.operator, cst.Not)
    return isinstance(parent, cst.Del)


def _context(use: cst.CSTNode, ancestors: list[cst.CSTNode]) -> cst.CSTNode:
    """What the code does with the value: its smallest enclosing simple statement (else the
    node holding it)."""
    for node in reversed(ancestors):
        if isinstance(node, cst.BaseSmallStatement):
            return node
    return ancestors[-1] if ancestors else use


def _shortened(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _DESCRIPTION_LIMIT else text[: _DESCRIPTION_LIMIT - 3] + "..."
