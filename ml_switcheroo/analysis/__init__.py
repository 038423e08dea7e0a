"""Analysis layer: names, receivers, bindings, sites and the per-file plan.

Imports only ``spec``."""
