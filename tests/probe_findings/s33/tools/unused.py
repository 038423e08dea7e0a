"""optax target: a parameter the loss does not use (torch: its .grad stays None, so the optimizer
skips it: no weight decay, no momentum). params = [w (5x3), b (3), extra (4)]; the loss uses w and
b (linear_problem); `extra` is never in the graph. The translated `opt` is applied to all three
with jax.grad (extra's gradient is 0, as JAX always gives). float64, 60 updates.
usage: python unused.py FILE [--zero-none-false]"""
import sys, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, "/work/wt/s33probe")
import numpy as np, jax, jax.numpy as jnp, optax, torch
from tests.differential.harness import translate, execute, float64, linear_problem
class Model:
    def __init__(self, t): self.t = t
    def parameters(self): return iter(list(self.t))
    def named_parameters(self): return iter(list(zip(["w", "b", "extra"], self.t)))
f = sys.argv[1]; src = open(f).read(); t = translate(src)
print([(e.api, e.reason[:120]) for e in t.escapes if e.api != "torch.optim.Optimizer.step"])
print("\n".join("   | " + l for l in t.code.splitlines() if " = optax" in l))
with float64():
    prob = linear_problem()
    init = {**prob.init, "extra": np.linspace(-1, 1, 4)}
    tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in init.items()}
    def batches():
        for k in range(60):
            yield lambda k=k: prob.torch_loss({"w": tp["w"], "b": tp["b"]}, k)
    execute(src, {"Model": Model, "params": list(tp.values()), "batches": batches()})
    ns = execute(t.code, {"Model": Model, "params": [], "batches": []})
    tx = ns["opt"]; p = {k: jnp.asarray(v) for k, v in init.items()}; st = tx.init(p)
    for k in range(60):
        g = jax.grad(lambda q: prob.jax_loss({"w": q["w"], "b": q["b"]}, k))(p)
        u, st = tx.update(g, st, p); p = optax.apply_updates(p, u)
    for n in init:
        a = tp[n].detach().numpy(); b = np.asarray(p[n])
        print(f"   {n}: rel = {np.max(np.abs(a - b)) / np.max(np.abs(a)):.3e}")
