"""Names a statement binds that code of another scope may read.

A plain assignment (``SCALE = 2.0``) changes no object, but when the name is declared
``global``/``nonlocal``, read by a nested function, lambda or class, or is a module global
another file (or the file's ``exec``/``globals()``) may reach, a function called later (a
model's ``forward`` reading ``SCALE``) sees the new value. Moving such a statement past that
call changes what the call computes. A module-level name read only at module level
(``D_x = output.mean().item()`` in a script's loop) is read by no function the loss calls.
"""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst

from ml_switcheroo.analysis.dominating import ParentOf, declared_global, module_of
from ml_switcheroo.analysis.resolver import Variable

_SCOPES = (cst.FunctionDef, cst.Lambda, cst.ClassDef, cst.Module)


def scope_of(node: cst.CSTNode, parent_of: ParentOf) -> cst.CSTNode | None:
    """The function, lambda, class or module whose code ``node`` is (None: unknown)."""
    current = parent_of(node)
    while current is not None and not isinstance(current, _SCOPES):
        current = parent_of(current)
    return current


def read_elsewhere(
    names: list[cst.Name],
    parent_of: ParentOf,
    variable: Callable[[cst.Name], Variable | None],
    global_shared: Callable[[str], bool],
) -> cst.Name | None:
    """The first of ``names`` (names one statement binds) that code of another scope may
    read: a name declared ``global`` or ``nonlocal`` anywhere in the file, a name read in a
    nested function, lambda or class, a module-level name ``global_shared`` says other files
    (or the file's own ``exec``/``globals()``) may reach, or one whose reads are unknown; None
    when each is read only in its own scope."""
    for name in names:
        scope = scope_of(name, parent_of)
        if scope is None:
            return name
        if isinstance(scope, cst.Module) and global_shared(name.value):
            return name
        module = scope if isinstance(scope, cst.Module) else module_of(scope, parent_of)
        if module is None or declared_global(module, name.value):
            return name
        found = variable(name)
        if found is None or any(scope_of(r[0], parent_of) is not scope for r in found.reads):
            return name
    return None
