"""Rewrite layer: the libcst command that applies hook results to the tree (statements,
imports, escape hatches, layout, round trip). Imports every lower layer, never ``app``."""
