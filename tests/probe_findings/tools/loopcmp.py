"""A source with its own loop over `batches` (loss = batch()), params w (5x3), b (3) in `params`
and `model = Model(params)`: torch runs it (60 updates); optax runs the translated `opt`.
usage: python loopcmp.py FILE"""
import sys, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, "/work/wt/s33probe")
import jax.numpy as jnp
from tests.differential.harness import translate, execute, float64, linear_problem, run_torch_loop, run_optax, rel_error
from tests.differential.test_param_group_masks import Model
for f in sys.argv[1:]:
    src = open(f).read()
    t = translate(src)
    escs = [e for e in t.escapes if e.api != "torch.optim.Optimizer.step"]
    print("=====", f, "escapes:", [(e.api, e.reason[:120]) for e in escs])
    print("\n".join("   | " + l for l in t.code.splitlines() if "opt =" in l or "clip" in l))
    with float64():
        prob = linear_problem()
        tt = run_torch_loop(prob, src, {"Model": Model})
        tx = execute(t.code, {"Model": Model, "params": [jnp.asarray(v) for v in prob.init.values()], "batches": []})["opt"]
        ot, _ = run_optax(prob, tx)
        print(f"   rel = {rel_error(prob, tt, ot):.3e}")
