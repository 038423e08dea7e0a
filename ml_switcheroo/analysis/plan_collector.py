"""The planner's one walk of a module (``_Collector``): every wired call with its statement, block
and enclosing loops.

Split from ``plan.py`` by ``tools/split_plan.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.plan_facts import Site, WireFunction, _is_control
from ml_switcheroo.spec.escape_hatch import escaped_statements


class _Collector(cst.CSTVisitor):
    """Finds wired calls and ``.backward()`` calls with their statement, block and controls."""

    def __init__(
        self,
        wire: WireFunction,
        backward_methods: frozenset[str],
        attributes: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__()
        self.wire = wire
        self.backward_methods = backward_methods
        self.attributes = attributes  # the names of wired attribute reads (``param_groups``)
        self.busy: set[int] = set()  # ids of the statements around what ``_hold`` marked
        self.parents: dict[int, cst.BaseStatement | None] = {}  # id(statement) -> statement
        self.sites: list[Site] = []
        self.backwards: list[Site] = []
        self.blocks: dict[int, cst.CSTNode] = {}
        self._path: list[tuple[int, int]] = []
        self._statements: list[cst.BaseStatement] = []
        self._controls: list[cst.CSTNode] = []
        self._classes: list[cst.ClassDef] = []
        self._calls: list[cst.Call] = []
        self.name_positions: dict[int, tuple[int, int]] = {}  # id(Name) -> (block, index)
        self._position: dict[int, tuple[int, int]] = {}  # set anew by visit_Module
        self._escaped: set[int] = set()
        self.hatched: set[int] = set()  # ids of the calls in those escaped statements
        # this class's visit_X/leave_X by node type (``cst_walk.on_visit``/``on_leave``'s)
        self._visit_of, self._leave_of = cst_walk.lookups(self)

    # blocks and statements
    def _enter_body(self, owner: cst.CSTNode, body: Sequence[cst.BaseStatement]) -> None:
        self.blocks[id(owner)] = owner
        for index, statement in enumerate(body):
            self._position[id(statement)] = (id(owner), index)
        self._escaped.update(escaped_statements(body))

    def visit_Module(self, node: cst.Module) -> None:
        self._position = {}
        self._escaped = set()
        self._enter_body(node, node.body)

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._enter_body(node, node.body)

    def on_visit(self, node: cst.CSTNode) -> bool:
        node_id = id(node)
        if node_id in self._escaped:  # inside an escape hatch from an earlier run
            self.hatched.update(id(n) for n in cst_walk.walk(node) if isinstance(n, cst.Call))
            return False  # not planned again
        position = self._position.get(node_id)
        if position is not None:
            self.parents[node_id] = self._statements[-1] if self._statements else None
            self._path.append(position)
            self._statements.append(node)  # type: ignore[arg-type]
        if _is_control(node):
            self._controls.append(node)
        method = self._visit_of(type(node))  # cst_walk.on_visit
        return method is None or method(self, node) is not False

    def on_leave(self, original_node: cst.CSTNode) -> None:
        node_id = id(original_node)
        if node_id in self._escaped:
            return
        method = self._leave_of(type(original_node))  # cst_walk.on_leave
        if method is not None:
            method(self, original_node)
        if _is_control(original_node):
            self._controls.pop()
        if node_id in self._position:
            self._path.pop()
            self._statements.pop()

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.append(node)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._classes.pop()

    def _hold(self) -> None:
        """Mark the statements around the node being visited as ones the rewrite enters."""
        self.busy.update(id(statement) for statement in self._statements)

    def visit_Import(self, node: cst.Import) -> None:
        self._hold()

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self._hold()

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if node.attr.value in self.attributes:
            self._hold()

    def visit_Name(self, node: cst.Name) -> None:
        if self._path:
            self.name_positions[id(node)] = self._path[-1]

    def visit_Param(self, node: cst.Param) -> None:
        if self._path:
            self.name_positions[id(node)] = self._path[-1]

    def visit_Call(self, node: cst.Call) -> None:
        parent = self._calls[-1] if self._calls else None
        self._calls.append(node)
        if not self._statements:
            return
        enclosing = self._classes[-1] if self._classes else None
        wired = self.wire(node, enclosing)
        func = node.func
        is_backward = isinstance(func, cst.Attribute) and func.attr.value in self.backward_methods
        if wired is None and not is_backward:
            return
        self._hold()
        entry = wired[0] if wired else None
        site = Site(
            call=node,
            entry=entry,
            receiver=func.value if isinstance(func, cst.Attribute) else None,
            statement=self._statements[-1],
            path=tuple(self._path),
            controls=tuple(self._controls),
            enclosing_class=enclosing,
            target=_assigned_target(self._statements[-1], node),
            value_used=not _is_expression_statement(self._statements[-1], node),
            parent_call=parent,
        )
        (self.sites if wired else self.backwards).append(site)

    def leave_Call(self, original_node: cst.Call) -> None:
        self._calls.pop()


def _assigned_target(statement: cst.BaseStatement, call: cst.Call) -> cst.BaseExpression | None:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if isinstance(small, cst.Assign) and small.value is call and len(small.targets) == 1:
        return small.targets[0].target
    if isinstance(small, cst.AnnAssign) and small.value is call:
        return small.target
    return None


def _is_expression_statement(statement: cst.BaseStatement, call: cst.Call) -> bool:
    body = getattr(statement, "body", None)
    if isinstance(statement, cst.SimpleStatementLine):
        return any(isinstance(s, cst.Expr) and s.value is call for s in statement.body)
    if isinstance(body, cst.SimpleStatementSuite):
        return any(isinstance(s, cst.Expr) and s.value is call for s in body.body)
    return False
