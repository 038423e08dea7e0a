"""What a command renders for: a named set of hooks (the renderers the map's ``hook:`` names),
the map files it layers over the shipped map, and how it names an optimizer's state."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.findings import Finding, Messages, render
from ml_switcheroo.targets.hooks import Hook, HookContext, HookSpec

Restate = Callable[[Finding, Any, HookContext], "Untranslatable | None"]


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per target
class Target:
    """An output target: its name, the hooks that render map entries for it (a training-step
    region is rendered by the hook of the map's backward entry: ``Escape`` or
    ``ReplaceRegion``), the map files layered over the shipped map for it (later ones win),
    the name of optimizer ``{x}``'s state in the code it writes and suggests, and how escape
    texts name the target (``label``) and a translated optimizer (``optimizer_value``), and
    what it says about each finding of analysis and model (``messages``, by finding kind).

    ``region_start``: where a training-step region starts, at the backward pass (``"backward"``:
    optax keeps the forward pass and escapes the region) or at the forward pass that computes
    its loss (``"forward"``: the region becomes a loss function, for NNX).
    What the ``params`` argument becomes is the constructor hook's: optax drops it (the
    parameters come with each update), NNX passes the receiver of ``.parameters()`` to
    ``nnx.Optimizer(model, tx)`` (``targets/nnx/optimizer.py``).
    """

    name: str
    hooks: Mapping[str, Hook]
    specs: Mapping[str, HookSpec]
    state_name: str
    label: str
    optimizer_value: str
    maps: tuple[Path, ...] = ()
    region_start: str = "backward"
    # a scheduler stepped once per epoch is not folded: its lr is written where it steps
    # (``analysis.plan.SchedulePlan.written``; NNX: ``targets/nnx/epoch_lr.py``)
    writes_epoch_lr: bool = False
    messages: Messages = field(default_factory=dict)
    # a planned escape stated again where its call is rewritten, from what only the rewrite
    # knows (the optimizer's translation: ``opt.opt_state[i]``); None: as planned
    restate: Restate | None = None

    def untranslatable(self, finding: Finding) -> Untranslatable:
        """``finding`` in this target's words (``spec.findings.render``); a finding naming
        an ``optimizer`` also names its ``state`` (unless it says where: ``restate``)."""
        values = dict(finding.values)
        if "optimizer" in values:
            values.setdefault("state", self.state_name.format(x=values["optimizer"]))
        return render(self.messages, Finding(finding.kind, values))

    def hook(self, name: str) -> Hook:
        """The renderer registered as ``name``."""
        return self.hooks[name]
