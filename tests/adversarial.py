"""Oracles for the adversarial property tests (tests/test_adversarial_properties.py).

Three oracles, none of which trusts the codemod's own map:

* ``check_numbers``: a generated torch module is run as written (its training loop really
  trains, in float64), its translation is run under JAX, and each optax transformation found
  under the same name is stepped on the same problem. A conversion whose parameter trajectory
  differs from torch's is a failure; a construction left in an escape hatch is accepted.
* ``torch_only_uses``: statements that use an optimizer in a way only a torch optimizer
  supports (its attributes, handing it to code that expects one), found with ``ast``.
* ``bound_names`` / ``lonely_pragmas`` / ``round_trips``: text invariants.
"""

from __future__ import annotations

import ast
import inspect
import io
import re
import sys
import tokenize
import traceback
import types
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import libcst as cst
import numpy as np
import optax
import torch
import yaml
from libcst.codemod import CodemodContext

import ml_switcheroo
from ml_switcheroo.codemods.optimizer import TorchToOptax
from ml_switcheroo.spec.escape_hatch import BEGIN, END
from ml_switcheroo.targets.catalogue import load_semantic_map
from tests.differential.harness import EXACT, Problem, float64, linear_problem, rel_error

STEPS = 30

# ----------------------------------------------------------------------------- names


def _emit_texts(node: Any) -> Iterator[str]:
    """Every ``emit:`` template string of the raw YAML map."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "emit" and isinstance(value, str):
                yield value
            else:
                yield from _emit_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _emit_texts(item)


@cache
def template_names() -> tuple[str, ...]:
    """Names the map's templates introduce: lambda parameters, comprehension targets and the
    import roots the codemod adds (read from the YAML text, not from the loader)."""
    path = Path(ml_switcheroo.__file__).parent / "semantic_map.yaml"
    raw = yaml.safe_load(path.read_text())
    names: set[str] = set(raw.get("imports", {}))
    for text in _emit_texts(raw):
        for params in re.findall(r"\blambda\s+([\w\s,]*):", text):
            names.update(p.strip() for p in params.split(",") if p.strip())
        for targets in re.findall(r"\bfor\s+([\w\s,]+?)\s+in\b", text):
            names.update(t.strip() for t in targets.split(",") if t.strip())
    # The names the issue lists, in case a template stops using one.
    names.update(["count", "alpha", "n", "m", "i", "e", "scale", "cycle", "anneal", "product"])
    names.update(["t", "x", "total", "ratio", "peak", "initial", "final", "pct"])
    return tuple(sorted(names))


# ----------------------------------------------------------------------------- the codemod


@dataclass(frozen=True)
class Run:
    """A translation: source, output and the options it ran with."""

    source: str
    code: str
    exact: bool
    steps_per_epoch: str | None


def convert(source: str, *, exact: bool = False, steps_per_epoch: str | None = None) -> Run:
    """Run the codemod; check that the output compiles and that a second run changes nothing."""
    options: dict[str, Any] = {"exact": exact, "steps_per_epoch": steps_per_epoch}

    def once(text: str) -> str:
        command = TorchToOptax(CodemodContext(filename="case.py"), **options)
        return command.transform_module(cst.parse_module(text)).code

    code = once(source)
    compile(code, "case.py", "exec")
    again = once(code)
    assert again == code, describe("a second run changed the output", source, code)
    return Run(source, code, exact, steps_per_epoch)


def describe(what: str, source: str, code: str, extra: str = "") -> str:
    """A failure message with the generated source and the codemod's output (control
    characters other than newlines shown escaped)."""
    tail = f"\n{extra}" if extra else ""
    return f"{what}\n--- generated source:\n{visible(source)}--- output:\n{visible(code)}{tail}"


def visible(text: str) -> str:
    """``text`` with every control character but \\n shown as an escape."""
    return "".join(
        c if c == "\n" or (c.isprintable() and c not in "\x85\u2028") else repr(c)[1:-1]
        for c in text
    )


# ----------------------------------------------------------------------------- escape hatches


def hatched_lines(code: str) -> set[int]:
    """1-based numbers of the lines inside an escape hatch (markers included)."""
    inside, depth = set(), 0
    for number, line in enumerate(code.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            depth += 1
        if depth:
            inside.add(number)
        if stripped.startswith(END):
            depth = max(0, depth - 1)
    return inside


def unhatched_lines_with(code: str, pattern: str) -> list[str]:
    """Lines outside escape hatches that match ``pattern`` (a regex)."""
    inside = hatched_lines(code)
    return [
        line
        for number, line in enumerate(code.splitlines(), start=1)
        if number not in inside and re.search(pattern, line) and not line.lstrip().startswith("#")
    ]


# ----------------------------------------------------------------------------- running modules


@dataclass(frozen=True)
class Target:
    """One optimizer the generated module builds: how to find it after running the module
    (an expression over its namespace), which parameter set it trains, and which of the
    problem's parameters it was given (the others stay where they are)."""

    expression: str
    param_set: int = 0
    trainable: tuple[str, ...] = ("w", "b")


@dataclass(frozen=True)
class Case:
    """A generated runnable module and how to run it."""

    source: str
    targets: tuple[Target, ...]
    exact: bool = False
    steps_per_epoch: str | None = None  # the codemod's --steps-per-epoch
    loader_size: int = 5  # len(loader) of per-epoch loops (the module makes its loader)
    flag: bool = True
    constructors: tuple[str, ...] = ()  # class names used (for the map's tolerance)
    clip: str | None = None  # the clip statement of the training loop, if any


@dataclass
class TorchRecorder:
    """The torch module's environment: fresh parameter sets, their loss and trajectories."""

    problem: Problem
    sets: list[list[torch.Tensor]] = field(default_factory=list)
    trajectories: list[list[dict[str, np.ndarray]]] = field(default_factory=list)
    current: int = -1

    def make_params(self) -> list[torch.Tensor]:
        tensors = [
            torch.tensor(v, dtype=torch.float64, requires_grad=True)
            for v in self.problem.init.values()
        ]
        self.sets.append(tensors)
        self.trajectories.append([])
        self.current = len(self.sets) - 1
        return tensors

    def select(self, index: int) -> None:
        self.current = index

    def named(self) -> dict[str, torch.Tensor]:
        return dict(zip(self.problem.init, self.sets[self.current], strict=True))

    def loss_fn(self, batch: Any) -> torch.Tensor:
        """The loss of step k (the k-th record of this parameter set), whatever the batch."""
        return self.problem.torch_loss(self.named(), len(self.trajectories[self.current]))

    def record(self) -> None:
        snapshot = {k: p.detach().numpy().copy() for k, p in self.named().items()}
        self.trajectories[self.current].append(snapshot)


def torch_env(case: Case, recorder: TorchRecorder) -> dict[str, Any]:
    return {
        "make_params": recorder.make_params,
        "select": recorder.select,
        "loss_fn": recorder.loss_fn,
        "record": recorder.record,
        "batches": range(STEPS),
        "epochs": STEPS // case.loader_size,
        "flag": case.flag,
    }


def jax_env(case: Case, problem: Problem) -> dict[str, Any]:
    def make_params() -> list[jax.Array]:
        return [jnp.asarray(v) for v in problem.init.values()]

    def untrained(*args: Any) -> None:
        raise AssertionError("the translated module trained: its loops should not run")

    return {
        "make_params": make_params,
        "select": lambda index: None,
        "loss_fn": untrained,
        "record": lambda: None,
        "batches": [],
        "epochs": 0,
        "flag": case.flag,
    }


def execute(code: str, env: dict[str, Any]) -> dict[str, Any]:
    """Run ``code`` in a fresh namespace; ``apex.optimizers`` imports our stand-in."""
    namespace: dict[str, Any] = {"__name__": "case", **env}
    with modules_added(fake_apex()):
        exec(compile(code, "case.py", "exec"), namespace)  # noqa: S102 - generated modules
    return namespace


@contextmanager
def modules_added(added: dict[str, types.ModuleType]) -> Iterator[None]:
    """``added`` in sys.modules meanwhile (only those keys are restored: torch imports
    more of itself lazily, and those must stay)."""
    previous = {name: sys.modules.get(name) for name in added}
    sys.modules.update(added)
    try:
        yield
    finally:
        for name, module in previous.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def fake_apex() -> dict[str, types.ModuleType]:
    """``apex.optimizers`` with a ``FusedX`` for every torch optimizer X: X at twice the lr,
    so that code importing it under torch's name (class F) is not torch's optimizer."""
    apex, optimizers = types.ModuleType("apex"), types.ModuleType("apex.optimizers")
    apex.optimizers = optimizers  # type: ignore[attr-defined]
    names = ["SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adagrad", "Adadelta"]
    for name in [*names, "RMSprop", "ASGD"]:
        setattr(optimizers, f"Fused{name}", _doubled_lr(getattr(torch.optim, name)))
    return {"apex": apex, "apex.optimizers": optimizers}


def _doubled_lr(base: type) -> type:
    def __init__(self: Any, params: Any, lr: Any = None, *args: Any, **kwargs: Any) -> None:
        if lr is None:
            lr = inspect.signature(base).parameters["lr"].default
        base.__init__(self, params, lr * 2, *args, **kwargs)

    return type(f"Fused{base.__name__}", (base,), {"__init__": __init__})


def optax_trajectory(
    problem: Problem, tx: optax.GradientTransformation, trainable: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """Every parameter over STEPS updates of ``tx`` (on the trainable ones; jit + scan)."""
    train = {k: jnp.asarray(v) for k, v in problem.init.items() if k in trainable}
    frozen = {k: jnp.asarray(v) for k, v in problem.init.items() if k not in trainable}

    def loss(p: Any, k: jax.Array) -> jax.Array:
        return problem.jax_loss({**frozen, **p}, k)

    @jax.jit
    def trajectory(params: Any) -> Any:
        def body(carry: Any, k: jax.Array) -> Any:
            p, state = carry
            updates, state = tx.update(jax.grad(loss)(p, k), state, p)
            p = optax.apply_updates(p, updates)
            return (p, state), p

        return jax.lax.scan(body, (params, tx.init(params)), jnp.arange(STEPS))[1]

    moved = jax.tree.map(np.asarray, trajectory(train))
    fixed = {k: np.broadcast_to(np.asarray(v), (STEPS, *v.shape)) for k, v in frozen.items()}
    return {**moved, **fixed}


def tolerance(case: Case) -> float:
    """The loosest tolerance of the map entries the case uses (EXACT for exact entries)."""
    worst = EXACT
    for entry in load_semantic_map().apis.values():
        if entry.name.rpartition(".")[2] not in case.constructors:
            continue
        if entry.status_for(case.exact) == "approximate" and entry.tolerance:
            worst = max(worst, entry.tolerance)
    return worst


class TorchRefused(Exception):
    """The generated module is not valid torch (torch raised): nothing to compare."""


def run_torch(case: Case, problem: Problem, source: str) -> TorchRecorder:
    recorder = TorchRecorder(problem)
    try:
        with warnings.catch_warnings():  # a scheduler of an optimizer that is never stepped
            warnings.simplefilter("ignore", UserWarning)
            execute(source, torch_env(case, recorder))
    except Exception as error:  # an invalid combination of generated arguments
        raise TorchRefused(f"{type(error).__name__}: {error}") from error
    return recorder


def check_numbers(case: Case) -> str:
    """The oracle: every converted optimizer of ``case`` moves the parameters as torch does;
    what is not converted is in an escape hatch. Returns "converted" or "escaped"."""
    run = convert(case.source, exact=case.exact, steps_per_epoch=case.steps_per_epoch)
    with float64():
        problem = linear_problem(steps=STEPS)
        recorder = run_torch(case, problem, torch_reference(case, run))
        try:
            namespace = execute(run.code, jax_env(case, problem))
        except Exception:
            return _escaped_or_fail(case, run, "the translated module raises", trace=True)
        check_steps_escaped(case, run, namespace)
        outcome = "converted"
        limit = tolerance(case)
        for target in case.targets:
            tx = eval(target.expression, namespace)  # noqa: S307 - generated expression
            if not isinstance(tx, optax.GradientTransformation):
                outcome = _escaped_or_fail(case, run, f"`{target.expression}` is {type(tx)}")
                continue
            expected = recorder.trajectories[target.param_set]
            assert len(expected) == STEPS, f"torch ran {len(expected)} steps"
            try:
                got = optax_trajectory(problem, tx, target.trainable)
            except Exception:
                detail = traceback.format_exc(limit=3)
                raise AssertionError(
                    describe(f"`{target.expression}` cannot be run", case.source, run.code, detail)
                ) from None
            rel = rel_error(problem, expected, got)
            assert rel <= limit, describe(
                f"`{target.expression}`: worst rel {rel:.3g} > {limit:g} over {STEPS} steps"
                f" (exact={case.exact}, steps_per_epoch={case.steps_per_epoch!r})",
                case.source,
                run.code,
            )
        return outcome


STEP_CALL = re.compile(r"^\s*([\w.]+)\.(step|zero_grad)\(")


def check_steps_escaped(case: Case, run: Run, namespace: dict[str, Any]) -> None:
    """No `x.step()` / `x.zero_grad()` outside an escape hatch where `x` is (after running the
    translated module) an optax transformation; `self.` is looked up on `trainer`."""
    hatched = hatched_lines(run.code)
    for number, line in enumerate(run.code.splitlines(), start=1):
        match = STEP_CALL.match(line)
        if not match or number in hatched:
            continue
        receiver = re.sub(r"^self\.", "trainer.", match.group(1))
        try:
            value = eval(receiver, namespace)  # noqa: S307 - a name of the generated module
        except Exception:
            continue
        assert not isinstance(value, optax.GradientTransformation), describe(
            f"`{line.strip()}` on an optax transformation, outside an escape hatch",
            case.source,
            run.code,
        )


def torch_reference(case: Case, run: Run) -> str:
    """The torch source to compare with: without its clip when the clip was not folded into
    an optax chain (then it must be in an escape hatch, and the optimizer alone is compared)."""
    if case.clip is None or unhatched_lines_with(run.code, r"\boptax(_torch)?\.clip"):
        return case.source
    bare = unhatched_lines_with(run.code, re.escape(case.clip))
    assert not bare, describe(f"a clip left outside an escape hatch: {bare}", case.source, run.code)
    return case.source.replace(case.clip, "pass")


def _escaped_or_fail(case: Case, run: Run, what: str, trace: bool = False) -> str:
    """Accept a construction that was left as torch only when it is in an escape hatch."""
    hatched = hatched_lines(run.code)
    lines = run.code.splitlines()
    kept = [
        n
        for n, line in enumerate(lines, start=1)
        if any(re.search(rf"\b{re.escape(c)}\(", line) for c in case.constructors)
        and not line.lstrip().startswith("#")
    ]
    if kept and all(n in hatched for n in kept):
        return "escaped"
    detail = traceback.format_exc(limit=3) if trace else ""
    bare = [lines[n - 1] for n in kept if n not in hatched]
    raise AssertionError(
        describe(
            f"{what}, and no escape hatch around {bare or 'a construction'}",
            case.source,
            run.code,
            detail,
        )
    )


# ----------------------------------------------------------------------------- torch-only uses


def torch_only_attributes() -> frozenset[str]:
    """Attributes a torch optimizer has and an optax transformation has not (from the objects
    themselves, not from the map)."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    tx = optax.sgd(0.1)
    return frozenset(a for a in dir(opt) if not a.startswith("__") and not hasattr(tx, a))


SAFE_CALLEES = re.compile(r"^(optax|optax_torch|jax|jnp)\.|^print$")


def torch_only_uses(code: str, target: str) -> list[tuple[int, str]]:
    """(line, text) of every use of ``target`` (``opt`` or ``self.opt``) that only a torch
    optimizer supports: a torch-only attribute, or the optimizer handed to a call."""
    tree = ast.parse(code)
    attributes = torch_only_attributes()
    found: list[tuple[int, str]] = []
    bases = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in attributes:
            if ast.unparse(node.value) == target:
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Call) and not SAFE_CALLEES.search(ast.unparse(node.func)):
            arguments = [*node.args, *(k.value for k in node.keywords)]
            for argument in arguments:
                for inner in ast.walk(argument):
                    if id(inner) in bases or isinstance(inner, ast.Lambda):
                        continue
                    if isinstance(inner, ast.Name | ast.Attribute) and ast.unparse(inner) == target:
                        found.append((node.lineno, ast.unparse(node)))
    return found


def optax_handed_to_calls(code: str) -> list[tuple[int, str]]:
    """(line, text) of calls to anything but optax/jax that get an optax expression as an
    argument: a converted constructor passed inline to code that expects a torch one."""
    found = []
    for node in ast.walk(ast.parse(code)):
        if not isinstance(node, ast.Call) or isinstance(node.func, ast.Lambda):
            continue
        if SAFE_CALLEES.search(ast.unparse(node.func)):
            continue
        arguments = [*node.args, *(k.value for k in node.keywords)]
        if any(re.search(r"\boptax(_torch)?\.", ast.unparse(a)) for a in arguments):
            found.append((node.lineno, ast.unparse(node)))
    return found


def optax_bindings(code: str, target: str) -> list[str]:
    """Right-hand sides bound to ``target`` that are optax expressions."""
    tree = ast.parse(code)
    values = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(ast.unparse(t) == target for t in targets):
                text = ast.unparse(node.value)
                if "optax." in text:
                    values.append(text)
    return values


# ----------------------------------------------------------------------------- text


def bound_names(code: str) -> set[str]:
    """Names bound at module level (imports, assignments, defs, classes; in if/try too)."""
    names: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.Import | ast.ImportFrom):
                for alias in stmt.names:
                    names.add(alias.asname or alias.name.partition(".")[0])
            elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(stmt.name)
            elif isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.For):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for t in targets:
                    names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
            for child in ("body", "orelse", "finalbody"):
                if isinstance(stmt, ast.If | ast.Try) and hasattr(stmt, child):
                    visit(getattr(stmt, child))
            if isinstance(stmt, ast.Try):
                for handler in stmt.handlers:
                    visit(handler.body)

    visit(ast.parse(code).body)
    return names


def dunder_all(code: str) -> list[str]:
    """The string names listed in ``__all__ = [...]`` / ``__all__ += [...]``."""
    listed: list[str] = []
    for stmt in ast.parse(code).body:
        if isinstance(stmt, ast.Assign | ast.AugAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                listed += [
                    e.value
                    for e in ast.walk(stmt.value)
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)
                ]
    return listed


PRAGMA = re.compile(r"#\s*(type:\s*ignore|noqa|pragma:|pylint:|isort:|mypy:|fmt:|pyright:)")


def lonely_pragmas(code: str) -> list[tuple[int, str]]:
    """Pragma comments (``# type: ignore``, ``# noqa``, ...) on a line with no code."""
    found = []
    readline = io.StringIO(code, newline="").readline
    for token in tokenize.generate_tokens(readline):
        alone = not token.line[: token.start[1]].strip()
        if token.type == tokenize.COMMENT and PRAGMA.match(token.string) and alone:
            found.append((token.start[0], token.string))
    return found


CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def control_comments(code: str) -> Counter[str]:
    """Comments holding a control character (other than tab), counted."""
    found: Counter[str] = Counter()
    readline = io.StringIO(code, newline="").readline
    for token in tokenize.generate_tokens(readline):
        if token.type == tokenize.COMMENT and CONTROL.search(token.string):
            found[token.string] += 1
    return found


def round_trips(source: str) -> bool:
    """Whether libcst parses ``source`` and prints it back byte for byte."""
    try:
        return cst.parse_module(source).code == source
    except Exception:
        return False
