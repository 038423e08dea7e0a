"""Model layer: one translation as data (a call bound to its map entry, its rendered links,
hygiene of generated code, tensor values). Imports ``spec`` and ``analysis``."""
