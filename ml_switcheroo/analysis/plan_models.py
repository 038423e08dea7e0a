"""``Planner`` on optimizers' models and gradients: ``zero_grad`` calls, frozen parameters, models
changed after the optimizer is built, torch-only uses.

Split from ``plan.py`` by ``tools/split_plan.py``: the methods of ``ModelFacts`` run on
``Planner`` (one of its bases) and use the state ``Planner.__init__`` sets.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Collection, Sequence
from dataclasses import replace

import libcst as cst

from ml_switcheroo.analysis import ast_nodes, cst_walk
from ml_switcheroo.analysis.built_by_method import BuiltByMethod, built_by_method, method_caller
from ml_switcheroo.analysis.built_by_method import FileFacts as MethodFileFacts
from ml_switcheroo.analysis.changed_models import (
    NOT_DEFINED,
    Held,
    NotDefined,
    Reads,
    changed_after,
    changed_by_other_methods,
    parameter_calls,
)
from ml_switcheroo.analysis.freeze_reach import (
    FRESH_TENSOR,
    OTHER_MODEL,
    FreezeReach,
    reach_facts,
)
from ml_switcheroo.analysis.freeze_reach import (
    nodes_by_place as _nodes_by_place,
)
from ml_switcheroo.analysis.gradient_skips import (
    CutFacts,
    cut_facts,
    first_gradient_skip,
    models_called_whole,
)
from ml_switcheroo.analysis.handed_models import WHOLE_HANDED, Handed, hand_facts, spread
from ml_switcheroo.analysis.loaded_models import loaded_in, loaded_names
from ml_switcheroo.analysis.own_optimizer import OwnFacts, own_optimizer_problem
from ml_switcheroo.analysis.parameters import PART, UNKNOWN, parameters_argument, select
from ml_switcheroo.analysis.parents import parent_map
from ml_switcheroo.analysis.plain_values import OptionFacts, holds_no_parameter
from ml_switcheroo.analysis.plan_clips import _part_of
from ml_switcheroo.analysis.plan_facts import Site, _is_control
from ml_switcheroo.analysis.plan_places import (
    ModuleScan,
    _first_complex,
    _first_hook,
    _follows,
    _holds_call_of,
    _lone_backward,
    _zeroes_between_updates,
    freeze_scan,
    freeze_words,
)
from ml_switcheroo.analysis.torch_only import TorchOnlyFinder
from ml_switcheroo.analysis.unobserved_models import frozen_library_model, model_facts
from ml_switcheroo.analysis.zero_functions import ZeroFunction, zero_functions
from ml_switcheroo.spec import findings
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.roles import (
    CONSTRUCTOR,
    SCHEDULER,
    ZERO_GRAD,
)
from ml_switcheroo.spec.semantic_map import ParameterSpec
from ml_switcheroo.spec.signature import code_of, dotted_name


def _never(name: str) -> bool:
    """No file of the repository is read: nothing is found in one."""
    return False


# methods writing a namespace's mapping (``torch.optim.__dict__.update(SGD=X)``)
_DICT_WRITERS = frozenset({"update", "setdefault", "__setitem__"})


class ModelFacts:
    """The methods of ``Planner`` on the concern of ``plan_models`` (a mixin)."""

    def _optimizers_stepped_after(self, site: Site) -> list[Site]:
        found: dict[int, Site] = {}
        for step in self.plan.sites:
            stepped = self._stepped_optimizer(step)
            if stepped is None or step.function is not site.function:
                continue
            if not _follows(site, step):
                continue
            constructor = self._constructor_site(stepped, step)
            if constructor is None:
                return []
            found[id(constructor.call)] = constructor
        return list(found.values())

    # ------------------------------------------------------------------ zero_grad

    def _plan_zero_grads(self) -> None:
        """``opt.zero_grad()`` goes (JAX computes fresh gradients) when one of the optimizer's
        zero_grad() calls runs as often as its step(): under the same loops and conditions as
        one of them. Else torch accumulates gradients in .grad over several steps, which has to
        be ported: its zero_grad() calls escape."""
        by_optimizer: dict[int, list[Site]] = {}
        for site in (s for s in self.plan.sites if s.role == ZERO_GRAD and s.receiver):
            constructor = self._constructor_site(site.receiver, site)  # type: ignore[arg-type]
            if constructor is not None:
                by_optimizer.setdefault(id(constructor.call), []).append(site)
        for key, zero_grads in by_optimizer.items():
            steps = [self._counted(s) for s in self._optimizer_step_sites(self.by_call[key])]
            if not steps or not self.collector.backwards:
                continue  # no gradients computed in this file to accumulate
            runs = {id(z): self._zero_grad_runs(z) for z in zero_grads}
            if any(
                s.controls == r.controls for s in steps for z in zero_grads for r in runs[id(z)]
            ):
                for site in zero_grads:
                    if any(_zeroes_between_updates(r, steps) for r in runs[id(site)]):
                        self._refuse(site, findings.ZERO_GRAD_BETWEEN_UPDATES)
                continue
            for site in zero_grads:
                self._zero_grad_escape(site)

    def _takes_metric(self, step: Site) -> bool:
        """Whether a schedule that joins the chain (ReduceLROnPlateau) is attached to the
        optimizer ``step`` steps (also through a parameter every caller passes it to)."""
        stepped = self._stepped_optimizer(step)
        values = self.resolver.reaching_values(stepped, step.enclosing_class) if stepped else None
        for value in values or []:
            site = self.by_call.get(id(value))
            schedule = self.plan.schedules.get(self.plan.key_of(site.call)) if site else None
            entry = schedule.outer.entry if schedule is not None else None
            if entry is not None and entry.attaches_to_chain and schedule.written is None:  # type: ignore[union-attr]
                return True  # written where it steps (NNX): the update takes no metric
        return False

    def _zeroed_with(self, step: Site) -> bool:
        """Whether a zero_grad() of the optimizer ``step`` steps runs under the same loops and
        conditions as the step (the same constructor, or the same name in the same function)."""
        stepped = self._stepped_optimizer(step)
        if stepped is None:
            return False
        constructor = self._constructor_site(stepped, step)
        controls = self._counted(step).controls
        for site in (s for s in self.plan.sites if s.role == ZERO_GRAD and s.receiver):
            if all(run.controls != controls for run in self._zero_grad_runs(site)):
                continue
            if constructor is not None:
                if self._constructor_site(site.receiver, site) is constructor:  # type: ignore[arg-type]
                    return True
            elif code_of(site.receiver).strip() == code_of(stepped).strip():  # type: ignore[arg-type]
                return True
        return False

    def _counted(self, step: Site) -> Site:
        """``step`` as the zero_grad() calls count its controls: for NNX, without the ``if``
        (no ``else``) holding the step and, before it, the one backward pass of its body
        (``if phase == 'train':``, a GAN's ``if i % n_critic == 0:``): a zero_grad() each
        batch zeroes before each of those backward passes, as one under the ``if`` would.
        A backward pass between that zero_grad() and the ``if`` is the NNX step hook's to
        refuse (``_check_one_backward``: unless what it leaves is zeroed before the step)."""
        branch = step.controls[-1] if step.controls else None
        if self.region_start != "forward" or not isinstance(branch, cst.If) or branch.orelse:
            return step
        body = list(branch.body.body)  # type: ignore[attr-defined]
        index = next((i for i, s in enumerate(body) if s is step.statement), None)
        if index is None:
            return step
        backwards = [s for s in body if _holds_call_of(s, self.backward_methods)]
        if len(backwards) != 1 or not any(s is backwards[0] for s in body[:index]):
            return step
        zeroes = self.resolver.map.methods_with_role(ZERO_GRAD)
        if any(_holds_call_of(s, zeroes) for s in body):
            return step  # zeroed under the `if` itself: counted with it
        if not _lone_backward(backwards[0], self.backward_methods):
            return step
        return replace(step, controls=step.controls[:-1])

    def _zero_grad_escape(self, site: Site) -> None:
        self._refuse(site, findings.ZERO_GRAD_UNDER_OTHER_CONTROL)

    def _zero_grad_runs(self, site: Site) -> list[Site]:
        """Where the zero_grad() ``site`` runs: itself, or for one in the body of a function
        of the file that only zeroes gradients (``reset_grad()``), the same call at each
        line calling that function (its statement, path and controls)."""
        function = site.function
        if not isinstance(function, cst.FunctionDef) or len(site.controls) != 1:
            return [site]
        zero = next(
            (z for z in self._zero_function_map().values() if z.definition is function), None
        )
        if zero is None or not any(call is site.call for call in zero.zeroes):
            return [site]
        return [self._run_at(site, call) for call in zero.calls]

    def _run_at(self, site: Site, statement: cst.SimpleStatementLine) -> Site:
        """``site`` as if it were the line ``statement`` (a call of the function holding it)."""
        parents = self._parent_map()
        path: list[tuple[int, int]] = []
        controls: list[cst.CSTNode] = []
        node: cst.CSTNode = statement
        while node in parents:
            parent = parents[node]
            if isinstance(parent, (cst.Module, cst.IndentedBlock)):
                index = next(i for i, s in enumerate(parent.body) if s is node)
                path.append((id(parent), index))
            if _is_control(parent):
                controls.append(parent)
            node = parent
        return replace(
            site,
            statement=statement,
            path=tuple(reversed(path)),
            controls=tuple(reversed(controls)),
        )

    def _zero_function_map(self) -> dict[int, ZeroFunction]:
        """The file's functions that only zero gradients, by the id of each line calling one
        (``analysis/zero_functions.py``), found once per file."""
        if self._zero_functions is None:
            methods = self.resolver.map.methods_with_role(ZERO_GRAD)
            self._zero_functions = zero_functions(
                self.module,
                self.resolver.scopes,
                methods | self.resolver.map.module_zero_grad_methods,
                lambda node: self._parent_map().get(node),
                self._global_shared,
            )
        return self._zero_functions

    def _zero_function_at(self, statement: cst.CSTNode) -> ZeroFunction | None:
        """The zero function the line ``statement`` calls (``reset_grad()``), or None."""
        return self._zero_function_map().get(id(statement))

    def _zero_call(self, statement: cst.CSTNode) -> tuple[cst.Call, ...] | None:
        """``Plan.zero_call``: the zero calls a line ``reset_grad()`` runs, when none of them
        escapes (each is then one the target drops or keeps as the plan says)."""
        zero = self._zero_function_at(statement)
        if zero is None or any(self.plan.key(call) in self.plan.escapes for call in zero.zeroes):
            return None
        return zero.zeroes

    # ------------------------------------------------------------------ frozen parameters

    def _plan_replaced_apis(self) -> None:
        """Every optimizer of a file that assigns an API of the map, a member of one or a
        module holding one (``torch.optim.SGD = MySGD``, ``optim.SGD.step = ...``,
        ``Optimizer.zero_grad = ...``, ``setattr(torch.optim, "SGD", ...)``) escapes: what runs
        is the replacement (probe s31 G4: 0.25-7.8 relative off torch). So does every
        optimizer of a file linked to one that does (``CrossFile.replaced_elsewhere``; probe
        s33 A1)."""
        constructors = [s for s in self.plan.sites if s.role == CONSTRUCTOR]
        if not constructors:
            return
        found = self._first_replacement()
        if found is not None:
            name, change = found
            for site in constructors:
                self._refuse(site, findings.TORCH_REPLACED, name=name, change=change)
            return
        cross_file = self.resolver.cross_file
        elsewhere = cross_file.replaced_elsewhere() if cross_file is not None else None
        if elsewhere is not None:
            name, change, place = elsewhere
            for site in constructors:
                self._refuse(
                    site, findings.TORCH_REPLACED_ELSEWHERE, name=name, change=change, place=place
                )

    def _first_replacement(self) -> tuple[str, str] | None:
        """The API a statement of the file replaces (``_replaced_api``), and the statement."""
        setters = self.resolver.map.parameters.structure_functions
        apis = self.resolver.map.apis
        modules = frozenset(api.rpartition(".")[0] for api in apis)
        roots = frozenset(api.partition(".")[0] for api in apis)
        for node in self._module_scan().nodes:
            targets: list[tuple[cst.BaseExpression, str | None]] = []
            if isinstance(node, cst.Assign):
                targets = [(t.target, None) for t in node.targets]
            elif isinstance(node, (cst.AugAssign, cst.AnnAssign)):
                targets = [(node.target, None)]
            elif (
                isinstance(node, cst.Call)
                and len(node.args) >= 2
                and self.resolver.called_function(node.func) in setters
            ):
                named = node.args[1].value
                attribute = named.evaluated_value if isinstance(named, cst.SimpleString) else ""
                targets = [(node.args[0].value, attribute)]  # type: ignore[list-item]
            if (
                isinstance(node, cst.Call)
                and isinstance(node.func, cst.Attribute)
                and node.func.attr.value in _DICT_WRITERS  # `torch.optim.__dict__.update(...)`
            ):
                targets = [(node.func.value, None)]
            for target, attribute in targets:
                if attribute is None and not isinstance(
                    target, (cst.Attribute, cst.Subscript, cst.Call)
                ):
                    continue  # a name bound again: the resolver's import check sees it
                name = self._replaced_api(target, attribute, modules, roots)
                if name is not None:
                    return name, " ".join(code_of(node).split())[:80]
        return None

    def _module_scan(self) -> ModuleScan:
        """The nodes the whole-module checks read (``plan_places.ModuleScan``): one walk of
        the module, made for the first check asking."""
        if self._scan is None:
            spec = self.resolver.map.parameters
            self._scan = ModuleScan(self.module, spec.complex_names, freeze_words(spec))
        return self._scan

    def _module_calls(self) -> tuple[cst.Call, ...]:
        """Every call of the module in source order (``plan_walks._walk_calls`` of the module),
        read off ``_module_scan``."""
        if self._calls is None:
            self._calls = tuple(n for n in self._module_scan().nodes if isinstance(n, cst.Call))
        return self._calls

    def _replaced_api(
        self,
        target: cst.BaseExpression,
        attribute: str | None,
        modules: frozenset[str],
        roots: frozenset[str],
    ) -> str | None:
        """What ``target`` (``setattr(target, attribute, v)`` when ``attribute`` is given:
        ``""`` for a computed name) names among the map's APIs: one of them, a member of one
        (``torch.optim.SGD.step``) or a module holding them (``torch.optim``, one of
        ``modules``; ``roots``: their top packages); else None."""
        apis = self.resolver.map.apis
        through = self._namespace_write(target, apis, modules, roots)
        if through is not None:
            return through
        qualified_names = self.resolver.imported_names(target)
        if not qualified_names and isinstance(target, cst.Attribute):
            # `o = torch.optim` then `o.SGD = X`: the alias's one value names a module of the map
            owner = target.value
            value = self.resolver.bound_value(owner, None) if isinstance(owner, cst.Name) else None
            if value is not None:
                base = self.resolver.imported_names(value)
                qualified_names = [f"{q}.{target.attr.value}" for q in base]
        for qualified in qualified_names:
            if attribute == "" and (qualified in modules or qualified in apis):
                return qualified  # `setattr(torch.optim, name, v)`: any of its names
            name = f"{qualified}.{attribute}" if attribute else qualified
            if name in apis or name in modules:
                return name
            if any(name.startswith(api + ".") for api in apis):
                return name
        return None

    def _namespace_write(
        self,
        target: cst.BaseExpression,
        apis: Collection[str],
        modules: Collection[str],
        roots: Collection[str],
    ) -> str | None:
        """The module of the map a write through its namespace changes: an item or attribute of
        ``sys.modules[...]`` (a key naming a module of the map, or not a literal), of
        ``vars(m)`` or of ``m.__dict__`` for ``m`` a module or API of the map; else None (probe
        s33: ``sys.modules["torch.optim"].SGD = X``, ``vars(torch.optim)["SGD"] = X``)."""
        node: cst.BaseExpression = target
        while True:
            owner = None
            if isinstance(node, cst.Attribute) and node.attr.value == "__dict__":
                owner = node.value
            elif (
                isinstance(node, cst.Call)
                and self.resolver.called_function(node.func) == "builtins.vars"
                and node.args
            ):
                owner = node.args[0].value
            for qualified in self.resolver.imported_names(owner) if owner is not None else []:
                if qualified in modules or qualified in apis or qualified in roots:
                    return qualified
            if isinstance(node, cst.Subscript) and "sys.modules" in self.resolver.imported_names(
                node.value
            ):
                key = node.slice[0].slice if len(node.slice) == 1 else None
                literal = isinstance(key, cst.Index) and isinstance(key.value, cst.SimpleString)
                text = key.value.evaluated_value if literal else None  # type: ignore[union-attr]
                if not isinstance(text, str) or text.partition(".")[0] in roots:
                    return f"sys.modules[{text!r}]" if isinstance(text, str) else "sys.modules"
            if not isinstance(node, (cst.Attribute, cst.Subscript)):
                return None
            node = node.value

    def _plan_overridden_parameters(self) -> None:
        """Every optimizer taking ``m.parameters()`` (or ``named_parameters``) escapes when a
        class of this file, or a file of the repository its code runs with, defines that
        method or one torch's ``parameters()`` goes through (``named_modules``,
        ``_named_members``: probe s41 F19): ``m``'s class may return only part of the model
        (probe s40: a ``Net`` whose ``parameters()`` returns its hidden layer's; the
        translation trained the rest)."""
        sites = [
            site
            for site in self.plan.sites
            if site.role == CONSTRUCTOR
            and "parameters(" in code_of(site.call)
            and self.plan.key_of(site.call) not in self.plan.escapes  # else refused already
        ]
        if not sites:  # no optimizer to refuse: where a class binds the names is not asked
            return
        names = ("parameters", "named_parameters", "named_modules", "_named_members")
        bindings = _class_bindings(self.module, names)
        where = next(
            (
                f"this file (`{name}` at {self._place(node)})"
                for name in names
                for node in bindings[name]
            ),
            None,
        )
        cross_file = self.resolver.cross_file
        for name in names if where is None and cross_file is not None else ():
            other = cross_file.defines_in_linked_file(name)  # type: ignore[union-attr]
            if other is not None:
                where = f"`{other}`, a file of the repository this file's code runs with,"
                break
        if where is None:
            return
        for site in sites:
            self._refuse(site, findings.PARAMETERS_OVERRIDDEN, where=where)

    def _constructors_left(self) -> list[Site]:
        """The optimizer constructors of the plan no earlier step refused."""
        return [
            s
            for s in self.plan.sites
            if s.role == CONSTRUCTOR and self.plan.key_of(s.call) not in self.plan.escapes
        ]

    def _plan_loaded_models(self) -> None:
        """Every optimizer taking ``m.parameters()`` escapes where ``m``, or what holds it
        (``self.model`` of ``self.model.encoder``), may hold a model loaded whole
        (``loaded_models.loaded_names``: ``model = torch.load(path).to(device)``, an alias,
        a wrapper, a function returning one, a parameter given one): the saved model's
        frozen parameters are not in the code (s41)."""
        spec = self.resolver.map.parameters
        if not spec.loaded_models:
            return
        constructors = self._constructors_left()
        arguments = [(s, self._parameters_given(s)) for s in constructors]
        arguments = [(s, a) for s, a in arguments if a is not None]
        if not arguments:
            return

        def is_loading(node: cst.BaseExpression) -> bool:
            if isinstance(node, cst.Call):  # `getattr(torch, "load")`: the function by name
                getter = self.resolver.called_function(node.func)
                if getter not in spec.getter_functions or len(node.args) < 2:
                    return False
                owner, name = node.args[0].value, node.args[1].value
                text = name.evaluated_value if isinstance(name, cst.SimpleString) else None
                module = self.resolver.called_function(owner) or dotted_name(owner)
                return (
                    isinstance(text, str)
                    and module is not None
                    and (spec.loading_call(f"{module}.{text}", None))
                )
            written = dotted_name(node)
            called = self.resolver.called_function(node)
            return written is not None and spec.loading_call(written, called)

        def value_free(call: cst.Call) -> bool:
            return self.resolver.called_function(call.func) in spec.value_free_calls

        loads = loaded_names(self.module, is_loading, value_free)
        cross_file = self.resolver.cross_file
        elsewhere = cross_file.loaded_in_class(spec) if cross_file is not None else None
        for site, _ in arguments if elsewhere is not None else ():
            code, place = elsewhere  # type: ignore[misc]
            self._refuse(site, findings.MODEL_LOADED_IN_CLASS, load=code or "?", place=place)
        for site, argument in arguments if loads and elsewhere is None else ():
            load = loaded_in(argument, loads)
            if load is not None:
                self._refuse(
                    site,
                    findings.MODEL_LOADED,
                    load=" ".join(code_of(load).split()),
                    place=self._place(load),
                )

    def _parameters_given(self, site: Site) -> cst.BaseExpression | None:
        """The parameters the optimizer constructor ``site`` is given, else None."""
        if site.entry is None:
            return None
        try:
            return parameters_argument(site.entry, site.call, self.resolver.map.parameters)
        except Untranslatable:
            return None

    def _plan_frozen_parameters(self) -> None:
        """Every optimizer a freeze may reach (``freeze_reaching``) escapes: torch skips
        parameters without a gradient, a functional optimizer updates every leaf it is given.
        So does every optimizer of a file registering a hook (the map's ``hook_methods``):
        torch steps on the gradient the hooks give, a JAX gradient runs none (s24d); and of a
        file importing a script's module the index does not read."""
        spec = self.resolver.map.parameters
        constructors = self._constructors_left()
        remaining = []
        for site in constructors:
            found = self.freeze_reaching(site)
            if found is None:
                remaining.append(site)
            else:
                self._refuse(site, found[1], freezing=found[0])
        cross_file = self.resolver.cross_file
        script = cross_file.script_import() if remaining and cross_file else None
        if script is not None:
            module, place = script
            for site in remaining:
                self._refuse(site, findings.UNREAD_SCRIPT_IMPORT, module=module, place=place)
            return
        hook = _first_hook(self.module, spec, self.resolver.called_function, self._module_scan())
        for site in remaining if hook is not None else []:
            self._refuse(site, findings.HOOKS_REGISTERED, hook=hook)
        elsewhere = (
            cross_file.hooks_elsewhere(spec) if remaining and hook is None and cross_file else None
        )
        for site in remaining if elsewhere is not None else []:
            code, place = elsewhere  # type: ignore[misc]
            self._refuse(site, findings.HOOKS_REGISTERED_ELSEWHERE, hook=code, place=place)

    def freeze_reaching(self, site: Site) -> tuple[str, str] | None:
        """Whether anything may freeze a parameter the optimizer ``site`` (a constructor)
        trains: ``(code, finding kind)`` of the first freeze that may, else None. In this file
        (``_first_freeze``), skipping the freezes of a library's model no code reaches
        (``_library_frozen``) and those ``freeze_reach`` proves touch only a new tensor (when
        the optimizer trains a model's parameters) or a new model kept to itself; then in a
        file of the repository this file imports (``CrossFile.imported_freeze``) or one
        importing it (``CrossFile.caller_freeze``: there a new model's freeze alone is
        skipped), asked once per file."""
        spec = self.resolver.map.parameters
        scan = self._module_scan()

        def untouched(node: cst.CSTNode) -> bool:  # asked of the file's freezes only
            if self._library_frozen(node):
                return True
            kind = self._freeze_kind(node)
            return kind == OTHER_MODEL or (
                kind == FRESH_TENSOR and self._trains_module_parameters(site)
            )

        if self._freezes is None:  # the file's freezes, read once for all its optimizers
            self._freezes = freeze_scan(
                self.module,
                spec,
                self.resolver.called_function,
                scan,
                lambda node: self._parent_map().get(node),
            )
        own = self._freezes.first(untouched)
        if own is not None:
            return own, findings.FROZEN_PARAMETERS
        if self._file_freeze is None:
            self._file_freeze = self._freeze_elsewhere()
        return self._file_freeze or None

    def _freeze_elsewhere(self) -> tuple[str, str] | tuple[()]:
        """``(code, kind)`` of a freeze in a file this file imports or one importing it (see
        ``freeze_reaching``); ``()`` when there is none (or no repository is read)."""
        spec = self.resolver.map.parameters
        cross_file = self.resolver.cross_file
        if cross_file is None:
            return ()
        constructors = [s for s in self.plan.sites if s.role == CONSTRUCTOR]
        places = [self.plan.key_of(s.call) for s in constructors]
        models = cross_file.fresh_models([(k.line, k.column) for k in places])
        freezing = cross_file.imported_freeze(spec, models)
        if freezing is not None:
            return str(freezing), findings.FROZEN_IN_IMPORTED_FILE
        freezing = cross_file.caller_freeze(spec)
        if freezing is not None:
            return str(freezing), findings.FROZEN_BY_IMPORTING_FILE
        return ()

    def _freeze_kind(self, node: cst.CSTNode) -> str | None:
        """What the freeze ``node`` may reach (``freeze_reach.FreezeReach.kind``, on the
        ``ast`` node at its place spelling the same code), None when not proven."""
        reach = self._reach()
        key = self.plan.key(node)
        found = self._freeze_nodes.get((key.line, key.column, type(node).__name__)) if key else None
        if found is None or "".join(ast.unparse(found).split()) != "".join(code_of(node).split()):
            return None
        return reach.kind(found)

    def _reach(self) -> FreezeReach:
        """This file's ``FreezeReach`` (its ``ast`` tree parsed at the first question)."""
        if self._freeze_reach is None:
            cross_file = self.resolver.cross_file
            tree = ast.parse(self.module.code)
            never = _never
            own = os.path.splitext(os.path.basename(self.filename))[0] if self.filename else None
            self._freeze_reach = FreezeReach(
                tree,
                reach_facts(self.resolver.map),
                cross_file.defines_function_elsewhere if cross_file else never,
                cross_file.global_reachable_elsewhere if cross_file else never,
                cross_file.named_elsewhere if cross_file else never,
                own_name=own,
            )
            self._freeze_nodes = _nodes_by_place(tree)
        return self._freeze_reach

    def _trains_module_parameters(self, site: Site) -> bool:
        """The optimizer ``site`` is given ``m.parameters()`` (a ``module_methods`` call with no
        argument, or ``list``/``tuple`` of one: the map's ``wrappers``), the repository
        defines no function of that name and the file adds no tensors to an optimizer
        (``FreezeReach.adds_tensors``): it trains Parameters a module registered."""
        call = self._parameters_call(site)
        if call is None or call.args:
            return False
        reach = self._reach()
        method = call.func.attr.value  # type: ignore[attr-defined]
        return not reach.defines(method) and not reach.adds_tensors()

    def _parameters_call(self, site: Site) -> cst.Call | None:
        """The ``m.parameters(...)`` call (a ``module_methods`` call, in the map's
        ``wrappers`` or not) the optimizer ``site`` is given, else None."""
        return self._module_parameters_call(self._parameters_given(site))

    def _module_parameters_call(self, argument: cst.BaseExpression | None) -> cst.Call | None:
        """``argument`` as an ``m.parameters(...)`` call (a ``module_methods`` call, in the
        map's ``wrappers`` or not: ``list(m.parameters())``), else None."""
        spec = self.resolver.map.parameters
        while (
            isinstance(argument, cst.Call)
            and len(argument.args) == 1
            and (self.resolver.called_function(argument.func) or "").removeprefix("builtins.")
            in spec.wrappers
        ):
            argument = argument.args[0].value
        if (
            isinstance(argument, cst.Call)
            and isinstance(argument.func, cst.Attribute)
            and argument.func.attr.value in spec.module_methods
        ):
            return argument
        return None

    def _library_frozen(self, node: cst.CSTNode) -> bool:
        """The freeze ``node`` touches a library's model no other code reaches
        (``unobserved_models.frozen_library_model``): no optimizer trains it."""
        parents = self._parent_map()
        return frozen_library_model(
            node,
            model_facts(self.resolver.map),
            parents.get,
            lambda name: self.resolver.variable(name, parents),
            self.resolver.called_function,
            self.resolver.map.parameters.model_libraries,
        )

    def _plan_complex_parameters(self) -> None:
        """Every optimizer of a file where parameters may be complex (``_first_complex``: the
        map's ``parameters.complex_names``, an imaginary literal), or of a file importing a
        file of the repository or imported by one that may make them so
        (``CrossFile.complex_elsewhere``), escapes (probe s31 G8): torch's gradient of a
        complex parameter is the conjugate of JAX's, and torch's Adam-family optimizers treat
        it per real component where optax uses |g|^2."""
        spec = self.resolver.map.parameters
        constructors = [s for s in self.plan.sites if s.role == CONSTRUCTOR]
        if not constructors or not spec.complex_names:
            return
        node = _first_complex(self.module, spec, self._module_scan())
        if node is not None:
            code, place = " ".join(code_of(node).split()), self._place(node)
            kind = findings.COMPLEX_PARAMETERS
        else:
            cross_file = self.resolver.cross_file
            found = cross_file.complex_elsewhere(spec) if cross_file is not None else None
            if found is None:
                return
            (code, place), kind = found, findings.COMPLEX_IN_OTHER_FILE
        for site in constructors:
            self._refuse(site, kind, complex=code or "?", place=place)

    def _plan_gradient_skips(self) -> None:
        """Every optimizer of a file that may leave a parameter it trains without a gradient
        in a step (``gradient_skips.first_gradient_skip``: ``self.heads[task](h)``, a
        submodule used only detached or under ``torch.no_grad()``, a LayerDrop ``continue``,
        ``p.grad = None``; the trained model's own submodules in this file), or of a file
        linked to one that may (``CrossFile.gradient_skip_elsewhere``), escapes (probe s41
        F21, F25, F26): torch skips a parameter whose ``.grad`` is None, a JAX gradient
        holds a zero there and the translated optimizer still moves it."""
        spec = self.resolver.map.parameters
        constructors = self._constructors_left()
        if not constructors or not spec.gradient_cutting_methods:
            return
        trained = {name for site in constructors for name in self._trained_names(site)}
        trained |= {name for site in constructors for name in self._parameters_parameter(site)}
        optimizers = {
            dotted_name(s.call.func.value)  # type: ignore[attr-defined]
            for s in self.plan.sites
            if s.role == ZERO_GRAD and isinstance(s.call.func, cst.Attribute)
        }
        facts = cut_facts(self.resolver.map)
        cross_file = self.resolver.cross_file
        elsewhere = cross_file.defines_def_elsewhere if cross_file is not None else _never
        own: tuple[ast.AST, str] | None = None
        unreadable = False
        handed: frozenset[Handed] = frozenset()
        if _may_skip_gradients(self.module, facts, trained):
            optimizers.discard(None)
            try:  # (the code written out once: a file with no such word is not)
                tree = ast_nodes.parse(self.module.code)
            except (SyntaxError, ValueError):  # newer syntax than this Python's `ast` reads
                unreadable = True
            else:
                builders = {
                    f.name.value  # type: ignore[attr-defined]
                    for s in constructors
                    if (f := s.function) is not None
                }
                hands = hand_facts(self.resolver.map)
                building = {c.name.value for s in constructors if (c := s.enclosing_class)}
                names, handed = spread(tree, trained, (), builders, hands, building)
                unrun = cross_file.unrun_elsewhere if cross_file is not None else _never
                own = first_gradient_skip(tree, facts, names, optimizers, elsewhere, (), unrun)
                if own is None and handed and models_called_whole(tree, names, facts):
                    handed = frozenset({*handed, WHOLE_HANDED})
        if unreadable:
            code, why = "?", "(this Python's ast cannot read the file to tell)"
            place = os.path.basename(self.filename) if self.filename else "this file"
            kind = findings.GRADIENT_SKIPPED
        elif own is not None:
            node, why = own
            code = " ".join(ast.unparse(node).split("\n")[0].split())
            name = os.path.basename(self.filename) if self.filename else "this file"
            place, kind = f"{name}:{node.lineno}", findings.GRADIENT_SKIPPED  # type: ignore[attr-defined]
        else:
            found = cross_file.gradient_skip_elsewhere(handed) if cross_file is not None else None
            if found is None:
                return
            (code, why, place), kind = found, findings.GRADIENT_SKIPPED_ELSEWHERE
        for site in constructors:
            self._refuse(site, kind, skip=code or "?", why=why or "fails to parse", place=place)

    def _parameters_parameter(self, site: Site) -> set[str]:
        """``params`` of ``def build(params, cfg): return AdamW(params)``: the parameters the
        optimizer is given are a parameter of the function building it, whose callers pass
        ``model.parameters()`` (``handed_models``; probe s43 S9)."""
        given, function = self._parameters_given(site), site.function
        if not isinstance(given, cst.Name) or not isinstance(function, cst.FunctionDef):
            return set()
        parameters = function.params
        every = [*parameters.posonly_params, *parameters.params, *parameters.kwonly_params]
        return {given.value} if any(p.name.value == given.value for p in every) else set()

    def _trained_names(self, site: Site) -> set[str]:
        """The dotted names of the models whose ``parameters()`` the optimizer ``site`` is
        given: ``model`` of ``model.parameters()``, also through a name every value reaching
        which is such a call (``params = list(model.parameters())``, probe s42 c85)."""
        given = self._parameters_given(site)
        values = [given]
        if self._module_parameters_call(given) is None and isinstance(given, cst.Name):
            values = self.resolver.reaching_values(given, site.enclosing_class) or []
        calls = [self._module_parameters_call(value) for value in values]
        names = [dotted_name(call.func.value) for call in calls if call is not None]  # type: ignore[attr-defined]
        return {name for name in names if name is not None}

    def _plan_shared_parameters(self) -> None:
        """Two optimizers of the file whose parameters may overlap, one of them over a whole
        submodule (``model.encoder.parameters()`` and ``model.parameters()``, or the same
        submodule twice), both escape: torch steps a shared parameter once per optimizer, each
        with its own state, on the gradient .grad holds then (which the other's zero_grad may
        or may not have cleared); not rendered."""
        spec = self.resolver.map.parameters
        constructors = [s for s in self.plan.sites if s.role == CONSTRUCTOR and s.entry]
        paths = {id(site): self._trained_paths(site, spec) for site in constructors}
        for site in constructors:
            for other in constructors:
                if other is site or not self._submodule_selected(site, spec):
                    continue
                mine, theirs = paths[id(site)], paths[id(other)]
                if not mine or not _disjoint(mine, theirs):
                    for refused, counterpart in ((site, other), (other, site)):
                        shown = " ".join(code_of(counterpart.call).split())[:80]
                        where = self._place(counterpart.call)
                        self._refuse(refused, findings.SHARED_PARAMETERS, other=shown, place=where)

    def _submodule_selected(self, site: Site, spec: ParameterSpec) -> bool:
        """The optimizer trains a whole submodule (``Selection.module`` of a PART)."""
        try:
            argument = parameters_argument(site.entry, site.call, spec)  # type: ignore[arg-type]
        except Untranslatable:
            return False
        selection = select(argument, self._names(site), spec)  # type: ignore[attr-defined]
        return selection.kind == PART and selection.module is not None

    def _trained_paths(self, site: Site, spec: ParameterSpec) -> list[str] | None:
        """The modules (as written) whose parameters the optimizer takes: its selection's
        module, else the receivers of ``.parameters()`` in its argument; None: not known."""
        try:
            argument = parameters_argument(site.entry, site.call, spec)  # type: ignore[arg-type]
        except Untranslatable:
            return None
        selection = select(argument, self._names(site), spec)  # type: ignore[attr-defined]
        if selection.module is not None:
            return [" ".join(code_of(selection.module).split())]
        if selection.kind == UNKNOWN:
            return None
        receivers = [
            " ".join(code_of(node.func.value).split())
            for node in cst_walk.walk(argument)
            if isinstance(node, cst.Call)
            and isinstance(node.func, cst.Attribute)
            and node.func.attr.value in spec.module_methods
        ]
        return receivers or None

    def _plan_changed_models(self) -> None:
        """Every optimizer whose model may change after it took the model's parameters
        escapes: torch trains the tensors it was given, a functional optimizer every leaf
        it is handed (``analysis/changed_models.py``)."""
        spec = self.resolver.map.parameters
        sites = [s for s in self.plan.sites if s.role == CONSTRUCTOR and s.entry]
        known = frozenset(p for s in sites for p in self._trained_paths(s, spec) or [])
        for site in sites:
            try:
                argument = parameters_argument(site.entry, site.call, spec)  # type: ignore[arg-type]
            except Untranslatable:
                continue
            reads = self._reads(site.enclosing_class)
            calls = parameter_calls(argument, reads, spec)
            owner = site.function or self.module
            sub = self._submodule_selected(site, spec)
            change = calls and changed_after(owner, calls, reads, spec, sub, known=known)  # type: ignore[arg-type]
            if calls and not change and site.enclosing_class and isinstance(owner, cst.FunctionDef):
                change = changed_by_other_methods(
                    site.enclosing_class, owner, calls, reads, spec, sub, known
                )
            if change:
                self._refuse(site, findings.MODEL_CHANGED, change=change)

    def _reads(self, enclosing: cst.ClassDef | None) -> Reads:
        """This file's name resolution for ``changed_models``, in a method of ``enclosing``."""
        return Reads(
            lambda node: self.bound_value(node, enclosing),
            self.resolver.called_function,
            self._handed_parameter,
            self._imported_change,
            self.resolver.local_class,
            self._imported_method_change,
            self._imported_own_method_change,
            self.resolver.map.modules.self_methods,
            lambda name: self.resolver.reaching_values(name, enclosing),
            lambda value: holds_no_parameter(value, self._option_facts(enclosing)),
            enclosing,
        )

    def _option_facts(self, enclosing: cst.ClassDef | None) -> OptionFacts:
        """What ``plain_values.holds_no_parameter`` reads of this file, in a method of
        ``enclosing``."""
        cross_file = self.resolver.cross_file
        names = self.resolver.map
        return OptionFacts(
            module=self.module,
            parents=self._parent_map(),
            scopes=self.resolver.scopes,
            value=lambda node: self.bound_value(node, enclosing),
            qualify=self.resolver.imported_names,
            mentioned_elsewhere=cross_file.mentioned_elsewhere if cross_file is not None else None,
            globals_rebound=self._rebinds_globals(),
            parsers=names.option_parsers,
            types=names.option_types,
            actions=names.option_actions,
            keywords=names.option_keywords,
        )

    def _model_changed_after(
        self, call: cst.Call, owner: cst.FunctionDef | cst.Module, enclosing: cst.ClassDef | None
    ) -> str | None:
        """``Plan.model_changed_after``: ``changed_models.changed_after`` for ``call`` in
        ``owner`` (its function, or the module)."""
        spec = self.resolver.map.parameters
        return changed_after(owner, [(call, call)], self._reads(enclosing), spec)

    def _built_by_method(self, call: cst.Call) -> BuiltByMethod | str:
        """``Plan.built_by_method``: ``built_by_method.built_by_method`` with this file's name
        resolution (the file's parents are mapped at the first call asking; one answer per
        call)."""
        if id(call) not in self._built_by_methods:
            facts = MethodFileFacts(
                self.module,
                self._parent_map(),
                self.resolver.reaching_values,
                self._model_changed_after,
            )
            self._built_by_methods[id(call)] = built_by_method(call, facts)
        return self._built_by_methods[id(call)]

    def _method_caller(self, constructor: cst.Call) -> BuiltByMethod | None:
        """``Plan.method_caller``: the fact of the file's one call of the method holding
        ``constructor`` (``built_by_method.method_caller``)."""
        return method_caller(constructor, self._parent_map(), self.module, self._built_by_method)

    def _own_optimizer_problem(
        self, stepped: cst.Attribute, constructor: cst.Call, trained: cst.Name
    ) -> str | None:
        """``Plan.own_optimizer_problem``: ``own_optimizer.own_optimizer_problem`` with this
        file's facts."""
        cross_file = self.resolver.cross_file
        facts = OwnFacts(
            module=self.module,
            parents=self._parent_map(),
            scopes=self.resolver.scopes,
            attribute_writes=self._attribute_writes,
            mentioned_elsewhere=cross_file.mentioned_elsewhere if cross_file is not None else None,
        )
        return own_optimizer_problem(stepped, constructor, trained, facts)

    def _parent_map(self) -> dict[cst.CSTNode, cst.CSTNode]:
        if self._parents is None:
            self._parents = parent_map(self.module)
        return self._parents

    def _handed_parameter(
        self, call: cst.Call, argument: cst.Arg
    ) -> tuple[cst.FunctionDef, str] | None:
        """The function of this file and the name of its parameter ``argument`` of ``call``
        binds (``Resolver.local_parameter``), or None."""
        param = self.resolver.local_parameter(call, argument)
        function = getattr(self.resolver.scopes.get(param), "node", None) if param else None
        if param is None or not isinstance(function, cst.FunctionDef):
            return None
        return function, param.name.value

    def _imported_change(self, call: cst.Call, argument: cst.Arg) -> str | None:
        """The change a function of another file of the repository ``call`` calls makes to
        the parameter ``argument`` binds (``CrossFile.imported_change``), or None."""
        cross_file = self.resolver.cross_file
        called = self.resolver.called_function(call.func)
        if cross_file is None or called is None:
            return None
        return cross_file.imported_change(called, call, argument, self.resolver.map.parameters)

    def _imported_method_change(self, held: Held) -> str | None:
        """The change the method ``held.call`` of an instance of another file's class makes
        to the models it holds (``CrossFile.imported_method_change``), or None."""
        cross_file = self.resolver.cross_file
        called = self.resolver.called_function(held.construction.func)
        if cross_file is None or called is None:
            return None
        return cross_file.imported_method_change(called, held, self.resolver.map.parameters)

    def _imported_own_method_change(self, qualified: str, method: str) -> str | NotDefined | None:
        """The change the method ``method`` of a model built by the class ``qualified`` of
        another file makes to the model (``CrossFile.imported_own_method_change``), None
        when it makes none, ``NOT_DEFINED`` when no class of the repository defines it (or
        no repository is read)."""
        cross_file = self.resolver.cross_file
        if cross_file is None:
            return NOT_DEFINED
        spec = self.resolver.map.parameters
        return cross_file.imported_own_method_change(qualified, method, spec)

    # ------------------------------------------------------------------ torch-only uses

    def _plan_torch_only_uses(self) -> None:
        """Find where a translated optimizer (or scheduler) is still used as the torch object:
        handed to another library (``accelerator.prepare(model, opt)``), pickled, type-checked,
        a member the translation lacks... (see ``analysis/torch_only.py``)."""
        roles = frozenset(r for r in (CONSTRUCTOR, SCHEDULER) if self.active(r))
        finder = TorchOnlyFinder(self, roles)
        self.plan.torch_only = finder.find()
        self._torch_only_statements = finder.statements


def _may_skip_gradients(module: cst.Module, facts: CutFacts, trained: Collection[str]) -> bool:
    """Whether ``module`` spells anything ``first_gradient_skip`` reads: a trained model's name
    (its parts, and the calls it is handed to: ``handed_models``), or else a class defining
    ``forward``, a ``.grad`` attribute or a ``setattr``, ``find_unused_parameters``. A file
    spelling none is not parsed again (one ``cst`` walk)."""
    if trained:
        return True
    for node in cst_walk.walk(module):
        if isinstance(node, cst.ClassDef) and any(
            isinstance(s, cst.FunctionDef) and s.name.value == "forward" for s in node.body.body
        ):
            return True
        if isinstance(node, cst.Attribute) and node.attr.value in facts.grad_attributes:
            return True
        if isinstance(node, cst.Name) and node.value in ("setattr", "find_unused_parameters"):
            return True
    return False


def _disjoint(paths: list[str], others: list[str] | None) -> bool:
    """No module of ``paths`` is, holds or is held by one of ``others`` (None: not known)."""
    if others is None:
        return False
    return not any(_part_of(a, b) or _part_of(b, a) for a in paths for b in others)


def _class_bindings(module: cst.Module, names: Sequence[str]) -> dict[str, list[cst.CSTNode]]:
    """Each of ``names`` -> the ``def name`` and ``name = ...`` statements of the class bodies
    of ``module``, in walk order (one walk for all the names)."""
    found: dict[str, list[cst.CSTNode]] = {name: [] for name in names}
    for klass in cst_walk.walk(module):
        if not _is_class(klass):
            continue
        for node in cst_walk.walk(klass.body, stop=(cst.ClassDef, cst.FunctionDef)):  # type: ignore[attr-defined]
            if isinstance(node, cst.FunctionDef) and node.name.value in found:
                found[node.name.value].append(node)
            elif (
                isinstance(node, cst.AssignTarget)
                and isinstance(node.target, cst.Name)
                and node.target.value in found
            ):
                found[node.target.value].append(node)
    return found


_is_class = cst_walk.instance_test(cst.ClassDef)  # asked of every node of the module
