"""The one place a hook's result is applied to the tree.

``apply_call_result`` takes a ``HookResult`` for a call (or attribute read) and records its
effects in the statement's ``Frame``: an escape (the statement will be kept in an escape hatch),
or the replacement with its imports, the names it no longer uses, the comments it lost and its
report record. ``apply_region_result`` does the same for a training-step region's statements.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import libcst as cst

from ml_switcheroo.analysis.plan import Region
from ml_switcheroo.analysis.torch_only import TorchOnlyUse
from ml_switcheroo.rewrite.layout import carry_layout, lost_comments
from ml_switcheroo.rewrite.receivers import Receivers
from ml_switcheroo.rewrite.report import Record
from ml_switcheroo.rewrite.statements import Frame, Statements, names_in
from ml_switcheroo.spec import escape_hatch
from ml_switcheroo.spec.semantic_map import ApiEntry
from ml_switcheroo.spec.signature import code_of
from ml_switcheroo.targets.hooks import (
    Escape,
    HookContext,
    HookResult,
    Keep,
    Remove,
    Replace,
    ReplaceEnclosing,
    ReplaceRegion,
    ReplaceStatement,
)

NONE = "None"  # what a removed call becomes in expression position


def result_expression(result: Replace | Remove) -> cst.BaseExpression:
    """The expression that takes the call's place."""
    return cst.Name(NONE) if isinstance(result, Remove) else result.expression


def apply_call_result(
    result: HookResult,
    frame: Frame,
    original: Any,
    updated: Any,
    context: HookContext,
    requested: list[str],
    noop_calls: set[int],
) -> Any:
    """What replaces ``updated`` (the call after its arguments were rewritten) for ``result``,
    with the effects recorded in ``frame``."""
    entry = context.entry
    if isinstance(result, Escape):
        frame.escapes.append(escape_hatch.Escape(entry.name, result.reason, result.suggestion))
        frame.escape_nodes.append(original)
        return updated
    if isinstance(result, ReplaceRegion):
        raise TypeError(f"hook {entry.hook!r} returned a region for a single call")
    if isinstance(result, Keep):
        return updated
    if isinstance(result, ReplaceStatement):
        return _replace_statement(result, frame, original, updated, context, requested)
    if isinstance(result, ReplaceEnclosing):
        return _replace_enclosing(result, frame, original, updated, context, requested)
    expression = result_expression(result)
    frame.translated.add(id(original))
    if context.folded:
        frame.folded.update(context.folded)
        frame.folded.add(id(original))
    if isinstance(result, Remove):
        noop_calls.add(id(original))
        if result.note:
            frame.lost_comments.append(result.note)
    if isinstance(original, cst.Call):
        expression = _with_updated_arguments(carry_layout(original, expression), original, updated)
    frame.imports.extend(requested)
    frame.discarded.update(names_in(updated) - names_in(expression))
    frame.lost_comments.extend(lost_comments(updated, expression))
    frame.records.append((original, _converted(entry, original, expression, context)))
    return expression


def _replace_statement(
    result: ReplaceStatement,
    frame: Frame,
    original: Any,
    updated: Any,
    context: HookContext,
    requested: list[str],
) -> Any:
    """Record that the statement holding ``original`` becomes ``result.statement`` (applied
    when the statement is left: ``Statements.leave``); the node itself is left as it is."""
    frame.replacement = result.statement
    frame.following = result.following
    frame.translated.add(id(original))
    frame.imports.extend(requested)
    entry = context.entry
    record = Record(
        api=entry.name,
        kind="converted",
        status=entry.status_for(context.exact),
        snippet=code_of(original).strip(),
        reason=entry.note or "",
        suggestion="\n".join(code_of(s).strip() for s in (result.statement, *result.following)),
        warnings=tuple(context.warnings),
    )
    frame.records.append((original, record))
    return updated


def _replace_enclosing(
    result: ReplaceEnclosing,
    frame: Frame,
    original: Any,
    updated: Any,
    context: HookContext,
    requested: list[str],
) -> Any:
    """Record that ``result.enclosing`` becomes ``result.expression`` (applied when the engine
    leaves it); the node itself is left as it is."""
    frame.enclosing[id(result.enclosing)] = result.expression
    frame.translated.add(id(original))
    frame.imports.extend(requested)
    frame.discarded.update(names_in(result.enclosing) - names_in(result.expression))
    record = _converted(context.entry, result.enclosing, result.expression, context)
    frame.records.append((original, record))
    return updated


def _converted(
    entry: ApiEntry, original: cst.CSTNode, expression: cst.BaseExpression, context: HookContext
) -> Record:
    return Record(
        api=entry.name,
        kind="converted",
        status=entry.status_for(context.exact),
        snippet=code_of(original).strip(),
        reason=entry.note or "",
        suggestion=code_of(expression).strip(),
        warnings=tuple(context.warnings),
    )


def apply_region_result(
    statements: Statements,
    original: cst.BaseStatement,
    region: Region,
    result: HookResult | None,
    api: str,
    requested: list[str],
    inner: Callable[[], list[tuple[cst.Call, escape_hatch.Escape]]] = list,
) -> Any:
    """What replaces ``original``, a statement of a training-step region, for the region's
    ``result`` (given for its first statement only): a ``ReplaceRegion`` puts its statements
    in the first one's place and removes the others; anything else keeps the region in one
    escape hatch, with the escapes of its calls that escape on their own (``inner``)."""
    if isinstance(result, ReplaceRegion) or id(region) in statements.replaced_regions:
        return _replace_region(statements, original, region, result, api, requested)
    escape = None
    calls: list[tuple[cst.Call, escape_hatch.Escape]] = []
    if original is region.statements[0]:
        if isinstance(result, Escape):
            escape = escape_hatch.Escape(api, result.reason, result.suggestion)
        else:
            escape = escape_hatch.Escape(api, "a training step: torch updates in place")
        calls = inner()
    return statements.escape_region(original, region, escape, calls)


def _replace_region(
    statements: Statements,
    original: cst.BaseStatement,
    region: Region,
    result: HookResult | None,
    api: str,
    requested: list[str],
) -> Any:
    statements.updated_of[id(original)] = original
    if original is not region.statements[0]:
        return cst.RemovalSentinel.REMOVE
    assert isinstance(result, ReplaceRegion)
    statements.replaced_regions.add(id(region))
    statements.outside.update(result.outside)
    new = list(result.statements)
    if new:
        first = new[0]
        new[0] = first.with_changes(leading_lines=[*original.leading_lines, *first.leading_lines])
    frame = statements.frames[-1]
    frame.imports.extend(requested)
    before = sum((names_in(s) for s in region.statements), Counter())
    frame.discarded.update(before - sum((names_in(s) for s in new), Counter()))
    frame.records.append(
        (
            region.anchor.call,
            Record(
                api=api,
                kind="converted",
                status="exact",
                snippet="\n".join(code_of(s).strip() for s in region.statements),
                suggestion="\n".join(code_of(s).strip() for s in new),
            ),
        )
    )
    return cst.FlattenSentinel(new) if new else cst.RemovalSentinel.REMOVE


def _with_updated_arguments(
    result: cst.BaseExpression, original: cst.Call, updated: cst.Call
) -> cst.BaseExpression:
    """Swap the original argument values the hook reused for their rewritten versions."""
    if len(original.args) != len(updated.args):
        return result
    swaps = {
        id(old.value): new.value
        for old, new in zip(original.args, updated.args, strict=True)
        if old.value is not new.value
    }
    if not swaps:
        return result

    class _Swap(cst.CSTTransformer):
        def on_visit(self, node: cst.CSTNode) -> bool:
            return id(node) not in swaps

        def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Any:
            return swaps.get(id(original_node), updated_node)

    return swaps.get(id(result), result) if id(result) in swaps else result.visit(_Swap())


def apply_torch_only_uses(frame: Frame, uses: list[TorchOnlyUse], receivers: Receivers) -> None:
    """Uses of a translated optimizer (or scheduler) as the torch object: mark the statement
    (the map's text), unless the constructor is left as torch code."""
    for use in uses:
        if not receivers.becomes_translated(use.origin.call):
            continue  # still the torch object: nothing changes for that code
        translation = receivers.dry_results.get(id(use.origin.call), "")
        reason = use.render(use.text.reason, translation, receivers.target.state_name)
        suggest = use.render(use.text.suggest, translation, receivers.target.state_name)
        frame.escapes.append(escape_hatch.Escape(use.origin.entry.name, reason, suggest))
        frame.escape_nodes.append(use.node)
