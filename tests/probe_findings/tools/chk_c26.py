"""torch: clip(g1) + g2 (clip between the two backward passes); translation: the clip is at the
head of opt's chain, so it clips g1 + g2 (the grads of both losses, which torch sums)."""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__))); sys.path.insert(0, "tests/probe_findings")
from trajcmp import *
src = open(sys.argv[1]).read()
N = 30
params = [torch.tensor([0.5, -0.3, 0.2], requires_grad=True)]
class B:
    def __init__(s, k): s.k = k
    def sum(s):
        t = torch.tensor(TARGETS[s.k]); return ((params[0] - t) ** 2).sum()
    def mean(s):
        return 0.1 * torch.cos(params[0]).sum()
traj = []
h = register_optimizer_step_post_hook(lambda o, a, k: traj.append(params[0].detach().numpy().copy()))
exec(compile(src, "case", "exec"), {"params": params, "batches": [B(k) for k in range(N)]})
h.remove()
out = TorchToOptax(CodemodContext(filename="case.py")).transform_module(cst.parse_module(src)).code
ns = {"params": [jnp.zeros(3)], "batches": []}; exec(out, ns); tx = ns["opt"]
def total(p, k):
    return ((p - jnp.asarray(TARGETS[k])) ** 2).sum() + 0.1 * jnp.cos(p).sum()
p = jnp.asarray([0.5, -0.3, 0.2]); st = tx.init(p); jt = []
for k in range(N):
    g = jax.grad(total)(p, k); u, st = tx.update(g, st, p); p = optax.apply_updates(p, u); jt.append(np.asarray(p))
print("worst rel", max(np.max(np.abs(a - b)) / np.max(np.abs(a)) for a, b in zip(traj, jt)))
print("torch final", traj[-1], "optax final", jt[-1])
