"""The fate of the gradients a backward pass leaves in another model's ``.grad`` (GAN steps).

``g_loss.backward()`` of a generator step also fills the discriminator's ``.grad``, because
the loss calls the discriminator. Torch then discards those gradients when, on every path
of the program from that backward pass, the discriminator's gradients are zeroed
(``optimizer_D.zero_grad()`` over all its parameters, or ``discriminator.zero_grad()``, or
a line ``reset_grad()`` calling a function of the file that only zeroes gradients, theirs
among them: ``analysis/zero_functions.py``) before anything could use them: before any
backward pass (which would add to them, and after which its optimizer would step with the
sum), any use of its optimizer other than that zero
(a step), any read of ``.grad``, any use of the model other than calling it (a clip of
``discriminator.parameters()``, the model handed to a function) and any call of a function of
the file that mentions either. Then the backward pass trains exactly the one model its
optimizer steps, whatever else the loss calls.

The walk follows the statements of the file as Python runs them: an ``if`` takes each branch,
a loop may run zero times or again, ``break`` and ``continue`` jump, the end of the module
ends the program (nothing reads the gradients afterwards). Anything else on a path (a
``return``, ``raise``, ``try``, ``yield``, a one-line compound statement, a ``for``/``while``
with ``else:``, the end of a function, whose caller may read them) is not proven. A position
reached twice is walked once (what follows a position does not depend on the path to it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import libcst as cst

from ml_switcheroo.analysis import cst_walk

_LOOPS = (cst.For, cst.While)
_DEFINITIONS = (cst.FunctionDef, cst.ClassDef)
_JUMPS = (cst.Return, cst.Raise)


@dataclass(frozen=True)
class GradientOwner:
    """A model other than the one a step trains, and the optimizer over all its parameters:
    ``optimizer`` is a plain name of the file, ``model`` a plain name or a dotted submodule
    (``model.encoder``, s40: any use of ``model`` but calling it or that path is a use)."""

    model: str
    optimizer: str

    @property
    def root(self) -> str:
        """The name ``model`` starts with."""
        return self.model.partition(".")[0]

    def dotted(self) -> bool:
        return "." in self.model


@dataclass(frozen=True)
class TorchFacts:
    """What the map knows about torch: the methods that run a backward pass, zero a module's
    or an optimizer's gradients, the attributes holding a gradient, and the names of the
    functions and methods that read gradients or hand out parameters (the clip functions,
    ``parameters``: through an alias of the model they would escape the names' check)."""

    backward_methods: frozenset[str]
    zero_methods: frozenset[str]
    gradient_attributes: frozenset[str]
    gradient_calls: frozenset[str] = frozenset()
    gradient_free_methods: frozenset[str] = frozenset()
    # the names whose gradients a line zeroes by calling a function of the file that only
    # zeroes gradients (``reset_grad()``: ``analysis/zero_functions.py``); empty for others
    zeroed_by_call: Callable[[cst.CSTNode], frozenset[str]] = lambda statement: frozenset()


Parents = Callable[[cst.CSTNode], "cst.CSTNode | None"]


def discarded(
    backward: cst.BaseStatement,
    owner: GradientOwner,
    facts: TorchFacts,
    parent_of: Parents,
    summed: frozenset[int] = frozenset(),
) -> str | None:
    """None when every path from ``backward`` zeroes ``owner``'s gradients before anything
    uses them (see the module's doc); else why not, naming the statement. ``summed``: ids of
    lines ``loss.backward()`` the walk passes (the other backward passes of the step holding
    ``backward``: their gradients join the same ``.grad``, zeroed with it)."""
    functions = _functions_of(_root(backward, parent_of))
    walk = _Walk(owner, facts, parent_of, functions, summed)
    start = _position_of(backward, parent_of)
    if start is None:
        return f"`{_shown(backward)}` is not a statement of a block"
    return walk.from_position(start[0], start[1] + 1)


@dataclass
class _Walk:
    owner: GradientOwner
    facts: TorchFacts
    parent_of: Parents
    functions: dict[str, list[cst.FunctionDef]]
    summed: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        self.seen: set[tuple[int, int]] = set()

    def from_position(self, block: cst.CSTNode, index: int) -> str | None:
        """Walk on from statement ``index`` of ``block``'s body (a Module, IndentedBlock)."""
        pending = [(block, index)]
        while pending:
            block, index = pending.pop()
            if (id(block), index) in self.seen:
                continue
            self.seen.add((id(block), index))
            statements = list(block.body)  # type: ignore[attr-defined]
            if index >= len(statements):
                after = self._after_block(block)
                if isinstance(after, str):
                    return after
                pending.extend(after)
                continue
            followed = self._statement(statements[index], block, index)
            if isinstance(followed, str):
                return followed
            pending.extend(followed)
        return None

    def _statement(
        self, statement: cst.BaseStatement, block: cst.CSTNode, index: int
    ) -> str | list[tuple[cst.CSTNode, int]]:
        """The positions after ``statement`` (none: it zeroes the gradients), or a reason."""
        if self._zeroes(statement):
            return []
        if isinstance(statement, _DEFINITIONS):
            return [(block, index + 1)]
        if isinstance(statement, cst.SimpleStatementLine):
            return self._simple(statement, block, index)
        if not isinstance(getattr(statement, "body", None), cst.IndentedBlock):
            return f"`{_header(statement)}` runs before `{self.owner.optimizer}.zero_grad()`"
        if isinstance(statement, cst.If):
            return self._if(statement, block, index)
        if isinstance(statement, _LOOPS) and statement.orelse is None:
            used = self._used(statement.iter if isinstance(statement, cst.For) else statement.test)
            return used or [(statement.body, 0), (block, index + 1)]
        if isinstance(statement, cst.With):
            used = next((self._used(item) for item in statement.items if self._used(item)), None)
            return used or [(statement.body, 0)]
        return f"`{_header(statement)}` runs before `{self.owner.optimizer}.zero_grad()`"

    def _if(
        self, statement: cst.If, block: cst.CSTNode, index: int
    ) -> str | list[tuple[cst.CSTNode, int]]:
        """Each branch of an ``if``/``elif``/``else`` chain (or past it when none runs)."""
        positions: list[tuple[cst.CSTNode, int]] = []
        branch: cst.If | cst.Else | None = statement
        while isinstance(branch, cst.If):
            used = self._used(branch.test)
            if used:
                return used
            if not isinstance(branch.body, cst.IndentedBlock):
                return f"`{_header(branch)}` runs before `{self.owner.optimizer}.zero_grad()`"
            positions.append((branch.body, 0))
            branch = branch.orelse
        if branch is None:
            positions.append((block, index + 1))
        elif isinstance(branch.body, cst.IndentedBlock):
            positions.append((branch.body, 0))
        else:
            return f"an `else:` runs before `{self.owner.optimizer}.zero_grad()`"
        return positions

    def _simple(
        self, statement: cst.SimpleStatementLine, block: cst.CSTNode, index: int
    ) -> str | list[tuple[cst.CSTNode, int]]:
        """A line of small statements: a use of the gradients, a jump, or on to the next."""
        if id(statement) in self.summed:
            return [(block, index + 1)]
        used = self._used(statement)
        if used:
            return used
        for small in statement.body:
            if isinstance(small, _JUMPS) or _holds(small, (cst.Yield, cst.Await)):
                return f"`{_shown(statement)}` leaves before `{self.owner.optimizer}.zero_grad()`"
            if isinstance(small, (cst.Break, cst.Continue)):
                return self._jump(small, block)
        return [(block, index + 1)]

    def _jump(self, jump: cst.Break | cst.Continue, block: cst.CSTNode) -> str | list:
        """``break``: past the innermost loop; ``continue``: its next iteration or past it."""
        loop = _enclosing(block, self.parent_of, _LOOPS)
        if loop is None:
            return "a `break` or `continue` outside a loop"
        past = _position_of(loop, self.parent_of)
        if past is None:
            return f"`{_header(loop)}` is not a statement of a block"
        after = [(past[0], past[1] + 1)]
        return after if isinstance(jump, cst.Break) else [(loop.body, 0), *after]

    def _after_block(self, block: cst.CSTNode) -> str | list[tuple[cst.CSTNode, int]]:
        """Where Python goes at the end of ``block``: past its ``if``/``with``, into a loop's
        next iteration or past it; the end of the module ends the program."""
        if isinstance(block, cst.Module):
            return []
        owner = self.parent_of(block)
        while isinstance(owner, (cst.Else, cst.If)) and isinstance(
            self.parent_of(owner), (cst.If, cst.Else)
        ):
            owner = self.parent_of(owner)  # an elif / else: past the whole chain
        if isinstance(owner, (cst.If, cst.With, *_LOOPS)):
            past = _position_of(owner, self.parent_of)
            if past is None:
                return f"`{_header(owner)}` is not a statement of a block"
            after = [(past[0], past[1] + 1)]
            return [(owner.body, 0), *after] if isinstance(owner, _LOOPS) else after
        if isinstance(owner, cst.FunctionDef):
            return (
                f"`{owner.name.value}` returns before `{self.owner.optimizer}.zero_grad()` "
                "(its caller may use the gradients)"
            )
        return f"the gradients of `{self.owner.model}` are not zeroed on every path"

    def _zeroes(self, statement: cst.BaseStatement) -> bool:
        """``optimizer.zero_grad(...)`` or ``model.zero_grad(...)`` alone on its line, or a
        line calling a function of the file that only zeroes gradients, theirs among them."""
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            return False
        if self.facts.zeroed_by_call(statement) & {self.owner.model, self.owner.optimizer}:
            return True
        small = statement.body[0]
        call = small.value if isinstance(small, cst.Expr) else None
        return (
            isinstance(call, cst.Call)
            and isinstance(call.func, cst.Attribute)
            and call.func.attr.value in self.facts.zero_methods
            and self._zeroed_owner(call.func.value)
            and all(argument.keyword is not None for argument in call.args)
        )

    def _zeroed_owner(self, receiver: cst.BaseExpression) -> bool:
        """``receiver.zero_grad()`` zeroes the owner's gradients: the optimizer, the model, or
        (for a dotted model) a module holding it (``model.zero_grad()``)."""
        if isinstance(receiver, cst.Name) and receiver.value == self.owner.optimizer:
            return True
        text = _dotted(receiver)
        return text is not None and _on_path(text, self.owner.model)

    def _used(self, node: cst.CSTNode) -> str | None:
        """Why ``node`` may use the owner's gradients: a backward pass, a ``.grad``, the
        optimizer, the model other than called, a function of the file mentioning them."""
        called = {id(n.func) for n in cst_walk.walk(node) if isinstance(n, cst.Call)}
        if self.owner.dotted():
            reason = self._root_used(node, called)
            if reason is not None:
                return reason
        called |= self._gradient_free_receivers(node)
        attributes = {id(n.attr) for n in cst_walk.walk(node) if isinstance(n, cst.Attribute)}
        for inner in cst_walk.walk(node):
            if id(inner) in attributes:
                continue
            reason = self._use(inner, _shown(node), id(inner) in called)
            if reason is not None:
                return reason
        return None

    def _root_used(self, node: cst.CSTNode, called: set[int]) -> str | None:
        """For a dotted model (``model.encoder``): a read of ``model`` other than a call of it
        or of a module on the way (``model(x)``, ``model.encoder(x)``): ``model.head(x)``,
        ``model.parameters()``, ``f(model)`` may all reach the submodule's gradients."""
        chains = {id(n.value): n for n in cst_walk.walk(node) if isinstance(n, cst.Attribute)}
        attributes = {id(n.attr) for n in chains.values()}
        for inner in cst_walk.walk(node):
            if not isinstance(inner, cst.Name) or inner.value != self.owner.root:
                continue
            if id(inner) in attributes:
                continue
            chain: cst.BaseExpression = inner
            while id(chain) in chains:
                chain = chains[id(chain)]
            text = _dotted(chain)
            if id(chain) in called and text is not None and _on_path(text, self.owner.model):
                continue
            zero = f"`{self.owner.optimizer}.zero_grad()`"
            return f"`{_shown(node)}` uses `{self.owner.root}` before {zero}"
        return None

    def _gradient_free_receivers(self, node: cst.CSTNode) -> set[int]:
        """Ids of the owner's model as the receiver of a method of the map's
        ``gradient_free_methods`` called with no argument (``netD.state_dict()``)."""
        return {
            id(n.func.value)
            for n in cst_walk.walk(node)
            if isinstance(n, cst.Call)
            and not n.args
            and isinstance(n.func, cst.Attribute)
            and n.func.attr.value in self.facts.gradient_free_methods
            and isinstance(n.func.value, cst.Name)
            and n.func.value.value == self.owner.model
        }

    def _use(self, inner: cst.CSTNode, shown: str, called: bool) -> str | None:
        zero = f"`{self.owner.optimizer}.zero_grad()`"
        if isinstance(inner, cst.Attribute) and inner.attr.value in self.facts.gradient_attributes:
            return f"`{shown}` reads a gradient before {zero}"
        if (
            isinstance(inner, cst.Call)
            and isinstance(inner.func, cst.Attribute)
            and inner.func.attr.value in self.facts.backward_methods
        ):
            return f"`{shown}` runs a backward pass before {zero}"
        if isinstance(inner, cst.Call) and _last_name(inner.func) in self.facts.gradient_calls:
            return f"`{shown}` may read gradients or parameters before {zero}"
        if not isinstance(inner, cst.Name):
            return None
        if inner.value == self.owner.optimizer:
            return f"`{shown}` uses `{self.owner.optimizer}` before {zero}"
        if inner.value == self.owner.model and not called:
            return f"`{shown}` uses `{self.owner.model}` other than calling it before {zero}"
        if called and inner.value != self.owner.model and self._mentions(inner.value):
            return f"`{shown}` calls `{inner.value}`, a function of the file that may use them"
        return None

    def _mentions(self, function: str) -> bool:
        """A function of the file named ``function`` may read the owner's gradients."""
        watched = {self.owner.model, self.owner.root, self.owner.optimizer}
        for definition in self.functions.get(function, []):
            if _names(definition) & watched or any(
                isinstance(n, cst.Attribute)
                and (
                    n.attr.value in self.facts.gradient_attributes
                    or n.attr.value in self.facts.backward_methods
                )
                for n in cst_walk.walk(definition)
            ):
                return True
        return False


def _dotted(node: cst.BaseExpression) -> str | None:
    """``a.b.c`` of a Name or a chain of attributes of one, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr.value}"
    return None


def _on_path(holder: str, model: str) -> bool:
    """``holder`` is ``model`` or a module on its path (``model`` of ``model.encoder``)."""
    return holder == model or model.startswith(holder + ".")


def _last_name(func: cst.BaseExpression) -> str | None:
    """``f`` of ``f(...)`` or ``x.y.f(...)``."""
    if isinstance(func, cst.Name):
        return func.value
    return func.attr.value if isinstance(func, cst.Attribute) else None


def _position_of(statement: cst.CSTNode, parent_of: Parents) -> tuple[cst.CSTNode, int] | None:
    """The block holding ``statement`` and its index there."""
    block = parent_of(statement)
    if not isinstance(block, (cst.Module, cst.IndentedBlock)):
        return None
    index = next((i for i, s in enumerate(block.body) if s is statement), None)
    return None if index is None else (block, index)


def _enclosing(
    node: cst.CSTNode, parent_of: Parents, kinds: tuple[type, ...]
) -> cst.CSTNode | None:
    """The innermost ancestor of ``node`` of ``kinds`` in the same function."""
    current = parent_of(node)
    while current is not None and not isinstance(current, (*kinds, cst.FunctionDef)):
        current = parent_of(current)
    return current if isinstance(current, kinds) else None


def _root(node: cst.CSTNode, parent_of: Parents) -> cst.CSTNode:
    while (parent := parent_of(node)) is not None:
        node = parent
    return node


def _functions_of(root: cst.CSTNode) -> dict[str, list[cst.FunctionDef]]:
    found: dict[str, list[cst.FunctionDef]] = {}
    for node in cst_walk.walk(root):
        if isinstance(node, cst.FunctionDef):
            found.setdefault(node.name.value, []).append(node)
    return found


def _holds(node: cst.CSTNode, kinds: tuple[type, ...]) -> bool:
    return any(isinstance(n, kinds) for n in cst_walk.walk(node))


def _names(node: cst.CSTNode) -> set[str]:
    """Names read as variables in ``node`` (not the ``attr`` of ``x.attr``)."""
    attributes = {id(n.attr) for n in cst_walk.walk(node) if isinstance(n, cst.Attribute)}
    return {
        n.value for n in cst_walk.walk(node) if isinstance(n, cst.Name) and id(n) not in attributes
    }


def _shown(node: cst.CSTNode) -> str:
    text = " ".join(cst.Module(body=[]).code_for_node(node).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _header(statement: cst.CSTNode) -> str:
    return _shown(statement).split(":")[0]
