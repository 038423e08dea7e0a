"""Spec layer: the semantic map's schema and loader, signatures, templates, the API catalogue,
the escape-hatch format. Imports nothing else of ml_switcheroo."""
