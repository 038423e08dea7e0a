"""Differential harness: the codemod's own output, executed under JAX, against PyTorch.

A case is PyTorch source that binds ``opt`` (and, for schedules, ``sched``). The harness runs
the codemod on it, executes the *translated* module, and runs the resulting optax
transformation next to the torch optimizer on the same problem, in float64. Nothing here
writes an optax expression by hand: what is measured is what users get.

``rel`` is ``max|p_torch - p_optax| / max(max|p_torch|, distance moved)``, the worst over
every step (the measure of ``shared/reference/torch_optax_equivalence.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import libcst as cst
import numpy as np
import optax
import torch
from libcst.codemod import CodemodContext

from ml_switcheroo.codemods.optimizer import TorchToOptax
from ml_switcheroo.rewrite.engine import records_of
from ml_switcheroo.rewrite.report import Record
from ml_switcheroo.targets.catalogue import load_semantic_map

STEPS = 60
EXACT = 1e-9


def map_tolerance(api: str, exact: bool) -> float:
    """The bar for ``api``'s translation: the map's tolerance where the map calls it approximate
    (with or without ``--exact``), else ``EXACT``."""
    entry = load_semantic_map().apis[api]
    approximate = entry.status_for(exact) == "approximate" and entry.tolerance
    return entry.tolerance if approximate else EXACT


@contextmanager
def float64() -> Iterator[None]:
    """x64 in JAX and float64 default dtype in torch, restored afterwards."""
    previous_torch = torch.get_default_dtype()
    previous_x64 = jax.config.jax_enable_x64
    torch.set_default_dtype(torch.float64)
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        torch.set_default_dtype(previous_torch)
        jax.config.update("jax_enable_x64", previous_x64)


# ----------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    """Params plus a per-step loss, written once for torch and once for JAX."""

    init: dict[str, np.ndarray]
    torch_loss: Callable[[dict[str, torch.Tensor], int], torch.Tensor]
    jax_loss: Callable[[dict[str, jax.Array], jax.Array], jax.Array]


def linear_problem(steps: int = STEPS, seed: int = 0) -> Problem:
    """W (5x3), b (3); MSE of x @ W + b on a new batch each step + 0.1*sum(cos W)."""
    rng = np.random.default_rng(seed)
    init = {"w": rng.normal(size=(5, 3)), "b": rng.normal(size=(3,))}
    xs = rng.normal(size=(steps, 8, 5))
    ys = rng.normal(size=(steps, 8, 3))
    xs_t, ys_t = torch.from_numpy(xs), torch.from_numpy(ys)

    def torch_loss(p: dict[str, torch.Tensor], k: int) -> torch.Tensor:
        pred = xs_t[k] @ p["w"] + p["b"]
        return ((pred - ys_t[k]) ** 2).mean() + 0.1 * torch.cos(p["w"]).sum()

    def jax_loss(p: dict[str, jax.Array], k: jax.Array) -> jax.Array:
        pred = jnp.asarray(xs)[k] @ p["w"] + p["b"]
        return ((pred - jnp.asarray(ys)[k]) ** 2).mean() + 0.1 * jnp.cos(p["w"]).sum()

    return Problem(init, torch_loss, jax_loss)


def matrix_problem(shape: tuple[int, int] = (5, 3), steps: int = STEPS, seed: int = 2) -> Problem:
    """A single matrix W (Muon only takes 2-D params); same loss as linear_problem."""
    rng = np.random.default_rng(seed)
    n_in, n_out = shape
    init = {"w": rng.normal(size=shape)}
    xs = rng.normal(size=(steps, 8, n_in))
    ys = rng.normal(size=(steps, 8, n_out))
    xs_t, ys_t = torch.from_numpy(xs), torch.from_numpy(ys)

    def torch_loss(p: dict[str, torch.Tensor], k: int) -> torch.Tensor:
        return ((xs_t[k] @ p["w"] - ys_t[k]) ** 2).mean() + 0.1 * torch.cos(p["w"]).sum()

    def jax_loss(p: dict[str, jax.Array], k: jax.Array) -> jax.Array:
        pred = jnp.asarray(xs)[k] @ p["w"]
        return ((pred - jnp.asarray(ys)[k]) ** 2).mean() + 0.1 * jnp.cos(p["w"]).sum()

    return Problem(init, torch_loss, jax_loss)


def embedding_problem(steps: int = STEPS, rows_per_step: int = 4, seed: int = 1) -> Problem:
    """Embedding table E (10x4); each step looks up a few rows (sparse torch grads)."""
    rng = np.random.default_rng(seed)
    init = {"emb": rng.normal(size=(10, 4))}
    idx = np.stack([rng.choice(10, size=rows_per_step, replace=False) for _ in range(steps)])
    targets = rng.normal(size=(steps, rows_per_step, 4))
    idx_t, targets_t = torch.from_numpy(idx), torch.from_numpy(targets)

    def torch_loss(p: dict[str, torch.Tensor], k: int) -> torch.Tensor:
        rows = torch.nn.functional.embedding(idx_t[k], p["emb"], sparse=True)
        return ((rows - targets_t[k]) ** 2).mean() + 0.1 * torch.cos(rows).sum()

    def jax_loss(p: dict[str, jax.Array], k: jax.Array) -> jax.Array:
        rows = p["emb"][jnp.asarray(idx)[k]]
        return ((rows - jnp.asarray(targets)[k]) ** 2).mean() + 0.1 * jnp.cos(rows).sum()

    return Problem(init, torch_loss, jax_loss)


# ----------------------------------------------------------------------------- trajectories


def run_torch(
    problem: Problem,
    make_opt: Callable[[list[torch.Tensor]], Any],
    *,
    make_sched: Callable[[Any], Any] | None = None,
    before_step: Callable[[list[torch.Tensor]], None] | None = None,
    steps: int = STEPS,
) -> list[dict[str, np.ndarray]]:
    """Parameter trajectory (after each ``opt.step()``) of a torch optimizer."""
    params = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in problem.init.items()
    }
    plist = list(params.values())
    opt = make_opt(plist)
    sched = make_sched(opt) if make_sched else None
    out = []
    for k in range(steps):
        opt.zero_grad()
        problem.torch_loss(params, k).backward()
        if before_step:
            before_step(plist)
        opt.step()
        if sched:
            sched.step()
        out.append({n: p.detach().numpy().copy() for n, p in params.items()})
    return out


def run_optax(
    problem: Problem,
    tx: optax.GradientTransformation,
    *,
    steps: int = STEPS,
    dtype: Any = jnp.float64,
) -> tuple[dict[str, np.ndarray], Any]:
    """Trajectory (leaves stacked over steps) and final state; jit + lax.scan."""
    params = {k: jnp.asarray(v, dtype=dtype) for k, v in problem.init.items()}

    @jax.jit
    def trajectory(params: Any) -> Any:
        def body(carry: Any, k: jax.Array) -> Any:
            p, state = carry
            grads = jax.grad(problem.jax_loss)(p, k)
            updates, state = tx.update(grads, state, p)
            p = optax.apply_updates(p, updates)
            return (p, state), p

        (_, state), traj = jax.lax.scan(body, (params, tx.init(params)), jnp.arange(steps))
        return traj, state

    traj, state = trajectory(params)
    return jax.tree.map(np.asarray, traj), state


def rel_error(
    problem: Problem,
    torch_traj: list[dict[str, np.ndarray]],
    optax_traj: dict[str, np.ndarray],
) -> float:
    """max over steps of max|p_torch - p_optax| / max(max|p_torch|, distance moved)."""
    worst = 0.0
    for k, tp in enumerate(torch_traj):
        diff = max(float(np.max(np.abs(tp[n] - optax_traj[n][k]))) for n in tp)
        size = max(float(np.max(np.abs(tp[n]))) for n in tp)
        moved = max(float(np.max(np.abs(tp[n] - problem.init[n]))) for n in tp)
        worst = max(worst, diff / max(size, moved))
    return worst


# ----------------------------------------------------------------------------- the codemod


@dataclass(frozen=True)
class Translation:
    """The codemod's output for one case, and what it reported."""

    source: str
    code: str
    records: list[Record] = field(default_factory=list)

    @property
    def escapes(self) -> list[Record]:
        return [r for r in self.records if r.kind == "escaped"]

    @property
    def conversions(self) -> list[Record]:
        return [r for r in self.records if r.kind == "converted"]


def translate(
    source: str, *, exact: bool = False, semantic_map: tuple[str, ...] = ()
) -> Translation:
    """Run ``optimizer.TorchToOptax`` on ``source``; check that the output parses and is stable."""
    options: dict[str, Any] = {"exact": exact, "semantic_map": semantic_map}
    context = CodemodContext(filename="case.py")
    code = TorchToOptax(context, **options).transform_module(cst.parse_module(source)).code
    compile(code, "case.py", "exec")
    again = TorchToOptax(CodemodContext(), **options).transform_module(cst.parse_module(code)).code
    assert again == code, "a second run changed the output"
    return Translation(source, code, records_of(context))


def execute(code: str, env: dict[str, Any]) -> dict[str, Any]:
    """Run module source in a fresh namespace seeded with ``env``; return the namespace."""
    namespace: dict[str, Any] = {"__name__": "case", **env}
    exec(compile(code, "case.py", "exec"), namespace)  # noqa: S102 - test-only, our own cases
    return namespace


def measure(
    source: str,
    *,
    exact: bool = False,
    env: dict[str, Any] | None = None,
    problem: Callable[[], Problem] = linear_problem,
    name: str = "opt",
    semantic_map: tuple[str, ...] = (),
) -> tuple[float, Translation]:
    """rel between torch running ``source`` and optax running its translation."""
    env = env or {}
    translation = translate(source, exact=exact, semantic_map=semantic_map)
    assert not translation.escapes, [r.reason for r in translation.escapes]
    with float64():
        prob = problem()
        torch_traj = run_torch(prob, lambda plist: execute(source, {**env, "params": plist})[name])
        jax_params = [jnp.asarray(v) for v in prob.init.values()]
        tx = execute(translation.code, {**env, "params": jax_params})[name]
        optax_traj, _ = run_optax(prob, tx)
        return rel_error(prob, torch_traj, optax_traj), translation


# ----------------------------------------------------------------------------- schedules


SCHEDULE_STEPS = 100


def training_module(
    optimizer: str,
    scheduler: str | None = None,
    clip: str | None = None,
    prelude: str = "",
    per_epoch: bool = False,
) -> str:
    """PyTorch source: the optimizer, its scheduler and a training loop that never runs
    (``batches`` is empty when executed), so that the codemod sees how things are stepped."""
    lines = ["import torch", "import torch.nn.utils", prelude, f"opt = {optimizer}"]
    if scheduler:
        lines.append(f"sched = {scheduler}")
    indent = "        " if per_epoch else "    "
    if per_epoch:
        lines.append("for epoch in batches:")
    lines.append(indent[4:] + "for batch in batches:")
    lines += [f"{indent}opt.zero_grad()", f"{indent}loss = batch.sum()", f"{indent}loss.backward()"]
    if clip:
        lines.append(f"{indent}{clip}")
    lines.append(f"{indent}opt.step()")
    if scheduler:
        metric = "loss" if "ReduceLROnPlateau" in scheduler else ""  # step(metrics) in torch
        lines.append(("    " if per_epoch else indent) + f"sched.step({metric})")
    return "\n".join(line for line in lines if line) + "\n"


def torch_lrs(
    source: str, env: dict[str, Any], steps: int = SCHEDULE_STEPS
) -> dict[str, list[float]]:
    """lr (and momentum/beta1, when cycled) torch uses at each of ``steps`` updates."""
    with float64():
        params = [torch.zeros(3, requires_grad=True)]
        namespace = execute(source, {**env, "params": params, "batches": []})
        opt, sched = namespace["opt"], namespace["sched"]
        values: dict[str, list[float]] = {"lr": [], "momentum": []}
        for _ in range(steps):
            group = opt.param_groups[0]
            values["lr"].append(float(group["lr"]))
            if "betas" in group:
                values["momentum"].append(float(group["betas"][0]))
            elif "momentum" in group:
                values["momentum"].append(float(group["momentum"]))
            opt.step()
            sched.step()
        return values


def optax_lrs(code: str, env: dict[str, Any], steps: int = SCHEDULE_STEPS) -> list[float]:
    """``sched(count)`` as optax evaluates it: jitted, on its int32 update count."""
    with float64():
        namespace = execute(code, {**env, "params": [jnp.zeros(3)], "batches": []})
        schedule = jax.jit(namespace["sched"])
        return [float(schedule(jnp.asarray(k, jnp.int32))) for k in range(steps)]


def optax_hyperparams(
    code: str, env: dict[str, Any], name: str, steps: int = SCHEDULE_STEPS
) -> list[float]:
    """A hyper-parameter of an ``inject_hyperparams`` optimizer at each of ``steps`` updates."""
    with float64():
        namespace = execute(code, {**env, "params": [jnp.zeros(3)], "batches": []})
        tx = namespace["opt"]
        params = jnp.zeros(3)
        state = tx.init(params)
        update = jax.jit(tx.update)
        values = []
        for _ in range(steps):
            _, state = update(jnp.ones(3), state, params)
            values.append(float(_find_hyperparams(state)[name]))
        return values


def _find_hyperparams(state: Any) -> dict[str, Any]:
    if hasattr(state, "hyperparams"):
        return state.hyperparams  # type: ignore[no-any-return]
    for child in state if isinstance(state, tuple) else ():
        found = _find_hyperparams(child)
        if found:
            return found
    return {}


def relative(a: list[float], b: list[float]) -> float:
    scale = max(abs(x) for x in a) or 1.0
    return max(abs(x - y) for x, y in zip(a, b, strict=True)) / scale


def measure_training(
    source: str,
    *,
    before_step: Callable[[list[torch.Tensor]], None] | None = None,
    exact: bool = False,
    env: dict[str, Any] | None = None,
    problem: Callable[[], Problem] = linear_problem,
    steps_per_epoch: int | None = None,
    steps_per_epoch_option: str | None = None,
) -> tuple[float, Translation]:
    """rel between torch (optimizer + scheduler + ``before_step``, e.g. clipping) and the
    translated optax optimizer, over ``STEPS`` updates. Torch's scheduler steps every
    ``steps_per_epoch`` updates; the codemod gets ``--steps-per-epoch`` as
    ``steps_per_epoch_option`` (default: that number)."""
    env = dict(env or {})
    options: dict[str, Any] = {"exact": exact}
    if steps_per_epoch is not None:
        options["steps_per_epoch"] = steps_per_epoch_option or str(steps_per_epoch)
    context = CodemodContext(filename="case.py")
    code = TorchToOptax(context, **options).transform_module(cst.parse_module(source)).code
    compile(code, "case.py", "exec")
    translation = Translation(source, code, records_of(context))
    with float64():
        prob = problem()
        state: dict[str, Any] = {}

        def make_opt(plist: list[torch.Tensor]) -> Any:
            state.update(execute(source, {**env, "params": plist, "batches": []}))
            return state["opt"]

        def make_sched(opt: Any) -> Any:
            sched = state.get("sched")
            if sched is None or steps_per_epoch is None:
                return sched
            return _EveryN(sched, steps_per_epoch)

        torch_traj = run_torch(prob, make_opt, make_sched=make_sched, before_step=before_step)
        jax_params = [jnp.asarray(v) for v in prob.init.values()]
        tx = execute(code, {**env, "params": jax_params, "batches": []})["opt"]
        optax_traj, _ = run_optax(prob, tx)
        return rel_error(prob, torch_traj, optax_traj), translation


class _EveryN:
    """Steps a torch scheduler once every ``n`` optimizer steps (per-epoch stepping)."""

    def __init__(self, sched: Any, n: int) -> None:
        self.sched, self.n, self.count = sched, n, 0

    def step(self) -> None:
        self.count += 1
        if self.count % self.n == 0:
            self.sched.step()


# ----------------------------------------------------------------------------- packages


def translate_package(
    root: Path, files: dict[str, str], exact: bool = False
) -> dict[str, Translation]:
    """``files`` written as the package ``root/original/<pkg>`` and each translated by
    ``optimizer.TorchToOptax`` with its real path (the repository index sees the package), as
    libcst's runner does one file per call; the outputs are written to ``root/translated``,
    where a second run must change nothing. Keys are the files' names under the package."""
    original, translated = root / "original", root / "translated"
    for name, text in files.items():
        (original / name).parent.mkdir(parents=True, exist_ok=True)
        (original / name).write_text(text, encoding="utf-8")
    results: dict[str, Translation] = {}
    for name in files:
        path = original / name
        context = CodemodContext(filename=str(path))
        command = TorchToOptax(context, exact=exact)
        code = command.transform_module(cst.parse_module(files[name])).code
        compile(code, name, "exec")
        results[name] = Translation(files[name], code, records_of(context))
    for name, result in results.items():
        (translated / name).parent.mkdir(parents=True, exist_ok=True)
        (translated / name).write_text(result.code, encoding="utf-8")
    for name, result in results.items():
        path = translated / name
        again = TorchToOptax(CodemodContext(filename=str(path)), exact=exact)
        code = again.transform_module(cst.parse_module(result.code)).code
        assert code == result.code, f"a second run changed {name}"
    return results


# ----------------------------------------------------------------------------- own loops


def run_torch_loop(
    problem: Problem, source: str, env: dict[str, Any], steps: int = STEPS
) -> list[dict[str, np.ndarray]]:
    """Parameter trajectory of ``source`` running its own training loop in torch: ``batches``
    yields ``steps`` closures (``loss = batch()``), and the parameters are recorded after each
    iteration of the loop over them (the source's own counters and conditions decide)."""
    params = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in problem.init.items()
    }
    out: list[dict[str, np.ndarray]] = []

    def snapshot() -> None:
        out.append({n: p.detach().numpy().copy() for n, p in params.items()})

    def batches() -> Iterator[Callable[[], torch.Tensor]]:
        for k in range(steps):
            if k:
                snapshot()
            yield lambda k=k: problem.torch_loss(params, k)
        snapshot()

    execute(source, {**env, "params": list(params.values()), "batches": batches()})
    assert len(out) == steps, f"the loop ran {len(out)} times, not {steps}"
    return out


def measure_loop(
    source: str, *, exact: bool = False, env: dict[str, Any] | None = None
) -> tuple[float, Translation]:
    """rel between torch running ``source``'s own loop (one ``opt.step()`` per batch, its
    scheduler stepped where the source says) and optax running the translated ``opt`` (its
    loop, over an empty ``batches``, does not run)."""
    env = dict(env or {})
    translation = translate(source, exact=exact)
    apis = {r.api for r in translation.conversions}
    assert not any("lr_scheduler" in api for api in {r.api for r in translation.escapes}), [
        r.reason for r in translation.escapes
    ]
    assert any("lr_scheduler" in api for api in apis), translation.code
    with float64():
        prob = linear_problem()
        torch_traj = run_torch_loop(prob, source, env)
        jax_params = [jnp.asarray(v) for v in prob.init.values()]
        tx = execute(translation.code, {**env, "params": jax_params, "batches": []})["opt"]
        optax_traj, _ = run_optax(prob, tx)
        return rel_error(prob, torch_traj, optax_traj), translation
