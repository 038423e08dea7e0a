"""Imports of one file: the map's imports added once, torch imports no longer used removed.

``ImportEdits`` is made per file by the engine. ``prune`` removes the source imports whose every
use a translated statement discarded (unless ``__all__`` may export them, the file runs code
from strings, or a use is not a plain name); ``add`` inserts the target's imports after the
leading import block; ``check_names`` refuses to emit ``optax.x`` where ``optax`` is already
bound to something else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import libcst as cst
from libcst.metadata import Assignment, GlobalScope, ImportAssignment

from ml_switcheroo.analysis.exports import exported_names
from ml_switcheroo.analysis.resolver import Resolver
from ml_switcheroo.rewrite.layout import is_pragma, lost_comments
from ml_switcheroo.rewrite.statements import Removed, calls_in, carried_comments
from ml_switcheroo.spec import escape_hatch
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.semantic_map import SemanticMap
from ml_switcheroo.spec.signature import code_of, dotted_name


class ImportEdits:
    """Import insertion and pruning for one file (``names``: uses counted so far; ``removed``:
    placeholders of removed statements, shared with the statement settling)."""

    def __init__(
        self,
        semantic_map: SemanticMap,
        tree: cst.Module,
        scopes: Mapping[cst.CSTNode, Any],
        resolver: Callable[[], Resolver],
        names: Counter[str],
        removed: Removed,
    ) -> None:
        self.semantic_map = semantic_map
        self.tree = tree
        self.scopes = scopes
        self.resolver = resolver
        self.names = names
        self.removed = removed
        self._exports: tuple[frozenset[str] | None] | None = None  # `__all__`, once read
        self._dynamic_code: bool | None = None  # the file calls exec/eval, once read

    def prune(
        self, body: Sequence[cst.BaseStatement], discarded: Counter[str], *, module_level: bool
    ) -> list[cst.BaseStatement]:
        """``body`` without the source imports that ``discarded`` uses leave unused."""
        if not discarded:
            return list(body)
        result = []
        for statement in body:
            if isinstance(statement, cst.SimpleStatementLine) and id(statement) not in self.removed:
                statement = self._prune_import_line(statement, discarded, module_level)
            result.append(statement)
        return result

    def _prune_import_line(
        self, line: cst.SimpleStatementLine, discarded: Counter[str], module_level: bool
    ) -> cst.SimpleStatementLine:
        kept: list[cst.BaseSmallStatement] = []
        changed = False
        for small in line.body:
            if isinstance(small, (cst.Import, cst.ImportFrom)):
                pruned = self._prune_import(small, discarded, module_level)
                if pruned is not small:
                    changed = True
                if pruned is None:
                    continue
                kept.append(pruned)
            else:
                kept.append(small)
        if not changed:
            return line
        if not kept:
            placeholder = line.with_changes(body=[cst.Pass()])
            self.removed[id(placeholder)] = (placeholder, carried_comments(line))
            return placeholder
        kept[-1] = kept[-1].with_changes(semicolon=cst.MaybeSentinel.DEFAULT)
        pruned = line.with_changes(body=kept)
        # Comments of the names removed from a multi-line import go above it (pragmas: dropped).
        moved = [comment for comment in lost_comments(line, pruned) if not is_pragma(comment)]
        if moved:
            lines = escape_hatch.comment_lines(moved)
            pruned = pruned.with_changes(leading_lines=[*pruned.leading_lines, *lines])
        return pruned

    def _prune_import(
        self, node: cst.Import | cst.ImportFrom, discarded: Counter[str], module_level: bool
    ) -> Any:
        if isinstance(node.names, cst.ImportStar):
            return node
        scope = self.scopes.get(node)
        if scope is None or isinstance(scope, GlobalScope) != module_level:
            return node  # a local import in a module-level block: left alone
        roots = self.semantic_map.source_roots
        module = None
        if isinstance(node, cst.ImportFrom) and node.module:
            module = dotted_name(node.module)
        if isinstance(node, cst.ImportFrom) and (
            node.relative or module is None or module.partition(".")[0] not in roots
        ):
            return node
        kept = []
        for alias in node.names:
            if self._alias_unused(node, alias, discarded, module, roots, scope):
                continue
            kept.append(alias)
        if len(kept) == len(node.names):
            return node
        if not kept:
            return None
        if node.lpar if isinstance(node, cst.ImportFrom) else False:
            return node.with_changes(names=kept)
        kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return node.with_changes(names=kept)

    def _alias_unused(
        self,
        node: cst.Import | cst.ImportFrom,
        alias: cst.ImportAlias,
        discarded: Counter[str],
        module: str | None,
        roots: frozenset[str],
        scope: Any,
    ) -> bool:
        imported = dotted_name(alias.name)
        if imported is None:
            return False
        if module is None and imported.partition(".")[0] not in roots:
            return False
        bound = alias.evaluated_alias or (
            imported if module is not None else imported.partition(".")[0]
        )
        key = bound if (alias.asname or module is not None) else imported
        if discarded[key] == 0:
            # nothing of ours used it: not our import to remove (`import torch.nn.parallel`
            # also loads the submodule, which other code may reach through `torch.nn.parallel`:
            # it goes only when a use of `torch.nn.parallel` itself was discarded)
            return False
        remaining = self.names[bound] - discarded[bound]
        if alias.asname is None and module is None and "." in imported:
            # `import torch.optim` binds `torch`; drop it when `torch.optim` is unused and
            # `torch` stays bound (or is unused too).
            dotted_left = self.names[imported] - discarded[imported]
            if remaining > 0 and dotted_left > 0:
                return False
            if remaining > 0 and not _binds_elsewhere(scope, bound, node):
                return False
        elif remaining > 0:
            return False
        if isinstance(scope, GlobalScope) and self._may_be_exported(bound):
            return False
        if self._runs_dynamic_code():
            return False
        return not _has_non_name_access(scope, bound, node)

    def _runs_dynamic_code(self) -> bool:
        """Whether the file calls one of the map's ``dynamic_code_calls`` (``exec``, ``eval``):
        the code it runs from a string may use any import."""
        if self._dynamic_code is None:
            resolver, dynamic = self.resolver(), self.semantic_map.dynamic_code_calls
            self._dynamic_code = any(
                resolver.called_function(call.func) in dynamic for call in calls_in(self.tree)
            )
        return self._dynamic_code

    def _may_be_exported(self, name: str) -> bool:
        """Whether the module's ``__all__`` lists ``name``, or cannot be read (then any may be)."""
        if self._exports is None:
            self._exports = (exported_names(self.tree, self.scopes),)
        names = self._exports[0]
        return names is None or name in names

    def add(self, body: list[cst.BaseStatement], keys: list[str]) -> list[cst.BaseStatement]:
        """Insert the missing imports after the leading import block.

        A removed import still stands in ``body`` as a placeholder and counts as part of that
        block, so a new import put right after it inherits its blank lines and comments when
        the body is settled (``import torch`` replaced by ``import optax`` keeps the layout).
        """
        wanted = [self.semantic_map.imports[key] for key in dict.fromkeys(keys)]
        present = {
            _normalized(code_of(small))
            for stmt in body
            if isinstance(stmt, cst.SimpleStatementLine)
            for small in stmt.body
            if isinstance(small, (cst.Import, cst.ImportFrom))
        }
        missing = [spec for spec in wanted if _normalized(spec.statement) not in present]
        if not missing:
            return body
        index = import_insertion_index(body, lambda s: id(s) in self.removed)
        new_lines = [spec.node() for spec in missing]
        return [*body[:index], *new_lines, *body[index:]]

    def check_names(self, call: cst.CSTNode, keys: list[str]) -> None:
        """Refuse to emit ``optax.x`` where ``optax`` already means something else."""
        scope = self.scopes.get(call)
        if scope is None:
            return
        for key in dict.fromkeys(keys):
            spec = self.semantic_map.imports[key]
            for assignment in scope[key]:
                if isinstance(assignment, ImportAssignment) and _import_matches(
                    assignment.node, spec.statement
                ):
                    continue
                raise Untranslatable(
                    f"the name `{key}` is already bound here to something else; "
                    f"the translation needs `{spec.statement}`",
                    f"rename the existing `{key}`, then run the codemod again",
                )


def _normalized(statement: str) -> str:
    return " ".join(statement.replace(";", " ").split())


def _import_matches(node: cst.CSTNode, statement: str) -> bool:
    """Whether the import ``node`` is ``statement``, or binds the same names to the same
    modules (``from jax import numpy as jnp`` for ``import jax.numpy as jnp``)."""
    if isinstance(node, (cst.Import, cst.ImportFrom)):
        if _normalized(code_of(node)) == _normalized(statement):
            return True
        wanted = _bindings(cst.parse_statement(statement).body[0])  # type: ignore[attr-defined]
        return bool(wanted) and wanted.items() <= _bindings(node).items()
    return False


def _bindings(node: cst.CSTNode) -> dict[str, str]:
    """The names a plain import binds, each with the dotted name it is bound to (``import
    jax.numpy as jnp``: jnp -> jax.numpy; ``import jax.numpy``: jax -> jax); {} for a
    relative or star import."""
    found: dict[str, str] = {}
    if isinstance(node, cst.Import):
        for alias in node.names:
            dotted = code_of(alias.name).strip()
            if alias.asname is not None:
                found[code_of(alias.asname.name).strip()] = dotted
            else:
                found[dotted.split(".")[0]] = dotted.split(".")[0]
    elif isinstance(node, cst.ImportFrom) and not node.relative and node.module is not None:
        if isinstance(node.names, cst.ImportStar):
            return {}
        module = code_of(node.module).strip()
        for alias in node.names:
            name = code_of(alias.name).strip()
            bound = code_of(alias.asname.name).strip() if alias.asname is not None else name
            found[bound] = f"{module}.{name}"
    return found


def _binds_elsewhere(scope: Any, name: str, node: cst.CSTNode) -> bool:
    return any(
        isinstance(assignment, Assignment) and assignment.node is not node
        for assignment in scope.assignments[name]
    )


def _has_non_name_access(scope: Any, name: str, node: cst.CSTNode) -> bool:
    """Whether the import is also used where we do not count (e.g. a string annotation)."""
    for assignment in scope.assignments[name]:
        if getattr(assignment, "node", None) is not node:
            continue
        for access in assignment.references:
            if not isinstance(access.node, (cst.Name, cst.Attribute)):
                return True
    return False


def import_insertion_index(
    body: Sequence[cst.BaseStatement], is_removed_import: Callable[[cst.BaseStatement], bool]
) -> int:
    """After the docstring, ``__future__`` imports and the leading import block."""
    index = 0
    if body and _is_docstring(body[0]):
        index = 1
    last_import = index
    for position in range(index, len(body)):
        statement = body[position]
        if (
            is_removed_import(statement)
            or isinstance(statement, cst.SimpleStatementLine)
            and all(isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body)
        ):
            last_import = position + 1
            continue
        break
    return last_import


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )
