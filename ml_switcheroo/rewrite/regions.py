"""The statements of a training-step region: the target's rendering, or one escape hatch.

``RegionStatements`` is made per file by the engine. The first statement of a region asks the
training-step hook what becomes of the region (``ReplaceRegion``); anything else keeps the
region as it is in one escape hatch, whose reason says first when the step's receiver is bound
to a translated optimizer and to something else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.plan import Region, Site
from ml_switcheroo.rewrite.apply import apply_region_result
from ml_switcheroo.rewrite.hook_context import HookContexts
from ml_switcheroo.rewrite.imports import ImportEdits
from ml_switcheroo.rewrite.receivers import Receivers
from ml_switcheroo.rewrite.statements import Statements
from ml_switcheroo.spec import escape_hatch
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.roles import BACKWARD, CLIP
from ml_switcheroo.spec.semantic_map import ApiEntry, SemanticMap
from ml_switcheroo.spec.signature import code_of
from ml_switcheroo.targets.hooks import Escape, HookResult, ReplaceRegion, run_hook
from ml_switcheroo.targets.target import Target

# The reason of a training-step region whose hook says nothing else.
REGION_REASON = "a training step: torch updates in place"


class RegionStatements:
    """What becomes of the statements of a file's training-step regions."""

    def __init__(
        self,
        *,
        statements: Statements,
        semantic_map: SemanticMap,
        target: Target,
        receivers: Receivers,
        contexts: HookContexts,
        imports: ImportEdits | None = None,
        checked: Callable[[cst.Call], tuple[ApiEntry, HookResult] | None] = lambda call: None,
    ) -> None:
        self.statements = statements
        self.checked = checked  # a wired call's entry and checked hook result (else None)
        self.semantic_map = semantic_map
        self.target = target
        self.receivers = receivers
        self.contexts = contexts
        self.imports = imports  # checks the names the rendering imports (``_region_result``)
        # id of a region -> what its hook renders it as (None: it escapes)
        self._rendered: dict[int, tuple[cst.BaseStatement, ...] | None] = {}

    def rendered(self, region: Region) -> tuple[cst.BaseStatement, ...] | None:
        """The statements the training-step hook renders ``region`` as, None when it does not
        (a dry run, memoized)."""
        if id(region) not in self._rendered:
            result = self._region_result(region, [])
            statements = result.statements if isinstance(result, ReplaceRegion) else None
            self._rendered[id(region)] = statements
        return self._rendered[id(region)]

    def statement(self, original: cst.BaseStatement, region: Region) -> Any:
        """A statement of a training-step region: the target's rendering of the region, or
        the region kept as is in one escape hatch."""
        anchor = region.anchor
        api = anchor.entry.name if anchor.entry else "torch.optim.Optimizer.step"
        requested: list[str] = []
        result: HookResult | None = None
        if original is region.statements[0]:
            result = self._region_result(region, requested)
            if not isinstance(result, ReplaceRegion):
                escape = result if isinstance(result, Escape) else Escape(REGION_REASON)
                result = self._with_binding_conflict(escape, anchor)
        return apply_region_result(
            self.statements,
            original,
            region,
            result,
            api,
            requested,
            lambda: self._clip_escapes(region),
        )

    def _clip_escapes(self, region: Region) -> list[tuple[cst.Call, escape_hatch.Escape]]:
        """The clip calls of an escaped region that escape on their own (not folded into the
        optimizer's chain: refused, or beside a refused one), each with its escape: the
        region keeps them as torch code, and the report names each."""
        found = []
        for statement in region.statements:
            for node in cst_walk.walk(statement):
                if not isinstance(node, cst.Call):
                    continue
                checked = self.checked(node)
                if checked is None or checked[0].role != CLIP:
                    continue
                entry, result = checked
                if isinstance(result, Escape):
                    found.append(
                        (node, escape_hatch.Escape(entry.name, result.reason, result.suggestion))
                    )
        return found

    def _with_binding_conflict(self, escape: Escape, anchor: Site) -> Escape:
        """A training step on a receiver bound to a translated optimizer and to something else:
        its reason says that first (the step stays torch code on every path)."""
        entry = anchor.entry
        if anchor.receiver is None or entry is None or entry.receiver_type is None:
            return escape
        try:
            self.receivers.check_bindings_agree(
                anchor.call, entry, code_of(anchor.receiver).strip()
            )
        except Untranslatable as exc:
            return Escape(f"{exc.reason}. Besides, {escape.reason}", escape.suggestion)
        return escape

    def _region_result(self, region: Region, requested: list[str]) -> HookResult:
        """Ask the training-step hook what becomes of the region."""
        backward = region.backward.entry if region.backward and region.backward.entry else None
        entry = backward or self.semantic_map.entry_with_role(BACKWARD)
        if entry is None:
            return Escape(REGION_REASON)
        context = self.contexts.build(entry, entry.name, region, requested.append)
        result = run_hook(self.target.hook(entry.hook), region.anchor.call, context)
        if isinstance(result, ReplaceRegion) and self.imports is not None:
            # The rendering's imports (the map templates' `jnp`, `jax`) must mean those modules
            # where the step runs, as the constructor's hook checks its own (`HookRuns`): a
            # file binding `jnp` (`import numpy as jnp`, a variable) escapes (probe s40).
            try:
                self.imports.check_names(region.anchor.call, requested)
            except Untranslatable as exc:
                return Escape(exc.reason, exc.suggestion)
        return result


class OutsideCalls(cst.CSTTransformer):
    """Writes the calls and attribute reads a ``ReplaceRegion``'s ``outside`` names (by id of
    the original node) in a statement the engine does not visit (nothing else in it changes)."""

    def __init__(self, texts: dict[int, str]) -> None:
        super().__init__()
        self.texts = texts

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:  # type: ignore[override]
        text = self.texts.get(id(original))
        if text is not None and isinstance(original, (cst.Call, cst.Attribute)):
            return cst.parse_expression(text)
        return updated
