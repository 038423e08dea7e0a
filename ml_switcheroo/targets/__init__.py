"""Targets layer: the hook contract (``hooks``), the target a command renders for
(``target``), the shipped targets (``optax/``) and the map validated against their hooks
(``catalogue``). Imports ``spec``, ``analysis`` and ``model``."""
