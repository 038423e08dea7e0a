"""Checks on the receivers of wired calls, and whether a value this file builds is translated.

``opt.zero_grad()`` may be removed only when ``opt`` is, on every path, an optimizer whose
construction translates; a name bound by two imports is refused; a receiver bound to a
translated optimizer and to something else escapes. ``Receivers`` answers these for one file,
given the engine's name resolution, wiring, plan and a dry run of a constructor's hook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import libcst as cst

from ml_switcheroo.analysis import flow
from ml_switcheroo.analysis.plan import Plan
from ml_switcheroo.analysis.resolver import Resolver
from ml_switcheroo.rewrite.dispatch import Wired
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.semantic_map import ApiEntry
from ml_switcheroo.spec.signature import dotted_name
from ml_switcheroo.targets.target import Target

# (constructor call) -> (whether its hook translates it, its translation's text, calls it folds)
DryRun = Callable[[cst.Call, Wired], tuple[bool, str | None, list[int]]]


class Receivers:
    """Receiver checks for one file (memoized per node)."""

    def __init__(
        self,
        *,
        target: Target,
        resolver: Callable[[], Resolver],
        enclosing: Callable[[], cst.ClassDef | None],
        wired: Callable[[cst.Call], Wired | None],
        plan: Callable[[], Plan],
        dry_run: DryRun,
        position: Callable[[cst.CSTNode], Any],
    ) -> None:
        self.target = target
        self.resolver = resolver
        self.enclosing = enclosing
        self.wired = wired
        self.plan = plan
        self.dry_run = dry_run
        self.position = position
        self._translates: dict[int, bool] = {}  # constructor call id -> its hook succeeds
        self._constructor_types: dict[int, str | None] = {}  # call id -> the type it returns
        self._leaves: dict[int, list[flow.Leaf]] = {}  # call id -> bindings of its receiver
        self.dry_folded: dict[int, list[int]] = {}  # constructor call id -> what it folds
        self.dry_results: dict[int, str] = {}  # constructor call id -> its translation

    def constructor_translates(self, call: cst.Call) -> bool:
        """Dry run of the hook of a constructor call (memoized per call node)."""
        known = self._translates.get(id(call))
        if known is not None:
            return known
        wired = self.wired(call)
        translates = True
        if id(call) in self.plan().hatched:
            translates = False  # left as torch code by an earlier run's escape hatch
        elif wired is not None and wired.receiver is None:  # a constructor, not a method
            translates, rendered, folded = self.dry_run(call, wired)
            if rendered is not None:
                self.dry_results[id(call)] = rendered
            self.dry_folded[id(call)] = folded
        self._translates[id(call)] = translates
        return translates

    def check_receiver_translates(self, node: Any, receiver: str, entry: ApiEntry) -> None:
        """Rewrite ``opt.method()`` only if ``opt``'s construction in this file translates.

        An optimizer whose construction is left in an escape hatch is still a torch optimizer:
        removing its ``zero_grad()`` would change what the code does.
        """
        leaves = self._receiver_leaves(node, entry)
        if any(leaf.kind == flow.TRANSLATED for leaf in leaves):
            return  # a mix is refused before the hook runs (_check_bindings_agree)
        if not any(leaf.kind == flow.TORCH for leaf in leaves):
            member = node.func if isinstance(node, cst.Call) else node
            if not isinstance(member, cst.Attribute):
                return
            # Every constructor that reaches it, also through a parameter of a function of this
            # file (`train(model, opt)`): all must translate.
            enclosing = self.enclosing()
            values = self.resolver().origin_values(member.value, enclosing) or []
            elsewhere = self.resolver().callers_elsewhere_problem(member.value)
            if elsewhere is not None:  # an annotated parameter another file passes torch's
                raise Untranslatable(
                    f"`{receiver}` is a parameter, and {elsewhere}: it may be a torch optimizer "
                    "there, and this call must stay while it is",
                    f"# drop this call once every optimizer passed as `{receiver}` is "
                    f"{self.target.optimizer_value}",
                )
            if all(self.value_translates(v) for v in values if isinstance(v, cst.Call)):
                return
        raise Untranslatable(
            f"`{receiver}` is still a torch optimizer: its construction is left in an escape "
            "hatch, and this call must stay while it is",
            f"# drop this call once `{receiver}` is {self.target.optimizer_value}",
        )

    def check_one_import(self, node: Any, qualified_name: str) -> None:
        """Refuse a call whose name another import binds too (apex's ``Adam`` on one path,
        torch's on the other): what runs there is decided at run time."""
        func = node.func if isinstance(node, cst.Call) else node
        names = self.resolver().imported_names(func)
        if names and qualified_name not in names:  # a scheduler factory of another file
            qualified_name = names[0]
        others = self.resolver().other_imports(func, qualified_name)
        if not others:
            return
        root = (dotted_name(func) or "").partition(".")[0]
        where = "; ".join(f"from {other.module}{self.at_line(other.node)}" for other in others)
        raise Untranslatable(
            f"`{root}` is also imported {where}, so this may not be `{qualified_name}`; "
            "only torch's would be translated",
            f"import `{root}` from one place only (or rename the other import), "
            "then run the codemod again",
        )

    def check_bindings_agree(self, node: Any, entry: ApiEntry, receiver: str) -> None:
        """Refuse ``opt.method()`` when ``opt`` is bound to a translated optimizer and also to
        something that is not one (torch's LBFGS, ``build()``, an untyped parameter): after
        the codemod the name holds the target's value on some paths only."""
        leaves = self._receiver_leaves(node, entry)
        translated = next((leaf for leaf in leaves if leaf.kind == flow.TRANSLATED), None)
        other = next((leaf for leaf in leaves if leaf.kind in (flow.TORCH, flow.OTHER)), None)
        if translated is None or other is None:
            return
        line = self.at_line(other.binding.node)
        if other.via is None:
            where = f"`{receiver}` is also bound{line} {flow.describe(other)}"
        else:
            where = f"`{receiver}` is a parameter, and a call passes it a value bound{line} "
            where += flow.describe(other)
        raise Untranslatable(
            f"{where}; the optimizer bound{self.at_line(translated.binding.node)} is "
            f"translated to {self.target.label}, so this call must stay until every binding of "
            f"`{receiver}` is translated",
            f"give the optimizers different names, or port `{receiver}` by hand",
        )

    def _receiver_leaves(self, node: Any, entry: ApiEntry) -> list[flow.Leaf]:
        """Every binding that reaches the receiver of ``node`` (a call or attribute read)."""
        known = self._leaves.get(id(node))
        if known is not None:
            return known
        member = node.func if isinstance(node, cst.Call) else node
        if not isinstance(member, cst.Attribute):
            return []
        check = flow.ReceiverBindings(
            self.resolver(),
            entry.receiver_type,
            self._constructor_type,
            self.value_translates,
        )
        leaves = check.leaves(member.value, self.enclosing())
        self._leaves[id(node)] = leaves
        return leaves

    def _constructor_type(self, call: cst.Call) -> str | None:
        """The type a wired constructor call returns (None for any other call)."""
        if id(call) not in self._constructor_types:
            wired = self.wired(call)
            constructor = wired is not None and wired[2] is None
            self._constructor_types[id(call)] = wired[0].returns if constructor else None  # type: ignore[index]
        return self._constructor_types[id(call)]

    def at_line(self, node: cst.CSTNode) -> str:
        """`` at line N`` for a node of the file, or nothing when its position is unknown."""
        position = self.position(node)
        return f" at line {position.start.line}" if position is not None else ""

    def value_translates(self, call: cst.Call) -> bool:
        """Whether the value ``call`` builds is translated: its constructor translates, or (a
        scheduler) the optimizer it belongs to translates and folds it."""
        plan = self.plan()
        schedule = plan.schedule_of(call)
        if schedule is None:
            return self.constructor_translates(call)
        optimizer = schedule.optimizer.call
        return self.constructor_translates(optimizer) and id(call) in self.dry_folded.get(
            id(optimizer), []
        )

    def receiver_translated(self, node: Any, probable: bool) -> bool:
        """Whether the receiver of ``node`` (``opt.state_dict()``, ``sched.last_epoch``) is a
        translated value: not when every constructor that reaches it is left as torch code, nor
        when it is only guessed from a name (``probable``) and no translated constructor of
        this file reaches it (a helper's parameter this file's callers hand a translated
        optimizer, and another file a torch one: its torch-only uses escape)."""
        member = node.func if isinstance(node, cst.Call) else node
        if not isinstance(member, cst.Attribute):
            return not probable
        enclosing = self.enclosing()
        values = self.resolver().origin_values(member.value, enclosing)
        calls = [v for v in values or [] if isinstance(v, cst.Call)]
        if probable:
            return any(self._returns_translated(call) for call in calls)
        return not calls or any(self._returns_translated(call) for call in calls)

    def _returns_translated(self, call: cst.Call) -> bool:
        """``becomes_translated``, or for ``x.m(...)`` (not wired) returning the optimizer a
        method builds: the constructor of a method of the file's class
        (``Plan.built_by_method``) translates, or the repository's method-builder fact types
        the value as a translated optimizer (``Resolver.method_builder_type``: its other uses
        escape on their own, they are not left as torch code)."""
        if self.wired(call) is not None or not isinstance(call.func, cst.Attribute):
            return self.becomes_translated(call)
        fact = self.plan().built_by_method(call)
        if not isinstance(fact, str) and self.becomes_translated(fact.constructor):
            return True
        return self.resolver().method_builder_type(call) is not None

    def translation_of(self, call: cst.Call) -> str | None:
        """The text constructor ``call`` becomes, when this command translates it."""
        return self.dry_results.get(id(call)) if self.becomes_translated(call) else None

    def becomes_translated(self, call: cst.Call) -> bool:
        """Whether this command translates the constructor ``call`` (and it translates)."""
        wired = self.wired(call)
        return wired is not None and wired[2] is None and self.value_translates(call)
