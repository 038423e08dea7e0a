"""Compare per-update lr: torch (global pre-step hook records lr) vs translated sched(count)."""
import sys, torch, jax, jax.numpy as jnp, libcst as cst
from libcst.codemod import CodemodContext
from ml_switcheroo.codemods.optimizer import TorchToOptax
from torch.optim.optimizer import register_optimizer_step_pre_hook
jax.config.update("jax_enable_x64", True)
torch.set_default_dtype(torch.float64)

def torch_lrs(src, env):
    lrs = []
    h = register_optimizer_step_pre_hook(lambda opt, a, k: lrs.append(opt.param_groups[0]["lr"]))
    try:
        ns = {"__name__": "case", **env}
        exec(compile(src, "case", "exec"), ns)
    finally:
        h.remove()
    return lrs, ns

def translated(src, **opts):
    return TorchToOptax(CodemodContext(filename="case.py"), **opts).transform_module(cst.parse_module(src)).code

class Batch:
    """A batch whose .sum() is a loss over the global params."""
    def __init__(self, params, k): self.params, self.k = params, k
    def sum(self): return sum(((p - self.k) ** 2).sum() for p in self.params)
    mean = sum
