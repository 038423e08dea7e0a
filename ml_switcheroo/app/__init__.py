"""App layer: the convert runner, files, reports, the README support table. The top layer
(with ``cli``, ``convert`` and the ``codemods`` entry points)."""
