"""Flow-aware receiver checks: is every binding that reaches ``opt`` the translated optimizer?

libcst's scope analysis is not flow-sensitive (a use sees the assignments written before it,
also in a loop whose later statement rebinds the name), so the safe answer takes every binding
of the receiver: each assignment of the name in its scope, each ``self.x = ...`` of the class,
and, for a parameter the resolver typed from its callers, what every call passes. A call on
the receiver is rewritten only when none of those binds something else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import libcst as cst

from ml_switcheroo.analysis.resolver import Binding, Resolver
from ml_switcheroo.spec.signature import code_of

NEUTRAL = "neutral"  # `opt = None`, or a parameter typed by its annotation or its callers
TRANSLATED = "translated"  # a constructor of the receiver's type whose hook succeeds
TORCH = "torch"  # a constructor of the receiver's type left in an escape hatch
OTHER = "other"  # anything else: a user object, a loop variable, an untyped parameter

_MAX_CALLER_DEPTH = 3


@dataclass(frozen=True)
class Leaf:
    """One binding that reaches a receiver, what kind it is, and the parameter it came
    through (when a caller passes it)."""

    binding: Binding
    kind: str
    via: cst.Param | None = None


@dataclass(frozen=True)
class ReceiverBindings:
    """Classifies the bindings of receivers of one receiver type (``entry.receiver_type``)."""

    resolver: Resolver
    receiver_type: str | None
    constructor_type: Callable[[cst.Call], str | None]  # type a wired constructor returns
    translates: Callable[[cst.Call], bool]  # the constructor's hook succeeds

    def leaves(
        self, receiver: cst.BaseExpression, enclosing_class: cst.ClassDef | None
    ) -> list[Leaf]:
        """Every binding that reaches ``receiver``, classified."""
        bindings = self.resolver.receiver_bindings(receiver, enclosing_class) or []
        found = self.resolver.receiver_type(receiver, enclosing_class)
        typed = found is not None and not found.probable  # a guess from a name is no type
        return self._classify(bindings, typed, None, 0)

    def _classify(
        self, bindings: list[Binding], typed: bool, via: cst.Param | None, depth: int
    ) -> list[Leaf]:
        leaves: list[Leaf] = []
        for binding in bindings:
            if isinstance(binding.node, cst.Param):
                leaves.extend(self._parameter(binding, typed, depth))
            else:
                leaves.append(Leaf(binding, self._kind(binding.value), via))
        return leaves

    def _parameter(self, binding: Binding, typed: bool, depth: int) -> list[Leaf]:
        """An unannotated parameter typed from its callers is what they pass; one typed by
        its annotation is left to the resolver's answer; an untyped one (or one only guessed
        from its name) may be anything."""
        param = binding.node
        assert isinstance(param, cst.Param)
        if not typed:
            return [Leaf(binding, OTHER)]
        arguments = None
        if param.annotation is None and binding.assignment is not None:
            arguments = self.resolver.caller_arguments(param, binding.assignment)
        if arguments is None or depth >= _MAX_CALLER_DEPTH:
            return [Leaf(binding, NEUTRAL)]
        leaves: list[Leaf] = []
        for argument in arguments:
            if isinstance(argument, cst.Name):
                inner = self.resolver.receiver_bindings(argument, None) or []
                leaves.extend(self._classify(inner, True, param, depth + 1))
            else:
                leaves.append(Leaf(Binding(argument, argument), self._kind(argument), param))
        return leaves

    def _kind(self, value: cst.BaseExpression | None) -> str:
        if isinstance(value, cst.Name) and value.value == "None":
            return NEUTRAL
        if not isinstance(value, cst.Call):
            return OTHER
        if self.receiver_type is None or self.constructor_type(value) != self.receiver_type:
            return OTHER
        return TRANSLATED if self.translates(value) else TORCH


def describe(leaf: Leaf) -> str:
    """What a binding binds, for a reason: ``to `torch.optim.LBFGS(...)`, which stays ...``."""
    value = leaf.binding.value
    if isinstance(leaf.binding.node, cst.Param):
        return "as a parameter, which may be any object"
    if leaf.kind == TORCH and isinstance(value, cst.Call):
        return f"to `{code_of(value.func).strip()}(...)`, which stays a torch optimizer"
    if isinstance(value, cst.Call):
        return f"to `{code_of(value.func).strip()}(...)`, which is not a translated optimizer"
    if value is not None:
        text = " ".join(code_of(value).split())
        text = text if len(text) <= 40 else text[:37] + "..."
        return f"to `{text}`, which is not a translated optimizer"
    return "by a statement that is not the assignment of a translated optimizer"
