"""Plugin for gradient clipping: ``clip_grad_norm_``/``clip_grad_value_`` join the optimizer.

In optax clipping is a link of the optimizer's ``optax.chain``, applied to the raw gradients
before everything else. When the file's plan finds the optimizer stepped after the clip call
(same block) and the call clips the parameters that optimizer trains, the optimizer's hook puts
this transform at the head of its chain and the call itself is removed; otherwise the call gets
an escape hatch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import libcst as cst

from ml_switcheroo.analysis.plan import ClipFeed, Site, SubsetClip
from ml_switcheroo.model.tensor_values import replace_tensor_literals
from ml_switcheroo.model.translate import BoundCall, check_escapes, render_chain, render_value
from ml_switcheroo.spec import findings, roles
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.findings import Finding
from ml_switcheroo.spec.semantic_map import ApiEntry
from ml_switcheroo.spec.signature import code_of
from ml_switcheroo.targets.hooks import HookContext, register_hook
from ml_switcheroo.targets.optax.messages import render


@register_hook("clip_gradients", requires=("signature", "chain"), role=roles.CLIP)
def fold_gradient_clipping(node: cst.Call, ctx: HookContext) -> cst.BaseExpression:
    """Hook for a clip call the optimizer took into its chain: the statement goes away."""
    if isinstance(ctx.plan, SubsetClip):
        suggestion = ctx.plan.other_model_suggestion or _masked_suggestion(node, ctx.plan, ctx)
        raise Untranslatable(ctx.plan.reason, suggestion)
    if not isinstance(ctx.plan, ClipFeed):
        raise Untranslatable("no translated optimizer is stepped after this call")
    transform = code_of(clip_expression(node, ctx.entry, ctx)).strip()
    optimizer = ctx.plan.optimizer.target
    refused = refused_clip(ctx.plan.clips, ctx)
    if refused is not None:  # another clip of the step: the chain takes none of them
        site, why = refused
        raise render(
            Finding(
                findings.CLIP_BESIDE_ESCAPED,
                {
                    "clip": " ".join(code_of(site.call).split()),
                    "optimizer": code_of(optimizer).strip() if optimizer is not None else "it",
                    "why": why,
                    "transform": transform,
                },
            )
        )
    if ctx.line_alone(node) is None:  # `norm = clip(...)`: only a rendered step gives the norm
        target = ctx.assigned_to(node)
        value = render_value(
            BoundCall.bind(ctx.entry, node), ctx.exact, cst.Name("grads"), lambda key: None
        )
        raise render(
            Finding(
                findings.CLIP_NORM_OUTSIDE_STEP,
                {
                    "name": code_of(target).strip() if target is not None else "norm",
                    "optimizer": code_of(optimizer).strip() if optimizer is not None else "opt",
                    "norm": code_of(value).strip() if value is not None else "<its norm of grads>",
                },
            )
        )
    return cst.Name("None")


def clip_expression(node: cst.Call, entry: ApiEntry, ctx: HookContext) -> cst.BaseExpression:
    """The optax transform for clip call ``node`` (raises ``Untranslatable`` per the map)."""
    call = BoundCall.bind(entry, node)
    ctx.warnings.extend(replace_tensor_literals(call, ctx.names(), ctx.semantic_map, render=render))
    check_escapes(call, ctx.exact, render=render)
    return render_chain(
        call, ctx.exact, ctx.semantic_map.chain_function, ctx.add_import, render=render
    )


def refused_clip(clips: Sequence[Site], ctx: HookContext) -> tuple[Site, str] | None:
    """The first of ``clips`` (those feeding one optimizer's steps, ``ClipFeed.clips``) whose
    transform the map escapes (``norm_type=1.0`` in stock mode), and why; None when the chain
    takes them all. The one rule of every hook: the chain takes all of them or none."""
    dry = replace(ctx, request_import=lambda key: None, warnings=[])
    for site in clips:
        assert site.entry is not None
        try:
            clip_expression(site.call, site.entry, replace(dry, entry=site.entry))
        except Untranslatable as escape:
            return site, escape.reason
    return None


def _masked_suggestion(node: cst.Call, subset: SubsetClip, ctx: HookContext) -> str:
    """``optax.masked(<this clip>, mask)`` at the head of the optimizer's chain."""
    try:
        clip = code_of(clip_expression(node, ctx.entry, ctx)).strip()
    except Untranslatable:
        clip = "<the optax clip transform>"
    target = subset.optimizer.target
    opt = code_of(target).strip() if target is not None else "the optimizer"
    return (
        f"clip only those gradients, at the head of `{opt}`'s chain: optax.masked({clip}, mask), "
        f"where mask is a pytree like params that is True on the leaves of `{subset.clipped}` "
        f"(optax.masked passes the other gradients through unclipped, as torch does)"
    )
