"""Shipped hooks. Importing this package registers them."""

from ml_switcheroo.plugins import optimizer_step  # noqa: F401
