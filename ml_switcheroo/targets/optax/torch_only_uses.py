"""Plugin for members a translated optimizer or scheduler no longer has.

``opt.state_dict()``, ``opt.load_state_dict(...)``, ``opt.add_param_group(...)``, ``opt.state``,
``sched.last_epoch``...: once ``opt``'s constructor is an optax transformation (or ``sched`` an
optax schedule), these are torch-only. The hook escapes with the entry's reason and suggestion,
and leaves the code alone when the receiver is still the torch object.
"""

from __future__ import annotations

import libcst as cst

from ml_switcheroo.model.translate import BoundCall, render_text
from ml_switcheroo.spec import roles
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.targets.hooks import HookContext, register_hook


@register_hook("torch_only", requires=("reason", "suggest"), role=roles.MEMBER)
def escape_torch_only_member(node: cst.CSTNode, ctx: HookContext) -> cst.CSTNode:
    """Hook for a torch-only member of a translated value: an escape hatch with the map's text."""
    if not ctx.receiver_translated():
        return node  # the receiver is still the torch object: nothing changes for this code
    receiver = ctx.receiver or "opt"
    names = {"receiver": receiver, "state": ctx.state_of(receiver)}
    assert ctx.entry.reason and ctx.entry.suggest
    call = BoundCall(ctx.entry, node if isinstance(node, cst.Call) else cst.Call(cst.Name("_")), {})
    raise Untranslatable(
        render_text(ctx.entry.reason, call, names), render_text(ctx.entry.suggest, call, names)
    )
