"""``Planner`` on gradient clipping: which clip calls become the head of an optimizer's chain,
clips of a subset of the parameters, and clip values that vary.

Split from ``plan.py`` by ``tools/split_plan.py``: the methods of ``ClipFacts`` run on
``Planner`` (one of its bases) and use the state ``Planner.__init__`` sets.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import replace

import libcst as cst
from libcst.metadata import Assignment, BuiltinScope, ComprehensionScope, GlobalScope, Scope

from ml_switcheroo.analysis import cst_walk, param_groups, receivers
from ml_switcheroo.analysis.aliases import aliasing
from ml_switcheroo.analysis.constant_guard import (
    always_true,
    number_constant,
    rebinds_globals,
)
from ml_switcheroo.analysis.data_objects import data_object_problem
from ml_switcheroo.analysis.loss_helpers import FileFacts, copied_helper, helper_problem
from ml_switcheroo.analysis.parameters import (
    Names,
    is_module_class,
    one_shot_value,
    out_of_sight_read,
    parameters_argument,
    select,
)
from ml_switcheroo.analysis.plan_facts import ClipFeed, Site, SubsetClip
from ml_switcheroo.analysis.plan_places import (
    _BUILTIN_NAMES,
    _calls_a_method,
    _changes_holder,
    _follows,
    _holders,
    _last_key,
    _overlaps,
    _parameters_of,
    _path_nodes,
    _paths,
    _store_paths,
    _store_targets,
)
from ml_switcheroo.analysis.plan_walks import (
    _AttributeStores,
    _last_name,
    _names,
    _short,
    computed_attributes,
    may_bind,
)
from ml_switcheroo.analysis.purity import is_pure
from ml_switcheroo.spec import findings
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.findings import Finding
from ml_switcheroo.spec.roles import (
    CLIP,
    SCALER_STEP,
)
from ml_switcheroo.spec.signature import NotALiteral, code_of, literal_value

_ANY_ATTRIBUTE = frozenset({"__getattr__", "__getattribute__"})  # any attribute may be computed


class ClipFacts:
    """The methods of ``Planner`` on the concern of ``plan_clips`` (a mixin)."""

    # ------------------------------------------------------------------ clipping

    def _plan_clips(self) -> None:
        fed: dict[int, tuple[Site, list[Site]]] = {}  # by optimizer call: its clip calls
        for site in (s for s in self.plan.sites if s.role == CLIP):
            placed = self._placed_clip(site)
            optimizers = self._optimizers_stepped_after(placed)
            for optimizer in optimizers:
                fed.setdefault(id(optimizer.call), (optimizer, []))[1].append(site)
            self._plan_clip(site, placed, optimizers)
        for optimizer, clips in fed.values():
            self._all_or_none(optimizer, clips)

    def _plan_clip(self, site: Site, placed: Site, optimizers: list[Site]) -> None:
        """Fold ``site`` into the chain of the one optimizer stepped after it, or refuse it."""
        if site.value_used and not self._value_from_gradients(site):
            self._refuse_clip(site, findings.CLIP_NORM_USED)
            return
        if len(optimizers) != 1:
            self._refuse_clip(
                site,
                findings.CLIP_SEVERAL_OPTIMIZERS if optimizers else findings.CLIP_WITHOUT_OPTIMIZER,
            )
            return
        (optimizer,) = optimizers
        if self._clips_scaled_gradients(site, placed):
            self._refuse_clip(site, findings.CLIP_SCALED_GRADIENTS)
            return
        if self._stepped_under_other_control(placed):
            self._refuse_clip(site, findings.CLIP_UNDER_OTHER_CONTROL)
            return
        backward = self._backward_after(placed)
        if backward is not None:
            self._refuse_clip(
                site,
                findings.CLIP_BACKWARD_AFTER,
                backward=_short(backward, 60),
                place=self._place(backward),
            )
            return
        changed = self._gradients_may_change_after(placed)
        if changed is not None:
            node, why = changed
            self._refuse_clip(
                site,
                findings.CLIP_GRADIENTS_MAY_CHANGE_AFTER,
                code=_short(node, 60),
                place=self._place(node),
                why=why,
            )
            return
        varying = self._clip_values_vary(site, optimizer)
        if varying is not None:
            self._refuse_clip(site, findings.CLIP_VALUE_VARIES, **varying)
            return
        consumed = self._consumed_iterator(site)
        if consumed is not None:
            self._refuse_clip(site, findings.CLIP_CONSUMED_ITERATOR, **consumed)
            return
        subset = self._subset_clip(site, optimizer)
        if subset is not None:
            self.plan.subset_clips[self.plan.key_of(site.call)] = subset
            if subset.other_model_suggestion is None:
                self._subset_clip_sites.append(site)
            return
        clips = self.plan.clips.setdefault(self.plan.key_of(optimizer.call), [])
        clips.append(site)
        self.plan.clip_target[self.plan.key_of(site.call)] = ClipFeed(optimizer, clips)

    def _all_or_none(self, optimizer: Site, clips: list[Site]) -> None:
        """The clip calls feeding ``optimizer``'s steps fold together or not at all: when one
        of them is refused (it stays torch code, before the step), the others are refused too
        (``CLIP_BESIDE_ESCAPED``): a chain holding only some of them clips other gradients
        than torch does, and a step translated with them would drop the refused one."""
        key = self.plan.key_of(optimizer.call)
        folded = self.plan.clips.get(key, [])
        refused = [site for site in clips if not any(site is f for f in folded)]
        if not folded or not refused:
            return
        first = refused[0]
        escape = self.plan.escapes.get(self.plan.key_of(first.call))
        subset = self.plan.subset_clips.get(self.plan.key_of(first.call))
        why = escape.reason if escape is not None else subset.reason if subset else "it escapes"
        opt = code_of(optimizer.target).strip() if optimizer.target is not None else "it"
        del self.plan.clips[key]
        for site in folded:
            del self.plan.clip_target[self.plan.key_of(site.call)]
            self._refuse_clip(
                site,
                findings.CLIP_BESIDE_ESCAPED,
                clip=" ".join(code_of(first.call).split()),
                optimizer=opt,
                why=why,
            )

    def _refuse_clip(self, site: Site, kind: str, **values: str) -> None:
        """``_refuse`` for a clip finding, whose suggestion names the map's transform of the
        call and the norm it returns, as the target writes them (``transform``,
        ``clip_norm``)."""
        assert site.entry is not None
        call = " ".join(code_of(site.call).split())
        transform = self.transform(site.call, site.entry) or f"the clip transform of `{call}`"
        norm = self.clip_norm(site.call, site.entry) or f"<the norm `{call}` returns, of grads>"
        self._refuse(site, kind, transform=transform, norm=norm, **values)

    def _value_from_gradients(self, clip: Site) -> bool:
        """``name = clip(...)`` alone on its line, for a target that renders training steps
        (it computes the gradients, so the map's ``value`` of the call can be rendered there;
        the step's renderer checks the rest and escapes otherwise)."""
        return (
            self.region_start == "forward"
            and clip.entry is not None
            and bool(clip.entry.value)
            and isinstance(clip.target, cst.Name)
            and isinstance(clip.statement, cst.SimpleStatementLine)
            and isinstance(clip.statement.body[0], cst.Assign)
        )

    def _clip_values_vary(self, clip: Site, optimizer: Site) -> dict[str, str] | None:
        """Why the clip's arguments may not be the same at the construction as at every step
        (the values of a ``CLIP_VALUE_VARIES`` finding).

        torch evaluates ``max_norm`` at each clip call; folded into the chain, it is evaluated
        once, where the optimizer is built. That is the same value only for literals and for
        names (and attribute chains on them) bound before the construction and never changed
        after it: a name bound after the construction (a loop variable, ``max_norm = ...``), a
        call, or an attribute the file assigns may differ (or not exist yet) there.
        """
        assert clip.entry is not None
        try:
            arguments = clip.entry.signature.bind(clip.call)
        except Untranslatable:
            return None  # the clip's own hook reports the call
        construction = self._preorder().get(id(optimizer.call))
        for name, arg in arguments.items():
            if name in clip.entry.ignore:
                continue
            problem = self._varying_part(arg.value, construction, optimizer.call)
            if problem is None:
                continue
            opt = code_of(optimizer.target).strip() if optimizer.target is not None else "it"
            return {
                "name": name,
                "value": code_of(arg.value).strip(),
                "optimizer": opt,
                "problem": problem,
            }
        return None

    def _varying_part(
        self,
        value: cst.BaseExpression,
        construction: int | None,
        construction_node: cst.CSTNode | None = None,
    ) -> str | None:
        """What in ``value`` may change between the construction (a preorder index; the
        node itself, for its scope) and a step. (Session 40 tried taking a method's receiver
        for the instance that built the optimizer and its attributes one by one; a probe
        found seven ways its values change unseen: a descriptor, a ``__setattr__`` of the
        holder's class run by a sibling store, a mutable object under the set-up attribute,
        ``delattr``, the method run on another object... It was taken out: see the session's
        note.)"""
        try:
            literal_value(value)
            return None
        except NotALiteral:
            pass
        if isinstance(value, cst.Call) and self._tensor_literal(value):
            return None  # `torch.tensor(1.0)`: the clip's hook makes it the number
        if not is_pure(value):
            return f"`{code_of(value).strip()}` may give another value at each evaluation"
        order = self._preorder()
        construction_scope = self._physical_scope(construction_node)
        names = {name.value for name in _names(value)}
        binder = next((n for n in cst_walk.walk(self.module) if may_bind(n, names)), None)
        if binder is not None:  # `case max_norm:`, `exec(...)`: probe s31 G7
            shown = " ".join(code_of(binder).split())[:60]
            if not isinstance(binder, cst.Call):
                shown = f"case {shown}"
            return f"`{shown}` may bind it again (a binding libcst's scopes do not record)"
        for name in _names(value):
            scope = self.resolver.scopes.get(name)
            # Every assignment of the name in the scope that binds it, also those after the use
            # (libcst's referents of an access are only the earlier ones).
            bindings = [
                a.node for a in (scope[name.value] if scope else ()) if isinstance(a, Assignment)
            ]
            if not bindings and name.value not in _BUILTIN_NAMES:
                return f"`{name.value}` is not bound where the optimizer is built"
            for binding in bindings:
                position = order.get(id(binding))
                if construction is None or position is None or position > construction:
                    return self._bound_after(name, binding)
            elsewhere = self._bound_in_another_function(name, construction_scope)
            if elsewhere is not None:
                return elsewhere
        stored = self._stored_paths()
        for path in _paths(value):
            for other in (s for s in stored if _overlaps(path, s)):
                where = self._first_store(other)
                if other == path:
                    return f"`{path}` is assigned in this file{where}"
                return f"`{other}` is assigned in this file{where}, so `{path}` may change"
        computed = self._computed_read(value)
        if computed is not None:
            return computed
        return self._changed_otherwise(value)

    def _bound_after(self, name: cst.Name, binding: cst.CSTNode) -> str:
        """Why the binding ``binding`` of ``name`` comes after the construction."""
        if isinstance(binding, cst.Param):
            function = receivers.enclosing_function(binding, self._parent_map())  # type: ignore[attr-defined]
            if function is not None:
                return (
                    f"`{name.value}` is a parameter of `{function.name.value}()`, which is "
                    "called after the optimizer is built and may be handed another value"
                )
        return f"`{name.value}` is assigned after the optimizer is built"

    def _first_store(self, text: str) -> str:
        """`` (file:line)`` of the first store of the module whose target reads ``text`` (one
        of ``_stored_paths``), or nothing when none is found so."""
        for target in _store_targets(self.module):
            if " ".join(code_of(target).split()) == text:
                return f" ({self._place(target)})"
        return ""

    def _computed_read(self, value: cst.BaseExpression) -> str | None:
        """Probe s36 G2: an attribute ``value`` reads that a class of this file may compute
        when it is read (``computed_attributes``): a getter's result follows values no store
        of the path shows (``cfg.factor *= 0.9`` under ``cfg.clip``'s property)."""
        if self._computed is None:
            self._computed = computed_attributes(self.module)
        names, any_attribute = self._computed
        for node in cst_walk.walk(value):
            if not isinstance(node, cst.Attribute):
                continue
            if any_attribute or node.attr.value in names:
                shown = " ".join(code_of(node).split())
                how = (
                    "`__getattr__`"
                    if any_attribute and node.attr.value not in names
                    else f"`{node.attr.value}`, a decorated method (a `@property`, say) or a "
                    "class attribute bound to no literal (a descriptor)"
                )
                return (
                    f"`{shown}` may be computed when it is read ({how} of a class of this "
                    "file), from values that change after the optimizer is built"
                )
        return self._computed_elsewhere(value)

    def _computed_elsewhere(self, value: cst.BaseExpression) -> str | None:
        """Probe s37 H1: ``_computed_read`` for the classes of the repository's other files
        (``CrossFile.hidden_methods_elsewhere``): an attribute ``value`` reads that such a
        class computes on access (a decorated method or a class attribute a call builds, of
        that name), or any attribute when one defines ``__getattr__``/``__getattribute__``
        (or a module its ``__getattr__``). Which object the path holds is not known, so a
        class of any file counts; ``cfg.clip`` whose property elsewhere decays was read once
        by the fold (0.82 relative off torch)."""
        cross_file = self.resolver.cross_file
        attributes = [n for n in cst_walk.walk(value) if isinstance(n, cst.Attribute)]
        if cross_file is None or not attributes:
            return None
        methods = cross_file.hidden_methods_elsewhere()
        lookup = next((m for m in methods if m.key in _ANY_ATTRIBUTE), None)
        for node in attributes:
            method = next((m for m in methods if m.key == node.attr.value), lookup)
            if method is None:
                continue
            shown = " ".join(code_of(node).split())
            return (
                f"`{shown}` may be computed when it is read ({method.shown()} of another file "
                "runs on the read), from values that may change after the optimizer is built"
            )
        return None

    def _physical_scope(self, node: cst.CSTNode | None) -> Scope | None:
        """The scope whose code runs ``node`` (a comprehension's: the scope around it; a
        ``global``/``nonlocal`` binding: the function it is written in, not the scope its
        name resolves to)."""
        scope = self.resolver.scopes.get(node) if node is not None else None
        while isinstance(scope, ComprehensionScope):
            scope = scope.parent
        return scope

    def _bound_in_another_function(
        self, name: cst.Name, construction_scope: Scope | None
    ) -> str | None:
        """Probe s36 G1: a binding of ``name`` whose position says nothing of when it runs,
        so that the value read where the optimizer is built may not be the one a later clip
        call reads: written in another function through ``global``/``nonlocal`` (``def
        decay(): global C; C *= 0.9``, run whenever it is called), or a module global another
        file may write (``train.C = 0.1``: ``global_reachable_elsewhere``; the file's own
        ``exec``/``globals()`` writes are ``may_bind``'s)."""
        scope = self.resolver.scopes.get(name)
        if scope is None or name.value not in scope:
            return None
        for access in scope[name.value]:
            if not isinstance(access, Assignment):
                continue
            where = self._physical_scope(access.node)
            if where is not access.scope and where is not construction_scope:
                function = getattr(getattr(where, "node", None), "name", None)
                shown = f"`{function.value}()`" if isinstance(function, cst.Name) else "a function"
                return (
                    f"`{name.value}` is assigned in {shown} (declared `global` or `nonlocal` "
                    "there), which may run after the optimizer is built"
                )
            cross_file = self.resolver.cross_file
            if (
                isinstance(access.scope, GlobalScope)
                and cross_file is not None
                and cross_file.global_reachable_elsewhere(name.value)
            ):
                return (
                    f"`{name.value}` is a module global that another file of the repository "
                    "may assign after the optimizer is built"
                )
        return None

    def _changed_otherwise(self, value: cst.BaseExpression) -> str | None:
        """How an attribute or subscript ``value`` reads may change other than by a store of
        its own text: a store of the same key through another name (``c = args; c.clip =
        3``), a write of any attribute by a computed name (``setattr(x, k, v)``,
        ``x.__dict__[k] = v``, ``vars(x).update(...)``: any object may be the holder), the
        object holding it bound to another name or put in a container (``c = cfg``, then
        ``c.update(clip=3)``), a method call on it (``cfg.update(clip=3)``), the object
        handed to a function (``adjust(args)``, which may be of another file; not a builtin
        that only reads it, ``print(args)``; ``vars(args).items()``), anywhere in the file."""
        parents = self._parent_map()  # type: ignore[attr-defined]
        for node in _path_nodes(value):
            path = " ".join(code_of(node).split())
            key = _last_key(node)
            for target in _store_targets(self.module):
                if key is None or _last_key(target) != key:
                    continue
                shown = " ".join(code_of(target).split())
                return f"`{path}` may be assigned through another name (`{shown}`)"
            holders = _holders(node)
            for target in _store_targets(self.module):
                if (
                    isinstance(target, cst.Subscript)
                    and _last_key(target) is None
                    and " ".join(code_of(target.value).split()) in holders
                ):  # `cfg[k] = v`: any key (an attribute too, for a dict with attribute access)
                    shown = " ".join(code_of(target).split())
                    return f"`{shown} = ...` ({self._place(target)}) may write `{path}`"
            alias = aliasing(self.module, holders)
            if alias is not None:
                shown = " ".join(code_of(alias).split())
                return f"`{path}` may change through another name (`{shown}`)"
            for call in self._module_calls():  # type: ignore[attr-defined]
                if not _changes_holder(call, holders):
                    continue
                outer = receivers.namespace_use(call, parents)
                if outer is False:
                    continue  # `vars(args).items()`: the attributes read
                return f"`{_short(outer or call, 100)}` may change `{path}`"
            by_name = receivers.written_by_name(self.module, key)
            if by_name is not None:
                shown = " ".join(code_of(by_name).split())
                if isinstance(by_name, cst.AssignTarget):
                    shown = f"{shown} = ..."
                return f"`{shown}` ({self._place(by_name)}) may write `{path}`"
            written = self._written_elsewhere(node)
            if written is not None:
                return written
        return None

    def _written_elsewhere(self, node: cst.BaseExpression) -> str | None:
        """Probe s37 H2: an attribute or key along the path ``node`` (``config.CLIP``; ``opt``
        and ``clip`` of ``args.opt.clip``) that code of another file of the repository may
        write while the loop runs (``CrossFile.attribute_written_elsewhere``: ``hooks.on_step()``
        storing ``config.CLIP``, ``decay()`` declaring ``global CLIP`` in ``config``)."""
        cross_file = self.resolver.cross_file
        if cross_file is None:
            return None
        path = " ".join(code_of(node).split())
        inner: cst.BaseExpression = node
        while isinstance(inner, cst.Attribute | cst.Subscript):
            key = _last_key(inner)
            written = (
                cross_file.attribute_written_elsewhere(key)
                if key is not None and key.isidentifier()
                else None
            )
            if written is not None:
                return (
                    f"`{path}` may be written by code of another file ({written} writes an "
                    f"attribute or global named `{key}`), which may run after the optimizer "
                    "is built"
                )
            inner = inner.value
        return None

    def _tensor_literal(self, call: cst.Call) -> bool:
        """``torch.tensor(<literal>, ...)``: a tensor of a constant (the map's tensor literals)."""
        literals = self.resolver.map.tensor_values.literals
        if not call.args or not any(n in literals for n in self.resolver.imported_names(call.func)):
            return False
        try:
            literal_value(call.args[0].value)
        except NotALiteral:
            return False
        return True

    def _preorder(self) -> dict[int, int]:
        """Source order of every node (by id), computed once per file that clips."""
        if self._order is None:
            order: dict[int, int] = {}

            class _Number(cst.CSTVisitor):
                def on_visit(self, node: cst.CSTNode) -> bool:
                    order[id(node)] = len(order)
                    return True

            cst_walk.visit(self.module, _Number())
            self._order = order
        return self._order

    def _stored_paths(self) -> set[str]:
        """Attribute and subscript targets the module assigns (``args.clip = ...``)."""
        if self._stores is None:
            self._stores = _store_paths(self.module)
        return self._stores

    def _consumed_iterator(self, clip: Site) -> dict[str, str] | None:
        """``clip(ps)`` with ``ps = model.parameters()`` (or ``filter(...)``, a generator):
        the iterator is consumed by its first pass, and torch clips nothing after it (probe
        s32 H1: 0.14-0.88 relative over 60 updates when folded as a clip of every gradient)."""
        spec = self.resolver.map.parameters
        try:
            clipped = parameters_argument(clip.entry, clip.call, spec)  # type: ignore[arg-type]
        except Untranslatable:
            return None
        value = one_shot_value(clipped, self._names(clip), spec)
        if value is None:
            return None
        return {"clipped": code_of(clipped).strip(), "value": " ".join(code_of(value).split())}

    def _subset_clip(self, clip: Site, optimizer: Site) -> SubsetClip | None:
        """A ``SubsetClip`` when the clip's parameters are not provably the optimizer's."""
        spec = self.resolver.map.parameters
        try:
            clipped = parameters_argument(clip.entry, clip.call, spec)  # type: ignore[arg-type]
            trained = parameters_argument(optimizer.entry, optimizer.call, spec)  # type: ignore[arg-type]
        except Untranslatable:
            return None  # the clip's or the optimizer's own hook reports the call
        clip_set = select(clipped, self._names(clip), spec)
        trained_set = select(trained, self._names(optimizer), spec)
        if self._same_model(clipped, clip, trained, optimizer):
            return None
        if self._splits_the_clipped_model(clipped, clip, trained, optimizer):
            return None
        if clip_set.key == trained_set.key and self._same_names(clipped, clip, trained, optimizer):
            return None
        opt = code_of(optimizer.target).strip() if optimizer.target is not None else "the optimizer"
        shown = " ".join(code_of(clipped).split())
        trains = " ".join(code_of(trained).split())
        other_model = self._other_model(clipped, clip, trained, optimizer)
        if other_model is not None:
            model, other = other_model
            finding = Finding(
                findings.CLIP_OTHER_MODEL,
                {
                    "clipped": shown,
                    "optimizer": opt,
                    "trained": trains,
                    "model": model,
                    "other": other,
                },
            )
            rendered = self.render(finding)
            return SubsetClip(optimizer, shown, rendered.reason, rendered.suggestion or "")
        finding = Finding(
            findings.CLIP_SUBSET, {"clipped": shown, "optimizer": opt, "trained": trains}
        )
        return SubsetClip(optimizer, shown, self.render(finding).reason)

    def _other_model(
        self, clipped: cst.BaseExpression, clip: Site, trained: cst.BaseExpression, optimizer: Site
    ) -> tuple[str, str] | None:
        """The two models, as written, when the clip's parameters are every parameter of one
        model and the optimizer's every parameter of another: each bound once to a call
        (``_model_origin``; not a parameter, which a caller may pass the other model in), two
        bindings, neither a part of the other (``model.encoder`` is a part of ``model``)."""
        methods = self.resolver.map.parameters.module_methods
        first, second = _parameters_of(clipped, methods), _parameters_of(trained, methods)
        if first is None or second is None:
            return None
        model, other = (" ".join(code_of(m[0]).split()) for m in (first, second))
        if _part_of(model, other) or _part_of(other, model):
            return None
        origin = self._model_origin(first[0], clip.enclosing_class)
        other_origin = self._model_origin(second[0], optimizer.enclosing_class)
        if origin is None or other_origin is None or origin is other_origin:
            return None
        built = [self.resolver.bindings.get(o) for o in (origin, other_origin)]
        if not all(isinstance(value, cst.Call) for value in built):
            return None
        return model, other

    def _same_model(
        self, clipped: cst.BaseExpression, clip: Site, trained: cst.BaseExpression, optimizer: Site
    ) -> bool:
        """``clip(self.model.parameters())`` and ``Opt(model.parameters())``: both every
        parameter of one model object, the program proves (``self.model = model`` the one
        store of ``.model`` in the file, ``model`` bound once where both read it)."""
        methods = self.resolver.map.parameters.module_methods
        first, second = _parameters_of(clipped, methods), _parameters_of(trained, methods)
        if first is None or second is None or first[1] != second[1]:
            return False
        origin = self._model_origin(first[0], clip.enclosing_class)
        return origin is not None and origin is self._model_origin(
            second[0], optimizer.enclosing_class
        )

    def _splits_the_clipped_model(
        self, clipped: cst.BaseExpression, clip: Site, trained: cst.BaseExpression, optimizer: Site
    ) -> bool:
        """``clip(model.parameters())`` and ``Opt([{"params": decay, ...}, {"params":
        no_decay, ...}])`` whose two groups split every parameter of that same model by rank
        (GPT trainers: ``analysis/param_groups.py``): the clip acts on every gradient the
        optimizer trains."""
        methods = self.resolver.map.parameters.module_methods
        first = _parameters_of(clipped, methods)
        if first is None:
            return False
        parents = self._parent_map()  # type: ignore[attr-defined]
        context = param_groups.Context(
            self._names(optimizer),
            self.resolver.map.parameters,
            lambda name: self.resolver.variable(name, parents),
            self.render,
        )
        split = param_groups.rank_split_of(trained, context)
        if split is None or split.receiver is None:
            return False
        origin = self._model_origin(first[0], clip.enclosing_class)
        return origin is not None and origin is self._model_origin(
            split.receiver, optimizer.enclosing_class
        )

    def _same_names(
        self, clipped: cst.BaseExpression, clip: Site, trained: cst.BaseExpression, optimizer: Site
    ) -> bool:
        """Whether the names in the clip's parameters and the optimizer's (written the same)
        name the same objects: in one function; else only module-level names and ``self`` of
        one class (a local name of another function, a builder's ``model``, may be another
        object)."""
        if clip.function is optimizer.function:
            return True
        same_class = clip.enclosing_class is optimizer.enclosing_class
        for name in [*_names(clipped), *_names(trained)]:
            if name.value == "self" and same_class and clip.enclosing_class is not None:
                continue
            scope = self.resolver.scopes.get(name)
            if scope is None or not all(
                isinstance(a.scope, (GlobalScope, BuiltinScope)) for a in scope[name.value]
            ):
                return False
        return True

    def _model_origin(
        self, model: cst.BaseExpression, enclosing: cst.ClassDef | None, depth: int = 0
    ) -> cst.CSTNode | None:
        """The one binding node (a parameter, an assignment target) the object ``model``
        names comes from: a Name bound once in its scope, or ``self.x`` stored once in the
        file, from such a Name; None when it is not certain."""
        if depth > 4:
            return None
        if isinstance(model, cst.Name):
            scope = self.resolver.scopes.get(model)
            bindings = self.resolver.binding_nodes(model)
            if scope is None or len(bindings) != 1 or len(scope.assignments[model.value]) != 1:
                return None
            value = self.resolver.bindings.get(bindings[0])
            if isinstance(bindings[0], cst.Param):  # a builder's: what its one call passes
                value = self.resolver.builders().passed(bindings[0])
                value = value or self.resolver.constructed_with(bindings[0])
            if isinstance(value, cst.Name):  # `m = model`: the same object
                return self._model_origin(value, enclosing, depth + 1)
            return bindings[0]
        if not self.resolver.is_self_attribute(model, enclosing):
            return None
        assert isinstance(model, cst.Attribute)
        if self._attribute_writes(model.attr.value) != 1:
            return None
        value = self.bound_value(model, enclosing)
        return (
            self._model_origin(value, enclosing, depth + 1) if isinstance(value, cst.Name) else None
        )

    def _attribute_writes(self, attribute: str) -> int:
        """How many places in the file may set ``<anything>.<attribute>``: stores and
        deletions of the attribute, ``setattr`` calls, and definitions of the name (a method
        or property, a class-level assignment); the number is only 1 for one store."""
        counted = 0

        class _Writes(_AttributeStores):
            def stored(self, target: cst.Attribute) -> None:
                nonlocal counted
                counted += 1

            def visit_Name(self, node: cst.Name) -> None:
                nonlocal counted
                if node.value in ("setattr", "__dict__", "vars"):
                    counted += 2

            def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
                nonlocal counted
                counted += 2 if node.name.value == attribute else 0

        cst_walk.visit(self.module, _Writes(attribute))
        return counted

    def _names(self, site: Site) -> Names:
        qualify = self.resolver.imported_names
        spec = self.resolver.map.parameters
        parents = self._parent_map()  # type: ignore[attr-defined]

        def other_read(name: cst.Name) -> cst.CSTNode | None:
            variable = self.resolver.variable(name, parents)
            return out_of_sight_read(variable.reads if variable else None, qualify)

        return Names(
            lambda node: self.bound_value(node, site.enclosing_class),
            qualify,
            is_module_class(site.enclosing_class, qualify, spec),
            other_read=other_read,
        )

    def _clips_scaled_gradients(self, clip: Site, placed: Site) -> bool:
        """``scaler.step(opt)`` follows ``clip`` (in its function; ``placed``: where it runs,
        ``_placed_clip``) and no statement before ``clip`` in its block calls
        ``<scaler>.unscale_(...)``."""
        scaled = any(
            s.role == SCALER_STEP
            and self._is_step(s)
            and s.function is clip.function
            and _follows(placed, s)
            for s in self.plan.sites
        )
        if not scaled:
            return False
        before = self.collector.blocks[clip.block].body[: clip.index]  # type: ignore[attr-defined]
        unscale = self.scaler_methods.unscale
        return not any(unscale and _calls_a_method(statement, (unscale,)) for statement in before)

    def _backward_after(self, clip: Site) -> cst.Call | None:
        """The first call of one of the map's ``backward_methods`` (``x.backward(...)``,
        ``torch.autograd.backward(...)``, ``manual_backward(...)``) in the statements of
        ``clip``'s block from it to the statement holding the first optimizer step after it:
        gradients torch adds after the clip, unclipped."""
        for statement in self._between_clip_and_step(clip):
            for node in cst_walk.walk(statement):
                if isinstance(node, cst.Call) and _last_name(node.func) in self.backward_methods:
                    return node
        return None

    def _gradients_may_change_after(self, clip: Site) -> tuple[cst.CSTNode, str] | None:
        """Between ``clip`` and the step: a write of a gradient (``p.grad = g``,
        ``p.grad.zero_()``) or a call the codemod cannot see into, which may run a backward
        pass (``fwd_bwd(batch)``, ``self.step_loss()``, ``run()`` for ``run =
        loss.backward``, an imported helper; probe s32 H4: 0.84 relative when the clip was
        folded). Calls known not to: builtins, functions of the map's ``fixed_modules`` (math,
        torch...), functions of the file proven to change nothing (``get_lr(step)``), a
        module's ``parameters()``, the map's ``reading_methods`` (``loss.item()``) and a
        one-argument method of a list/dict/set display (``history.append(norm)``); any other
        method call may (``tracker.update(loss)``)."""
        gradients = self.resolver.map.gradient_attributes
        libraries = self.resolver.map.fixed_modules | self.resolver.map.recording_modules
        between = self._between_clip_and_step(clip)
        steps = {id(s.call) for s in self.plan.sites if self._stepped_optimizer(s) is not None}
        for position, statement in enumerate(between):
            for node in cst_walk.walk(statement):
                if position == len(between) - 1 and id(node) in steps:
                    break  # the statement holding the step (`with ctx: ...; opt.step()`): to it
                if isinstance(node, (cst.Assign, cst.AugAssign, cst.AnnAssign)):
                    targets = (
                        [t.target for t in node.targets]
                        if isinstance(node, cst.Assign)
                        else [node.target]
                    )
                    if any(_names_attribute(t, gradients) for t in targets):
                        return node, "writes a gradient"
                if not isinstance(node, cst.Call):
                    continue
                if _names_attribute(node.func, gradients):
                    return node, "changes a gradient in place"
                qualified = self.resolver.imported_names(node.func)
                if qualified and self._writes_arguments(node, qualified, clip):
                    return node, "it may write a gradient through its arguments"
                if not self._gradient_free_call(node, libraries, clip):
                    return node, (
                        "it calls code this translation cannot see into, which may run a "
                        "backward pass"
                    )
        return None

    def _gradient_free_call(self, call: cst.Call, libraries: frozenset[str], clip: Site) -> bool:
        func = call.func
        qualified = self.resolver.imported_names(func)
        if qualified:
            return all(q.partition(".")[0] in libraries for q in qualified)
        if isinstance(func, cst.Name):
            if func.value in dir(builtins) and not self._bound_at(func, func.value):  # type: ignore[attr-defined]
                return True
            return self._helper_problem(func, libraries) is None
        if not isinstance(func, cst.Attribute):
            return False
        if func.attr.value in self.resolver.map.parameters.module_methods:
            return True  # `model.head.parameters()`: a module's generator of its parameters
        if func.attr.value in self.resolver.map.reading_methods:
            return True  # `loss.item()`, `"{}".format(x)` (through `.grad`: caught before)
        if not isinstance(func.value, cst.Name):
            return False
        value = self.bound_value(func.value, clip.enclosing_class)  # `history = []`
        return isinstance(value, (cst.List, cst.Dict, cst.Set)) and not call.args[1:]

    def _writes_arguments(self, call: cst.Call, qualified: list[str], clip: Site) -> bool:
        """Whether a library function may write a gradient through its arguments: one of the
        map's ``writing_functions``, a name ending with ``writing_suffix`` (``torch.clamp_``),
        a keyword of ``writing_keywords`` (``out=``), or an argument reading a gradient
        (``p.grad``, directly or through a name bound to such a value: ``grads = [p.grad
        for p in ps]``; as a method called through ``.grad`` counts as a change, probe s33
        B1)."""
        spec = self.resolver.map
        suffix = spec.writing_suffix
        if any(q in spec.apis for q in qualified):
            return False  # an API of the map (a second clip): planned by its own role
        if any(q in spec.writing_functions for q in qualified):
            return True
        if suffix and any(q.rpartition(".")[2].endswith(suffix) for q in qualified):
            return True
        if any(
            a.keyword is not None and a.keyword.value in spec.writing_keywords for a in call.args
        ):
            return True
        gradients = spec.gradient_attributes
        for arg in call.args:
            for node in cst_walk.walk(arg.value):
                if isinstance(node, cst.Attribute) and node.attr.value in gradients:
                    return True
                if isinstance(node, cst.Name):
                    value = self.bound_value(node, clip.enclosing_class)
                    if value is not None and any(
                        isinstance(n, cst.Attribute) and n.attr.value in gradients
                        for n in cst_walk.walk(value)
                    ):
                        return True
        return False

    def _between_clip_and_step(self, clip: Site) -> list[cst.BaseStatement]:
        """The statements of ``clip``'s block after it, to the one holding the first optimizer
        step after it (included); none when no step follows in its function."""
        depth = len(clip.path) - 1
        block, index = clip.path[depth]
        ends = [
            step.path[depth][1]
            for step in self.plan.sites
            if self._stepped_optimizer(step) is not None
            and step.function is clip.function
            and _follows(clip, step)
        ]
        if not ends:
            return []
        owner = self.collector.blocks[block]
        return list(owner.body[index + 1 : min(ends) + 1])  # type: ignore[attr-defined]

    def _stepped_under_other_control(self, clip: Site) -> bool:
        """An optimizer step after ``clip`` (in its function) is nested in a loop or
        condition that ``clip`` is not in (``clip`` every micro-batch, step every k)."""
        return any(
            self._stepped_optimizer(step) is not None
            and step.function is clip.function
            and _follows(clip, step)
            and step.controls != clip.controls
            for step in self.plan.sites
        )

    def _placed_clip(self, clip: Site) -> Site:
        """``clip`` where it runs: for NNX, a clip in the body of an ``if`` whose test is
        always true (no ``else``) placed as that ``if`` statement (it runs every time the
        ``if`` does)."""
        guard = clip.controls[-1] if clip.controls else None
        if self.region_start != "forward" or len(clip.path) < 2 or not self._always_true(guard):
            return clip
        return replace(clip, path=clip.path[:-1], controls=clip.controls[:-1])

    def _always_true(self, node: cst.CSTNode | None) -> bool:
        """An ``if`` with no ``else`` whose test is always true (``constant_guard``)."""
        if not isinstance(node, cst.If) or node.orelse is not None:
            return False
        cross_file = self.resolver.cross_file
        elsewhere = cross_file.mentioned_elsewhere if cross_file is not None else None
        rebound = self._rebinds_globals()
        return always_true(node.test, self.resolver.scopes, self.module, elsewhere, rebound)

    def _helper_problem(self, name: cst.Name, libraries: frozenset[str]) -> str | None:
        """``Plan.helper_problem``: ``loss_helpers.helper_problem`` with this file's facts."""
        return helper_problem(name, libraries, self._file_facts())

    def _copied_helper(self, name: cst.Name, libraries: frozenset[str]) -> cst.FunctionDef | str:
        """``Plan.copied_helper``: ``loss_helpers.copied_helper`` with this file's facts."""
        return copied_helper(name, libraries, self._file_facts())

    def _data_object_problem(
        self,
        value: cst.Call,
        reads: Sequence[tuple[cst.CSTNode, ...]],
        modules: frozenset[str],
    ) -> str | None:
        """``Plan.data_object_problem``: ``data_objects.data_object_problem`` with this file's
        facts."""
        return data_object_problem(value, reads, modules, self._file_facts())

    def _file_facts(self) -> FileFacts:
        """What the proofs of ``loss_helpers`` and ``data_objects`` read of this file."""
        cross_file = self.resolver.cross_file
        elsewhere = cross_file.mentioned_elsewhere if cross_file is not None else None
        rebound = self._rebinds_globals()
        return FileFacts(
            module=self.module,
            scopes=self.resolver.scopes,
            qualify=self.resolver.imported_names,
            mentioned_elsewhere=elsewhere,
            globals_rebound=rebound,
            in_place_suffix=self.resolver.map.in_place_suffix,
            in_place_keywords=self.resolver.map.in_place_keywords,
            array_namesakes=self.resolver.map.array_namesakes,
            rejecting_packages=self.resolver.map.tracer_rejecting_packages,
            concrete_methods=self.resolver.map.concrete_methods,
            number_constant=lambda read: number_constant(
                read, self.resolver.scopes, self.module, elsewhere, rebound
            ),
        )

    def _global_shared(self, name: str) -> bool:
        """``Plan.global_shared``: another file that may reach this module's globals names
        ``name``, or the file rebinds its globals by name."""
        cross_file = self.resolver.cross_file
        elsewhere = cross_file is not None and cross_file.global_reachable_elsewhere(name)
        return elsewhere or self._rebinds_globals()

    def _rebinds_globals(self) -> bool:
        """Whether the module may rebind its globals by name (``constant_guard``), computed
        once per file, at its first always-true ``if`` or ``range`` loop question."""
        if self._globals_rebound is None:
            self._globals_rebound = rebinds_globals(self.module)
        return self._globals_rebound


def _names_attribute(node: cst.CSTNode, attributes: frozenset[str]) -> bool:
    """Whether ``node`` is, or reads through, an attribute of ``attributes`` (``p.grad``,
    ``p.grad.data``, ``p.grad.zero_``)."""
    while isinstance(node, (cst.Attribute, cst.Subscript, cst.Call)):
        if isinstance(node, cst.Attribute) and node.attr.value in attributes:
            return True
        node = node.func if isinstance(node, cst.Call) else node.value
    return False


def _part_of(path: str, whole: str) -> bool:
    """``model.encoder`` (or ``model``, ``model[0]``) is a part of ``model``."""
    return path == whole or path.startswith((whole + ".", whole + "["))
