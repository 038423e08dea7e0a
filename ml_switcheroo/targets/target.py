"""What a command renders for: a named set of hooks (the renderers the map's ``hook:`` names)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ml_switcheroo.targets.hooks import Hook, HookSpec


@dataclass(frozen=True)
class Target:
    """An output target: its name and the hooks that render map entries for it.

    Partial (issue 11, deliverable 4): the map section, the naming of ``{x}_state``, what the
    ``params`` argument becomes and how a region renders are still decided inside the optax
    hooks and the shipped map, not declared here.
    """

    name: str
    hooks: Mapping[str, Hook]
    specs: Mapping[str, HookSpec]

    def hook(self, name: str) -> Hook:
        """The renderer registered as ``name``."""
        return self.hooks[name]
