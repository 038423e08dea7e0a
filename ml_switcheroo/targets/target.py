"""What a command renders for: a named set of hooks (the renderers the map's ``hook:`` names)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ml_switcheroo.targets.hooks import Hook, HookSpec


@dataclass(frozen=True)
class Target:
    """An output target: its name and the hooks that render map entries for it."""

    name: str
    hooks: Mapping[str, Hook]
    specs: Mapping[str, HookSpec]

    def hook(self, name: str) -> Hook:
        """The renderer registered as ``name``."""
        return self.hooks[name]
