"""Compatibility: the seed's ``ml_switcheroo.core.hooks``; the code lives in the layer packages."""
