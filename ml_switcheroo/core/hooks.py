"""The seed's import path of the hook contract; it lives in ``ml_switcheroo.targets.hooks``."""

from ml_switcheroo.targets.hooks import HookContext, HookSpec, register_hook

__all__ = ["HookContext", "HookSpec", "register_hook"]
