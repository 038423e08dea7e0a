"""Repository-local codemod package for ``python -m libcst.tool`` (see .libcst.codemod.yaml).

The commands live in ``ml_switcheroo.codemods``; this package re-exports them so that
``optimizer.TorchToOptax`` resolves when libcst runs from this repository's root.
"""
