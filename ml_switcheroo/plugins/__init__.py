"""Compatibility: the seed's ``ml_switcheroo.plugins.optimizer_step``; hooks live in
``targets/optax/``."""
