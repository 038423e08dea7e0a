"""``Planner``'s words for escape reasons: where an object comes from and where it goes
(``_origin``, ``_where_it_goes``, ``_place``...).

Split from ``plan.py`` by ``tools/split_plan.py``: the methods of ``NoteFacts`` run on
``Planner`` (one of its bases) and use the state ``Planner.__init__`` sets.
"""

from __future__ import annotations

import os

import libcst as cst
from libcst.metadata import Assignment

from ml_switcheroo.analysis.exits import Exits
from ml_switcheroo.analysis.factories import (
    returns_of,
)
from ml_switcheroo.analysis.plan_facts import Site
from ml_switcheroo.analysis.plan_places import _optimizer_argument
from ml_switcheroo.analysis.plan_walks import _calls_named, _parameter_functions, _short
from ml_switcheroo.spec.signature import code_of


class NoteFacts:
    """The methods of ``Planner`` on the concern of ``plan_notes`` (a mixin)."""

    def _local_definition(self, call: cst.Call) -> cst.FunctionDef | None:
        """The function of this file ``call`` calls by its name (bound once, to a ``def``)."""
        func = call.func
        scope = self.resolver.scopes.get(func)
        if not isinstance(func, cst.Name) or scope is None:
            return None
        bindings = [a for a in scope[func.value] if isinstance(a, Assignment)]
        if len(bindings) != 1 or not isinstance(bindings[0].node, cst.FunctionDef):
            return None
        return bindings[0].node

    def _where_it_goes(self, scheduler: Site) -> str | None:
        """Where a scheduler leaves this file's view: the first ``return`` or call argument
        that mentions it (``return opt, sched``, ``Trainer(model, opt, sched)``)."""
        if scheduler.target is None:
            return None
        if self._exits is None:  # one walk of the module, for the first scheduler that asks
            self._exits = Exits(self.module)
        text = code_of(scheduler.target).strip()
        places = [self._exit_words(text, node) for node in self._exits.of(text)[:2]]
        return "; ".join(places) or None

    def _exit_words(self, text: str, place: cst.Return | cst.Call) -> str:
        """``text`` is returned at, or passed to a call at, ``place``."""
        if isinstance(place, cst.Return):
            return f"`{text}` is returned at {self._place(place)}"
        return f"`{text}` is passed to {_short(place.func, 40)}() at {self._place(place)}"

    def _origin(self, site: Site) -> str | None:
        """Where the scheduler's optimizer argument comes from, when it is a name or ``self.x``
        of this file: a parameter, or the assignments of it."""
        argument = _optimizer_argument(site)
        if argument is None or not isinstance(argument, (cst.Name, cst.Attribute)):
            return None
        bindings = self.resolver.receiver_bindings(argument, site.enclosing_class)
        if not bindings:
            return None
        text = code_of(argument).strip()
        places = []
        for binding in bindings[:3]:
            node = binding.node
            function = self._parameter_function(node)
            if function is not None:
                places.append(
                    f"a parameter of {function} ({self._place(node)})"
                    + self._factory_calls_note(site, function)
                )
            else:
                value = binding.value
                shown = f" from `{_short(value)}`" if value is not None else ""
                places.append(f"assigned at {self._place(node)}{shown}")
        more = f" and {len(bindings) - 3} more" if len(bindings) > 3 else ""
        return f"`{text}` is " + ", ".join(places) + more

    def _factory_calls_note(self, site: Site, function: str) -> str:
        """Why a factory of the scheduler was not followed to its caller: called several
        times, or with more than one ``return`` (``analysis/factories.py``)."""
        definition = site.function
        if not isinstance(definition, cst.FunctionDef) or f"{definition.name.value}()" != function:
            return ""
        calls = _calls_named(self.module, definition.name.value)
        places = ", ".join(self._place(call) for call in calls[:3])
        if len(calls) > 1:
            return f", called {len(calls)} times ({places}): each call may pass another optimizer"
        returns = returns_of(definition)
        if len(calls) == 1 and len(returns) > 1:
            lines = ", ".join(self._place(node) for node in returns[:3])
            return f", called at {places}, returns on {len(returns)} paths ({lines})"
        at_module_level = any(statement is definition for statement in self.module.body)
        return self._other_files_note(definition) if not calls and at_module_level else ""

    def _other_files_note(self, definition: cst.FunctionDef) -> str:
        """For a scheduler factory called only from other files: where, and that each such
        call is translated in place of this scheduler where it folds (``CrossFile.factory_of``),
        so this torch scheduler stays for the calls that do not."""
        cross = self.resolver.cross_file
        places = cross.factory_call_places(definition.name.value) if cross is not None else []
        if not places and cross is not None and not cross.repository_calls(definition.name.value):
            return (
                ", which no file of this repository calls (an exported function: the optimizer "
                "its callers pass is not known here)"
            )
        if not places:
            return ""
        shown = ", ".join(places[:3]) + (f" and {len(places) - 3} more" if len(places) > 3 else "")
        return (
            f", called from other files ({shown}), where the call is translated in place of this "
            "scheduler when it folds into the caller's optimizer; this one stays for the calls "
            "that keep torch"
        )

    def _parameter_function(self, node: cst.CSTNode) -> str | None:
        """``name()`` (or ``a lambda``) of the function ``node`` is a parameter of (a Param or
        its name), None when it is not one (``_parameter_functions``, one walk per module)."""
        if self._parameters is None:
            self._parameters = _parameter_functions(self.module)
        return self._parameters.get(id(node))

    def _place(self, node: cst.CSTNode) -> str:
        """``file.py:line`` of a node of the planned module."""
        key = self.plan.key(node)
        name = os.path.basename(self.filename) if self.filename else "this file"
        return f"{name}:{key.line}" if key is not None else name
