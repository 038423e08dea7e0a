"""Plugin for the training step: backward, (GradScaler) and step, as one escape hatch.

``loss.backward()`` ... ``opt.step()`` (with ``scaler.scale(loss).backward()``,
``scaler.unscale_(opt)``, ``scaler.step(opt)``, ``scaler.update()``) is how torch computes and
applies gradients in place. JAX computes gradients with ``jax.value_and_grad`` of a loss function
and applies optax updates functionally, which needs the forward pass as a function: a rewrite
no codemod can do safely. So the file's plan marks the statements from the backward pass to the
step as one region, and this hook writes its reason and a complete suggestion with the real
names. Lines of the map's suggestion that start with ``[scaler]`` or ``[accumulation]`` are kept
only when the step uses a GradScaler or is gated by a condition.
"""

from __future__ import annotations

import libcst as cst

from ml_switcheroo.analysis.parameters import PART, parameters_argument, select
from ml_switcheroo.analysis.plan import Region
from ml_switcheroo.model.translate import BoundCall, render_text
from ml_switcheroo.spec import roles
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.signature import code_of
from ml_switcheroo.targets.hooks import HookContext, register_hook
from ml_switcheroo.targets.optax.clipping import refused_clip

PLACEHOLDERS = ("loss", "optimizer", "scaler", "clip", "clip_reason", "submodule")


@register_hook("training_step", requires=("reason", "suggest"), placeholders=PLACEHOLDERS)
def escape_training_step(node: cst.Call, ctx: HookContext) -> cst.Call:
    """Hook for a training step (a planned region, or a lone ``scaler.step(opt)``)."""
    region = ctx.plan if isinstance(ctx.plan, Region) else None
    optimizer = _optimizer_name(region, node, ctx)
    names = {
        "loss": region.loss if region else "loss",
        "optimizer": optimizer,
        "receiver": optimizer,
        "state": ctx.state_of(optimizer),
        "scaler": (region.scaler if region else ctx.receiver) or "scaler",
    }
    unfolded = _unfolded_clip(region, ctx)
    names["clip"], names["clip_reason"] = unfolded or ("", "")
    names["submodule"] = _trained_submodule(region, ctx) or ""
    keep = {
        "[scaler]": bool(names["scaler"] != "scaler" or (region and region.scaler)),
        "[accumulation]": bool(region and region.gated),
        "[clipping]": bool(region and region.clipped) and not unfolded,
        "[unfolded_clipping]": bool(unfolded),
        "[subset_clipping]": bool(region and region.subset_clipped),
        "[submodule]": bool(names["submodule"]),
    }
    assert ctx.entry.reason is not None and ctx.entry.suggest is not None
    call = BoundCall(ctx.entry, node, {})
    lines = []
    for line in render_text(ctx.entry.suggest, call, names).splitlines():
        tag = next((t for t in keep if line.startswith(t + " ")), None)
        if tag is None:
            lines.append(line)
        elif keep[tag]:
            lines.append(line[len(tag) + 1 :])
    raise Untranslatable(render_text(ctx.entry.reason, call, names), "\n".join(lines))


def _trained_submodule(region: Region | None, ctx: HookContext) -> str | None:
    """The submodule (``model.encoder``) whose every parameter the stepped optimizer, the one
    constructor reaching it, trains (``parameters.Selection.module`` of a PART); else None."""
    receiver = region.anchor.receiver if region is not None else None
    values = ctx.origins(receiver) if receiver is not None else None
    if not values or len(values) != 1 or not isinstance(values[0], cst.Call):
        return None
    entry = next((ctx.semantic_map.apis.get(q) for q in ctx.qualify(values[0].func)), None)
    if entry is None or entry.role != roles.CONSTRUCTOR:
        return None
    spec = ctx.semantic_map.parameters
    try:
        params = parameters_argument(entry, values[0], spec)
    except Untranslatable:
        return None
    selection = select(params, ctx.names(), spec)
    if selection.kind != PART or selection.module is None:
        return None
    return " ".join(code_of(selection.module).split())


def _unfolded_clip(region: Region | None, ctx: HookContext) -> tuple[str, str] | None:
    """The first clip call of the region the optimizer's chain could not take (the map escapes
    it: ``norm_type=1.0`` in stock mode) and the reason, or None: the step's suggestion must
    not say that clipping is in the chain then (the optimizer's hook leaves it out)."""
    refused = refused_clip(region.clip_sites, ctx) if region is not None else None
    if refused is None:
        return None
    return " ".join(code_of(refused[0].call).split()), refused[1]


def _optimizer_name(region: Region | None, node: cst.Call, ctx: HookContext) -> str:
    anchor = region.anchor.call if region else node
    func = anchor.func
    if isinstance(func, cst.Attribute) and func.attr.value == "step":
        if (
            region is not None
            and region.anchor.entry
            and region.anchor.entry.role == roles.SCALER_STEP
        ):
            return code_of(anchor.args[0].value).strip() if anchor.args else "opt"
        if region is None and anchor.args:
            return code_of(anchor.args[0].value).strip()  # scaler.step(opt)
        return code_of(func.value).strip()
    return "opt"


@register_hook("type_only", role=roles.TYPE)
def keep_as_is(node: cst.Call, ctx: HookContext) -> cst.Call:
    """Hook for constructors the map lists only so their values have a type (GradScaler)."""
    return node
