"""Running a wired call's hook: checked (the checks that keep the output safe, before and
after the hook) or dry (a constructor's hook, to know whether and how it translates).

``HookRuns`` is made per file by the engine; its results are applied by ``rewrite/apply.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import libcst as cst

from ml_switcheroo.analysis.plan import COUNTED, Plan
from ml_switcheroo.analysis.resolver import Resolver
from ml_switcheroo.rewrite.apply import result_expression
from ml_switcheroo.rewrite.cross_file_questions import cross_file_reason
from ml_switcheroo.rewrite.dispatch import Wired
from ml_switcheroo.rewrite.hook_context import HookContexts
from ml_switcheroo.rewrite.imports import ImportEdits
from ml_switcheroo.rewrite.receivers import Receivers
from ml_switcheroo.rewrite.statements import Statements
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.signature import code_of
from ml_switcheroo.targets.hooks import (
    Escape,
    HookContext,
    HookResult,
    Keep,
    Remove,
    Replace,
    ReplaceRegion,
    run_hook,
)
from ml_switcheroo.targets.target import Target


class HookRuns:
    """The hook runs of one file."""

    def __init__(
        self,
        *,
        target: Target,
        plan: Callable[[], Plan],
        resolver: Callable[[], Resolver],
        contexts: HookContexts,
        statements: Statements,
        imports: ImportEdits,
    ) -> None:
        self.target = target
        self.plan = plan
        self.resolver = resolver
        self.contexts = contexts
        self.statements = statements
        self.imports = imports
        self.receivers: Receivers  # set by the engine: the receivers' checks ask for dry runs

    def checked(
        self,
        original_node: Any,
        context: HookContext,
        receiver: str | None,
        probable: bool,
        requested: list[str],
    ) -> HookResult:
        """The hook's result, or an ``Escape`` when a check before or after it refuses."""
        entry, plan = context.entry, self.plan()
        try:
            if receiver is None:
                self.receivers.check_one_import(original_node, context.qualified_name)
            planned = plan.escape_for(original_node)
            if planned is not None:
                raise self._restated(planned, original_node, context)
            if receiver is not None:
                self.receivers.check_bindings_agree(original_node, entry, receiver)
            # Hooks see the original call, so metadata (scopes, bindings) applies to its parts;
            # rewrites already made inside its arguments are put back afterwards.
            result = run_hook(self.target.hook(entry.hook), original_node, context)
            if isinstance(result, Escape):
                return result
            attached = plan.attachment(original_node)
            if attached is not None and not self._folded(attached):
                raise Untranslatable(_not_folded(original_node, attached))
            changes = not isinstance(result, Keep)
            if receiver is not None and changes:
                self.receivers.check_receiver_translates(original_node, receiver, entry)
            if probable and changes:
                if not isinstance(result, (Replace, Remove)):  # a statement or enclosing one
                    raise Untranslatable(f"`{receiver}` is an unannotated parameter")
                raise Untranslatable(
                    f"`{receiver}` is an unannotated parameter, taken for a "
                    f"{entry.receiver_type} only because of its name"
                    + cross_file_reason(original_node, self.resolver()),
                    _probable_suggestion(result),
                )
            self.imports.check_names(original_node, requested)
        except Untranslatable as exc:
            return Escape(exc.reason, exc.suggestion)
        return result

    def _restated(self, planned: Untranslatable, node: Any, context: HookContext) -> Untranslatable:
        """The planned escape of ``node``, stated again by the target when it can say more
        there (``Target.restate``)."""
        finding = self.plan().finding_for(node)
        restate = self.target.restate
        if finding is None or restate is None:
            return planned
        return restate(finding, node, context) or planned

    def _folded(self, attached: cst.Call) -> bool:
        """Whether the optimizer folds ``attached``: translated so far, or (a factory's
        scheduler, one handed to a function defined before its optimizer: ``step_names``, or
        a counted one, whose step may come first: ``self.sched`` stepped in a method above
        the one that builds it) its optimizer's dry run folds it."""
        if self.statements.is_folded(id(attached)):
            return True
        schedule = self.plan().schedule_of(attached)
        return (
            schedule is not None
            and (
                schedule.factory is not None
                or schedule.step_names is not None
                or schedule.written == COUNTED
            )
            and (self.receivers.value_translates(attached))
        )

    def dry(self, call: cst.Call, wired: Wired) -> tuple[bool, str | None, list[int]]:
        """Run the hook of constructor ``call`` without applying it: whether it translates, its
        translation's text, and the calls it folds."""
        entry, name = wired.entry, wired.name
        plan = self.plan()
        context = self.contexts.build(entry, name, plan.item_for(call), lambda key: None)
        try:
            planned = plan.escape_for(call)
            if planned is not None:
                raise planned
            self.receivers.check_one_import(call, name)
            result = run_hook(self.target.hook(entry.hook), call, context)
            if isinstance(result, (Escape, ReplaceRegion)):
                raise Untranslatable(getattr(result, "reason", "a region for one call"))
        except Untranslatable:
            return False, None, context.folded
        rendered = call if isinstance(result, Keep) else result_expression(result)
        return True, code_of(rendered).strip(), context.folded


def _probable_suggestion(result: Replace | Remove) -> str:
    if isinstance(result, Remove):
        return "delete this statement if the receiver is a torch optimizer"
    return f"if the receiver is a torch optimizer: {code_of(result_expression(result)).strip()}"


def _not_folded(call: cst.Call, attached: cst.Call) -> str:
    """Why ``call`` stays torch code when the optimizer's translation did not fold
    ``attached`` (``call`` itself, or the scheduler whose ``step()`` it is)."""
    if call is attached:
        return (
            "it belongs to an optimizer that was not translated together with it "
            "(see the optimizer's statement)"
        )
    shown = " ".join(code_of(attached.func).split())
    return (
        f"its scheduler (`{shown}(...)`) is not translated (see the scheduler's statement), "
        "so this call stays torch code"
    )
