"""Run a probe snippet in torch (params + batches of Batch) and its optax translation
(the translated `opt` driven by the same loss), compare parameter trajectories (float64)."""
import sys, numpy as np, torch, jax, jax.numpy as jnp, optax, libcst as cst
from libcst.codemod import CodemodContext
from ml_switcheroo.codemods.optimizer import TorchToOptax
from torch.optim.optimizer import register_optimizer_step_post_hook
jax.config.update("jax_enable_x64", True)
torch.set_default_dtype(torch.float64)
N = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 30
TARGETS = [np.sin(np.arange(3) + k) for k in range(N)]

class Batch:
    def __init__(self, params, k): self.params, self.k = params, k
    def sum(self):
        t = torch.tensor(TARGETS[self.k])
        return sum(((p - t) ** 2).sum() + 0.1 * torch.cos(p).sum() for p in self.params)
    mean = sum
    def __iter__(self): return iter([self])

def run(fname, extra_env=None):
    src = open(fname).read()
    params = [torch.tensor([0.5, -0.3, 0.2], requires_grad=True)]
    traj = []
    h = register_optimizer_step_post_hook(lambda o, a, k: traj.append(params[0].detach().numpy().copy()))
    env = {"__name__": "case", "params": params, "batches": [Batch(params, k) for k in range(N)], **(extra_env or {})}
    try:
        exec(compile(src, "case", "exec"), env)
    finally:
        h.remove()
    out = TorchToOptax(CodemodContext(filename="case.py")).transform_module(cst.parse_module(src)).code
    ns = {"__name__": "case", "params": [jnp.zeros(3)], "batches": [], **(extra_env or {})}
    exec(compile(out, "case", "exec"), ns)
    tx = ns["opt"]
    p = jnp.asarray([0.5, -0.3, 0.2]); state = tx.init(p)
    def loss(p, k):
        t = jnp.asarray(TARGETS[k]); return ((p - t) ** 2).sum() + 0.1 * jnp.cos(p).sum()
    jtraj = []
    for k in range(len(traj)):
        g = jax.grad(loss)(p, k)
        u, state = tx.update(g, state, p); p = optax.apply_updates(p, u); jtraj.append(np.asarray(p))
    worst = max(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-12) for a, b in zip(traj, jtraj))
    print(f"{fname}: {len(traj)} updates, rel max |p_torch - p_optax| / |p_torch| = {worst:.3e}")
    print("  torch final", traj[-1], " optax final", jtraj[-1])
    return worst

if __name__ == "__main__":
    run(sys.argv[1])
