"""libcst codemod commands. Point libcst at this package (``modules: [ml_switcheroo.codemods]``)."""
