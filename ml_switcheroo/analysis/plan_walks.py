"""The planner's syntax walks and queries: calls, names, attributes and methods found in a node
(``_calls_of``, ``_attribute_read``, ``_walk_calls``, ``_mentions``...), answered from the
syntax alone.

Split from ``plan.py`` by ``tools/split_plan.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.plan_facts import Site
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.signature import NotALiteral, code_of, literal_value

# ``isinstance(node, (cst.Name, cst.Attribute))`` answered once per node type (asked of every
# node a walk leaves: libcst's node classes are ABCs)
_is_name_or_attribute = cst_walk.instance_test((cst.Name, cst.Attribute))


def _is_attribute(node: cst.BaseExpression, names: frozenset[str]) -> bool:
    return isinstance(node, cst.Attribute) and node.attr.value in names


def _impure_calls(
    nodes: Sequence[cst.CSTNode], harmless: Callable[[cst.Call], bool]
) -> list[cst.Call]:
    """The outermost calls in ``nodes`` that are not ``harmless`` (lambdas aside)."""
    found: list[cst.Call] = []

    class _Find(cst.CSTVisitor):
        def visit_Lambda(self, node: cst.Lambda) -> bool:
            return False

        def visit_Call(self, node: cst.Call) -> bool:
            if harmless(node):
                return False
            found.append(node)
            return False

    for node in nodes:
        cst_walk.visit(node, _Find())
    return found


# nodes whose evaluation may run code of the program without a call written there: a
# decorator, a class body, a dunder method (attribute and item access, operators, truth
# tests, iteration, context managers, f-string formatting), an import running a module
_RUNS_CODE = (
    cst.Call,
    cst.Decorator,
    cst.ClassDef,
    cst.Attribute,
    cst.Subscript,
    cst.BinaryOperation,
    cst.UnaryOperation,
    cst.Comparison,
    cst.BooleanOperation,
    cst.AugAssign,
    cst.IfExp,
    cst.For,
    cst.While,
    cst.If,
    cst.With,
    cst.Try,
    cst.Match,
    cst.Import,
    cst.ImportFrom,
    cst.Del,
    cst.Raise,
    cst.Assert,
    cst.Await,
    cst.Yield,
    cst.FormattedString,
    cst.ListComp,
    cst.SetComp,
    cst.DictComp,
    cst.GeneratorExp,
    cst.StarredElement,
    cst.StarredDictElement,
)


def may_run_code(node: cst.CSTNode) -> bool:
    """Whether evaluating ``node`` may run code of the program besides the calls written in
    it (``_RUNS_CODE``); a ``def``'s or a lambda's body does not run, their decorators,
    defaults and annotations do (probe s35O F4)."""
    for current in cst_walk.walk(node, stop=(cst.FunctionDef, cst.Lambda)):
        if isinstance(current, _RUNS_CODE):
            return True
        if isinstance(current, (cst.FunctionDef, cst.Lambda)):
            heads: list[cst.CSTNode] = [*getattr(current, "decorators", ()), current.params]
            returns = getattr(current, "returns", None)
            if returns is not None:
                heads.append(returns)
            if any(may_run_code(head) for head in heads):
                return True
    return False


def _bound_names(statement: cst.BaseStatement) -> set[str]:
    """The plain names a simple statement assigns (``a, b = ...``, ``a += ...``)."""
    if not isinstance(statement, cst.SimpleStatementLine):
        return set()
    targets: list[cst.BaseExpression] = []
    for small in statement.body:
        if isinstance(small, cst.Assign):
            targets.extend(t.target for t in small.targets)
        elif isinstance(small, (cst.AnnAssign, cst.AugAssign)):
            targets.append(small.target)
    found: set[str] = set()
    while targets:
        target = targets.pop()
        if isinstance(target, cst.Name):
            found.add(target.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            targets.extend(e.value for e in target.elements)
    return found


def _names(node: cst.CSTNode) -> list[cst.Name]:
    found: list[cst.Name] = []

    class _Collect(cst.CSTVisitor):
        def visit_Name(self, name: cst.Name) -> None:
            found.append(name)

        def visit_Attribute(self, attribute: cst.Attribute) -> bool:
            cst_walk.visit(attribute.value, self)
            return False

    cst_walk.visit(node, _Collect())
    return found


def _node_ids(statements: Sequence[cst.BaseStatement]) -> set[int]:
    found: set[int] = set()

    class _Collect(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            found.add(id(node))
            return True

    for statement in statements:
        cst_walk.visit(statement, _Collect())
    return found


def _mentions_but_lr_reads(module: cst.Module, groups: str) -> bool:
    """Whether ``module`` uses ``groups`` (``opt.param_groups``) otherwise than to read
    ``groups[0]["lr"]`` (a read changes nothing the scheduler multiplies)."""
    return _use_but_lr_reads(module, groups) is not None


def _use_but_lr_reads(module: cst.Module, groups: str) -> cst.CSTNode | None:
    """The first node of ``module`` (a write's target, or ``groups`` itself) that uses
    ``groups`` otherwise than to read ``groups[0]["lr"]``; None when there is none."""
    other: cst.CSTNode | None = None

    class _Find(cst.CSTVisitor):
        def __init__(self) -> None:
            super().__init__()
            self.reads: set[int] = set()

        def visit_Subscript(self, node: cst.Subscript) -> None:
            inner = node.value
            if (
                isinstance(inner, cst.Subscript)
                and code_of(inner.value).strip() == groups
                and _one_literal_index(inner, 0)
                and _one_literal_index(node, "lr")
            ):
                self.reads.add(id(inner.value))

        def visit_Assign(self, node: cst.Assign) -> None:
            for target in node.targets:  # `groups[0]["lr"] = v` is a write
                self.writes(target.target)

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            self.writes(node.target)

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            self.writes(node.target)

        def visit_Del(self, node: cst.Del) -> None:
            self.writes(node.target)

        def writes(self, target: cst.CSTNode) -> None:
            nonlocal other
            if other is None and _mentions(target, groups):
                other = target

        def on_leave(self, original_node: cst.CSTNode) -> None:
            nonlocal other
            node = original_node
            if (
                other is None
                and _is_name_or_attribute(node)
                and code_of(node).strip() == groups
                and id(node) not in self.reads
            ):
                other = node

    cst_walk.visit(module, _Find())
    return other


def _one_literal_index(node: cst.Subscript, value: object) -> bool:
    """``x[<value>]``: one index, an integer or string literal equal to ``value``."""
    if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
        return False
    index = node.slice[0].slice.value
    if isinstance(index, cst.Integer):
        return index.evaluated_value == value
    return isinstance(index, cst.SimpleString) and index.evaluated_value == value


def _mentions(node: cst.CSTNode, text: str) -> bool:
    """Whether a name or attribute in ``node`` is written ``text`` (``self.sched``)."""
    return any(_written_as(found, text) for found in cst_walk.walk(node))


_is_name_or_attribute = cst_walk.instance_test((cst.Name, cst.Attribute))


_is_attribute_node = cst_walk.instance_test(cst.Attribute)


def _written_as(node: cst.CSTNode, text: str) -> bool:
    """Whether ``node`` is a name or attribute whose code is ``text`` (its last name, which its
    code holds, must then be in ``text``: checked before the code is written out)."""
    if not _is_name_or_attribute(node):
        return False
    last = node.attr.value if _is_attribute_node(node) else node.value  # type: ignore[attr-defined]
    return last in text and code_of(node).strip() == text


def _calls_self_method(node: cst.CSTNode, receiver: str, name: str) -> bool:
    """Whether ``node`` calls ``receiver.name(...)`` (``self.train_one_epoch(...)``)."""
    found = False

    class _Find(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            nonlocal found
            func = call.func
            if (
                isinstance(func, cst.Attribute)
                and func.attr.value == name
                and isinstance(func.value, cst.Name)
                and func.value.value == receiver
            ):
                found = True

    cst_walk.visit(node, _Find())
    return found


def _calls_of(module: cst.Module, name: str) -> int:
    """How many calls in ``module`` call ``name(...)`` or ``<anything>.name(...)``."""
    return len(_calls_named(module, name))


def _attribute_read(module: cst.Module, owner: str, attribute: str) -> bool:
    """Whether ``module`` uses ``<anything>.<owner>.<attribute>`` (``self.opt.param_groups``)."""
    found = False

    class _Find(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> None:
            nonlocal found
            value = node.value
            found = found or (
                node.attr.value == attribute
                and isinstance(value, cst.Attribute)
                and value.attr.value == owner
            )

    cst_walk.visit(module, _Find())
    return found


# Methods of a torch scheduler that leave its step count alone (``_self_attributes_stable``)
_SCHEDULER_READS = frozenset({"get_last_lr", "state_dict"})


def _methods_called_on(module: cst.Module, attribute: str) -> list[tuple[str, str]]:
    """``(base, method)`` of every ``<base>.<attribute>.<method>(...)`` call in ``module``
    (``self.sched.step()``, ``t.sched.step()`` in a function given the trainer)."""
    found: list[tuple[str, str]] = []

    class _Find(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            func = node.func
            if (
                isinstance(func, cst.Attribute)
                and isinstance(func.value, cst.Attribute)
                and func.value.attr.value == attribute
            ):
                found.append((code_of(func.value.value).strip(), func.attr.value))

    cst_walk.visit(module, _Find())
    return found


def _only_method_receiver(module: cst.Module, built: cst.Attribute) -> bool:
    """Whether every ``<anything>.<attr>`` of ``built``'s attribute in ``module`` other than
    ``built`` itself (its store) is the receiver of a method call (``self.sched.step()``)."""
    attribute = built.attr.value
    ok = True

    class _Find(cst.CSTVisitor):
        def __init__(self) -> None:
            self.receivers: set[int] = set()

        def visit_Call(self, node: cst.Call) -> None:
            func = node.func
            if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Attribute):
                self.receivers.add(id(func.value))

        def visit_Attribute(self, node: cst.Attribute) -> None:
            nonlocal ok
            if node.attr.value == attribute and node is not built:
                ok = ok and id(node) in self.receivers

    cst_walk.visit(module, _Find())
    return ok


def _handed_as_argument(module: cst.Module, name: str) -> bool:
    """Whether a call in ``module`` is given the name ``name`` itself as an argument."""
    found = False

    class _Find(cst.CSTVisitor):
        def visit_Arg(self, node: cst.Arg) -> None:
            nonlocal found
            found = found or (isinstance(node.value, cst.Name) and node.value.value == name)

    cst_walk.visit(module, _Find())
    return found


def _function_arguments(site: Site) -> list[tuple[cst.BaseExpression, bool]]:
    """The arguments of ``site``'s call its map entry lists as ``functions`` (``lr_lambda``),
    each with whether the entry lists it as ``traced``; every argument (traced when any is)
    when they cannot be bound (conservative)."""
    entry = site.entry
    if entry is None or not entry.functions:
        return []
    try:
        bound = entry.signature.bind(site.call)
    except Untranslatable:
        return [(a.value, bool(entry.traced)) for a in site.call.args]
    return [
        (bound[name].value, name in entry.traced)
        for name in sorted(entry.functions)
        if name in bound
    ]


def _walk_calls(module: cst.CSTNode) -> list[cst.Call]:
    """Every call in ``module`` (or another node), in source order."""
    found: list[cst.Call] = []

    class _Find(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            found.append(call)

    cst_walk.visit(module, _Find())
    return found


def _defs_named(module: cst.Module, name: str) -> int:
    """How many ``def name(...)`` (functions or methods, any class) ``module`` holds."""
    found = 0

    class _Find(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
            nonlocal found
            found += node.name.value == name

    cst_walk.visit(module, _Find())
    return found


def _attr_uses(module: cst.Module, name: str) -> int:
    """How many ``<anything>.name`` attributes ``module`` holds (calls and reads)."""
    found = 0

    class _Find(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> None:
            nonlocal found
            found += node.attr.value == name

    cst_walk.visit(module, _Find())
    return found


def _calls_named(module: cst.Module, name: str) -> list[cst.Call]:
    """The calls in ``module`` of ``name(...)`` or ``<anything>.name(...)``."""
    return [
        call
        for call in _walk_calls(module)
        if (isinstance(call.func, cst.Name) and call.func.value == name)
        or (isinstance(call.func, cst.Attribute) and call.func.attr.value == name)
    ]


def _last_name(func: cst.BaseExpression) -> str | None:
    """``f`` of a callee ``f``, ``self.f`` or ``mod.f`` (``backward`` of
    ``torch.autograd.backward``); None for another expression."""
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return func.value if isinstance(func, cst.Name) else None


def _short(node: cst.CSTNode, limit: int = 60) -> str:
    text = " ".join(code_of(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parameter_functions(module: cst.Module) -> dict[int, str]:
    """For every parameter of the module's functions and lambdas (the Param, and its name):
    ``name()`` of its function, or ``a lambda``."""
    found: dict[int, str] = {}

    class _Find(cst.CSTVisitor):
        def visit_FunctionDef(self, definition: cst.FunctionDef) -> None:
            self._hold(definition.params, f"{definition.name.value}()")

        def visit_Lambda(self, definition: cst.Lambda) -> None:
            self._hold(definition.params, "a lambda")

        @staticmethod
        def _hold(parameters: cst.Parameters, function: str) -> None:
            star = parameters.star_arg if isinstance(parameters.star_arg, cst.Param) else None
            every = [*parameters.posonly_params, *parameters.params, *parameters.kwonly_params]
            for param in [*every, star, parameters.star_kwarg]:
                if param is not None:
                    found[id(param)] = found[id(param.name)] = function

    cst_walk.visit(module, _Find())
    return found


_NOT_HIDDEN = frozenset({"__init__", "__new__", "__init_subclass__", "__post_init__"})


def _plain_return(body: cst.BaseSuite) -> bool:
    """A body that is one ``return`` of an expression that runs nothing but attribute reads
    (``return self._lr``): a getter that cannot change a value."""
    statements = getattr(body, "body", ())
    if len(statements) != 1 or not isinstance(statements[0], cst.SimpleStatementLine):
        return False
    small = statements[0].body
    if len(small) != 1 or not isinstance(small[0], cst.Return):
        return False
    value = small[0].value
    return value is None or not any(
        isinstance(n, cst.Call | cst.NamedExpr) for n in cst_walk.walk(value)
    )


def defines_hidden_code(module: cst.Module) -> bool:
    """Whether a class of ``module`` has a method that attribute or item access, an operator
    or a truth test may run without a call written (a decorated method such as a
    ``@property``, a dunder but the constructors) and whose body may change a value: more
    than one ``return`` of an expression without calls (probe s35O F5: ``y = p.x`` whose
    getter writes ``cfg.lr``)."""
    for node in cst_walk.walk(module):
        if not isinstance(node, cst.ClassDef):
            continue
        for method in cst_walk.walk(node.body, stop=(cst.ClassDef,)):
            if not isinstance(method, cst.FunctionDef):
                continue
            name = method.name.value
            dunder = name.startswith("__") and name.endswith("__") and name not in _NOT_HIDDEN
            if (dunder or method.decorators) and not _plain_return(method.body):
                return True
    return False


def computed_attributes(module: cst.Module) -> tuple[frozenset[str], bool]:
    """Attributes a class of ``module`` computes when they are read: the names of its decorated
    methods (``@property``, ``@functools.cached_property``, any decorator: what it returns on
    access is unknown), and whether a class defines ``__getattr__``/``__getattribute__`` (then
    any attribute may be computed). Probe s36 G2: ``cfg.clip`` whose property returns
    ``self.base * self.factor`` changes with ``cfg.factor``, which no store of ``cfg.clip``
    shows. Also the names a class body binds to anything but a literal
    (``max_grad_norm = property(get, set)``, a descriptor object with ``__get__``: probe s40
    R1), whose reads and stores on an instance may run code."""
    names: set[str] = set()
    any_attribute = False
    for node in cst_walk.walk(module):
        if not isinstance(node, cst.ClassDef):
            continue
        for method in cst_walk.walk(node.body, stop=(cst.ClassDef, cst.FunctionDef)):
            if isinstance(method, cst.Assign | cst.AnnAssign):
                names.update(_class_bound(method))
        for method in cst_walk.walk(node.body, stop=(cst.ClassDef,)):
            if not isinstance(method, cst.FunctionDef):
                continue
            if method.name.value in ("__getattr__", "__getattribute__"):
                any_attribute = True
            elif method.decorators:
                names.add(method.name.value)
    return frozenset(names), any_attribute


def _class_bound(statement: cst.Assign | cst.AnnAssign) -> set[str]:
    """The names a class body's assignment binds to a value that is no literal."""
    value = statement.value
    if value is None:
        return set()
    try:
        literal_value(value)
        return set()
    except NotALiteral:
        pass
    targets = (
        [t.target for t in statement.targets]
        if isinstance(statement, cst.Assign)
        else [statement.target]
    )
    return {
        name.value
        for target in targets
        for name in cst_walk.walk(target)
        if isinstance(name, cst.Name)
    }


def _declared_global(module: cst.Module) -> set[str]:
    """Names a ``global`` or ``nonlocal`` statement of ``module`` declares."""
    names: set[str] = set()

    class _Find(cst.CSTVisitor):
        def visit_Global(self, node: cst.Global) -> None:
            names.update(item.name.value for item in node.names)

        def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
            names.update(item.name.value for item in node.names)

    cst_walk.visit(module, _Find())
    return names


def _owner_of(module: cst.Module, block: cst.CSTNode) -> cst.CSTNode | None:
    """The statement whose body is the indented ``block`` (None: the module's)."""
    found: list[cst.CSTNode] = []

    class _Find(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            if not found and getattr(node, "body", None) is block:
                found.append(node)
            return not found

    cst_walk.visit(module, _Find())
    return found[0] if found else None


def _plain(node: cst.BaseExpression) -> cst.Name | None:
    """``node`` when it is a plain name, else None."""
    return node if isinstance(node, cst.Name) else None


def _direct_call(statement: cst.BaseStatement) -> cst.Call | None:
    """The call a statement consists of: ``f(...)``, ``x = f(...)``, ``loss = self.f(...)``."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    value = small.value if isinstance(small, (cst.Expr, cst.Assign, cst.AnnAssign)) else None
    return value if isinstance(value, cst.Call) else None


def _self_name(site: Site) -> str | None:
    """The first parameter of the method ``site`` sits in (``self``), or None."""
    function = site.function
    if not isinstance(function, cst.FunctionDef) or site.enclosing_class is None:
        return None
    position = next(i for i, control in enumerate(site.controls) if control is function)
    if position == 0 or site.controls[position - 1] is not site.enclosing_class:
        return None  # a function nested in a method
    if any(code_of(d.decorator).strip() == "staticmethod" for d in function.decorators):
        return None
    parameters = function.params.params
    return parameters[0].name.value if parameters else None


def _function_name(site: Site) -> str:
    """``name()`` of the function ``site`` is in, or ``the module``."""
    function = site.function
    return f"{function.name.value}()" if isinstance(function, cst.FunctionDef) else "the module"


def _calls_name(node: cst.CSTNode, name: str) -> bool:
    found = False

    class _Find(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            nonlocal found
            if isinstance(call.func, cst.Name) and call.func.value == name:
                found = True

    cst_walk.visit(node, _Find())
    return found


def _references_of(module: cst.Module, name: str) -> int:
    """How many names in ``module`` refer to ``name`` (loads: not a ``def``'s or a
    parameter's own name, an attribute (``model.train``) or a keyword)."""
    found = 0

    class _Find(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            nonlocal found
            found += node.value == name

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            for part in (node.params, node.body, *node.decorators):
                cst_walk.visit(part, self)
            if node.returns is not None:
                cst_walk.visit(node.returns, self)
            return False

        def visit_Attribute(self, node: cst.Attribute) -> bool:
            cst_walk.visit(node.value, self)
            return False

        def visit_Arg(self, node: cst.Arg) -> bool:
            cst_walk.visit(node.value, self)
            return False

        def visit_Param(self, node: cst.Param) -> bool:
            for part in (node.annotation, node.default):
                if part is not None:
                    cst_walk.visit(part, self)
            return False

    cst_walk.visit(module, _Find())
    return found


def _calls_in(statements: Sequence[cst.BaseStatement]) -> list[cst.Call]:
    """Every call in ``statements``."""
    found: list[cst.Call] = []

    class _Find(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            found.append(call)

    for statement in statements:
        cst_walk.visit(statement, _Find())
    return found


def _arguments_mention(call: cst.Call, text: str) -> bool:
    """Whether an argument of ``call`` holds the value ``text`` itself (``f(opt)``,
    ``f(x=[opt])``), not only a method's result or an attribute of it (``opt.state_dict()``)."""
    found = False

    class _Find(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            nonlocal found
            found = found or node.value == text

        def visit_Attribute(self, node: cst.Attribute) -> bool:
            nonlocal found
            if code_of(node).strip() == text:
                found = True
                return False
            if code_of(node.value).strip() == text:
                return False  # `opt.state_dict`, `opt.param_groups`
            cst_walk.visit(node.value, self)
            return False

    for argument in call.args:
        cst_walk.visit(argument.value, _Find())
    return found


def _method_receivers(module: cst.Module, methods: frozenset[str]) -> set[int]:
    """The ids of the names ``x`` of every ``x.m(...)`` in ``module``, ``m`` in ``methods``."""
    found: set[int] = set()

    class _Find(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            func = call.func
            if isinstance(func, cst.Attribute) and func.attr.value in methods:
                found.add(id(func.value))

    cst_walk.visit(module, _Find())
    return found


def _method_parameter(
    method: cst.FunctionDef, call: cst.Call, argument: cst.Arg
) -> cst.Param | None:
    """The parameter of ``method`` that ``argument`` of ``call`` (``self.method(...)``) binds,
    past its ``self``; None when not certain (star arguments or parameters, a decorator)."""
    params = method.params
    if method.decorators or params.star_kwarg is not None or any(a.star for a in call.args):
        return None
    if not isinstance(params.star_arg, cst.MaybeSentinel) or params.posonly_params:
        return None
    positional = list(params.params[1:])
    if argument.keyword is None:
        index = [a for a in call.args if a.keyword is None].index(argument)
        return positional[index] if index < len(positional) else None
    named = [*positional, *params.kwonly_params]
    return next((p for p in named if p.name.value == argument.keyword.value), None)


def _is_self_call(call: cst.Call) -> bool:
    """``self.method(...)``."""
    func = call.func
    return (
        isinstance(func, cst.Attribute)
        and isinstance(func.value, cst.Name)
        and func.value.value == "self"
    )


def _enclosing_def(module: cst.Module, node: cst.CSTNode) -> cst.FunctionDef | None:
    """The innermost ``def`` around ``node`` (None at module level)."""
    stack: list[cst.FunctionDef] = []
    found: list[cst.FunctionDef | None] = []

    class _Find(cst.CSTVisitor):
        def on_visit(self, visited: cst.CSTNode) -> bool:
            if visited is node:
                found.append(stack[-1] if stack else None)
                return False
            if isinstance(visited, cst.FunctionDef):
                stack.append(visited)
            return not found

        def on_leave(self, original_node: cst.CSTNode) -> None:
            if isinstance(original_node, cst.FunctionDef) and stack and stack[-1] is original_node:
                stack.pop()

    cst_walk.visit(module, _Find())
    return found[0] if found else None


class _AttributeStores(cst.CSTVisitor):
    """Calls ``stored`` with each ``<anything>.<attribute>`` a statement stores or deletes
    (assignment, augmented or annotated assignment, ``for`` and ``with ... as`` targets,
    ``del``), also inside tuple, list and starred targets."""

    def __init__(self, attribute: str) -> None:
        super().__init__()
        self.attribute = attribute

    def stored(self, target: cst.Attribute) -> None:
        raise NotImplementedError

    def _target(self, target: cst.CSTNode) -> None:
        if isinstance(target, cst.Attribute) and target.attr.value == self.attribute:
            self.stored(target)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._target(element.value)
        elif isinstance(target, cst.StarredElement):
            self._target(target.value)

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._target(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._target(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._target(node.target)

    def visit_For(self, node: cst.For) -> None:
        self._target(node.target)

    def visit_AsName(self, node: cst.AsName) -> None:
        self._target(node.name)

    def visit_Del(self, node: cst.Del) -> None:
        self._target(node.target)


def _attribute_stores(
    module: cst.Module, attribute: str, base: str
) -> list[tuple[cst.CSTNode, cst.FunctionDef | None]] | None:
    """Every store or deletion of ``<anything>.<attribute>`` in ``module`` with its innermost
    ``def``; None when something else may set it (``setattr``, ``vars``, ``base.__dict__``, a
    method or property of that name)."""
    stores: list[tuple[cst.CSTNode, cst.FunctionDef | None]] = []
    stack: list[cst.FunctionDef] = []
    unknown = False

    class _Find(_AttributeStores):
        def stored(self, target: cst.Attribute) -> None:
            stores.append((target, stack[-1] if stack else None))

        def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
            nonlocal unknown
            unknown = unknown or node.name.value == attribute  # a property may compute it
            stack.append(node)

        def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
            stack.pop()

        def visit_Name(self, node: cst.Name) -> None:
            nonlocal unknown
            unknown = unknown or node.value in ("setattr", "vars")

        def visit_Attribute(self, node: cst.Attribute) -> None:
            nonlocal unknown
            if node.attr.value == "__dict__" and code_of(node.value).strip() == base:
                unknown = True

    cst_walk.visit(module, _Find(attribute))
    return None if unknown else stores


def _name_uses(
    node: cst.CSTNode, name: str
) -> list[tuple[cst.Name, cst.CSTNode | None, cst.CSTNode | None]]:
    """Each ``Name`` ``name`` in ``node`` (not an attribute's or keyword's own name) with its
    parent and grandparent."""
    found: list[tuple[cst.Name, cst.CSTNode | None, cst.CSTNode | None]] = []
    stack: list[cst.CSTNode] = []

    class _Find(cst.CSTVisitor):
        def on_visit(self, visited: cst.CSTNode) -> bool:
            if isinstance(visited, cst.Name) and visited.value == name:
                parent = stack[-1] if stack else None
                grandparent = stack[-2] if len(stack) > 1 else None
                own_name = (isinstance(parent, cst.Attribute) and parent.attr is visited) or (
                    isinstance(parent, cst.Arg) and parent.keyword is visited
                )
                if not own_name:
                    found.append((visited, parent, grandparent))
            stack.append(visited)
            return True

        def on_leave(self, original_node: cst.CSTNode) -> None:
            stack.pop()

    cst_walk.visit(node, _Find())
    return found


def _attribute_reads(module: cst.Module) -> set[int]:
    """The ids of the names ``x`` of every ``x.attr`` in ``module`` that is read: not the
    function of a call (``x.update(...)``), not a store or deletion target."""
    found: set[int] = set()
    targets: set[int] = set()

    class _Find(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> None:
            if isinstance(node.value, cst.Name) and id(node) not in targets:
                found.add(id(node.value))

        def visit_Call(self, node: cst.Call) -> None:
            targets.add(id(node.func))

        def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
            targets.add(id(node.target))

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            targets.add(id(node.target))

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            targets.add(id(node.target))

        def visit_Del(self, node: cst.Del) -> None:
            targets.add(id(node.target))

    cst_walk.visit(module, _Find())
    return found


def _method_calls_other_than(
    statements: Sequence[cst.BaseStatement], text: str, excluded: frozenset[str]
) -> list[cst.BaseStatement]:
    """The statements that use ``text`` (the optimizer) only as the receiver of method calls
    none of which is in ``excluded`` (``opt.state_dict()`` in a checkpoint: no update)."""
    found = []
    for statement in statements:
        uses, calls = 0, 0

        class _Count(cst.CSTVisitor):
            def on_visit(self, node: cst.CSTNode) -> bool:
                nonlocal uses, calls
                if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
                    method = node.func
                    if code_of(method.value).strip() == text and method.attr.value not in excluded:
                        calls += 1
                if isinstance(node, (cst.Name, cst.Attribute)) and code_of(node).strip() == text:
                    uses += 1
                    return False
                return True

        cst_walk.visit(statement, _Count())
        if uses and uses == calls:
            found.append(statement)
    return found


# builtins that bind names by string: `exec("lr = 0.5")`; and, called without an
# argument, the namespaces: `globals()["lr"] = 0.5`, `vars()`, `locals()` (`vars(args)` is an
# object's: the attribute paths' checks see it)
_EXECUTING = frozenset({"exec"})  # (`eval` binds only through a walrus: not counted)
_NAMESPACES = frozenset({"globals", "locals", "vars"})


def may_bind(node: cst.CSTNode, names: set[str]) -> bool:
    """``node`` binds one of ``names`` where libcst's scopes do not see it (a ``match``
    capture: ``case lr:``, ``case [lr, *rest]``, ``case {**rest}``), or may bind any name (a
    call of ``exec``, or of ``globals()``/``locals()``/``vars()`` with no argument)."""
    captured = _captured(node)
    return captured in names if captured is not None else _binds_by_string(node)


def missed_bindings(root: cst.CSTNode) -> tuple[frozenset[str], bool]:
    """The names ``match`` captures under ``root`` bind, and whether a call there may bind
    any name (``may_bind``): what libcst's scopes do not record, found in one walk."""
    captured: set[str] = set()
    executes = False
    for node in cst_walk.walk(root):
        name = _captured(node)
        if name is not None:
            captured.add(name)
        executes = executes or _binds_by_string(node)
    return frozenset(captured), executes


def _captured(node: cst.CSTNode) -> str | None:
    """The name a ``match`` capture binds (``case lr:``, ``*rest``, ``**rest``), or None."""
    if isinstance(node, (cst.MatchAs, cst.MatchStar)) and node.name is not None:
        return node.name.value
    if isinstance(node, cst.MatchMapping) and node.rest is not None:
        return node.rest.value
    return None


def _binds_by_string(node: cst.CSTNode) -> bool:
    """``exec(...)``, ``globals()``, ``locals()``, ``vars()``: may bind any name."""
    if not (isinstance(node, cst.Call) and isinstance(node.func, cst.Name)):
        return False
    return node.func.value in _EXECUTING or (node.func.value in _NAMESPACES and not node.args)
