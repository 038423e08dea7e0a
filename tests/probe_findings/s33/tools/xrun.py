"""optax target, several files: CASE/main.py is the script (globals params, batches, Model as in
s32's optloop.py: parameters() returns a generator); every other .py under CASE (packages or
script-style siblings) is importable from CASE. Every file is translated with TorchToOptax by its
real path (the repository index sees them all), outputs written to /tmp/s33probe/out/<case>;
torch runs the original main.py (CASE on sys.path), optax runs the translated main.py's `opt`
(or --name=) with run_optax (one update per batch, 60 updates), float64.
usage: python xrun.py CASE [--show] [--exact] [--name=opt] [--steps=N]"""
import sys, os, shutil, warnings
warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "../../../.."))
sys.path.insert(0, ROOT)
from pathlib import Path
import libcst as cst
from libcst.codemod import CodemodContext
import jax.numpy as jnp
from ml_switcheroo.codemods.optimizer import TorchToOptax
from tests.differential.harness import execute, float64, linear_problem, run_torch_loop, run_optax, rel_error

class Model:
    def __init__(self, tensors):
        self.tensors = tensors
    def named_parameters(self):
        return iter(list(zip(["w", "b"], self.tensors)))
    def parameters(self):
        return iter(list(self.tensors))

def mods_forget(root):
    for n, m in list(sys.modules.items()):
        f = getattr(m, "__file__", None) or ""
        if f.startswith(str(root)):
            del sys.modules[n]

name = "opt"; exact = "--exact" in sys.argv; steps = 60
for a in sys.argv:
    if a.startswith("--name="): name = a[7:]
    if a.startswith("--steps="): steps = int(a[8:])
case = Path([a for a in sys.argv[1:] if not a.startswith("--")][0]).resolve()
out = Path("/tmp/s33probe/out") / case.name
if out.exists(): shutil.rmtree(out)
shutil.copytree(case, out)
for path in sorted(case.rglob("*.py")):
    src = path.read_text()
    code = TorchToOptax(CodemodContext(filename=str(path)), exact=exact).transform_module(cst.parse_module(src)).code
    (out / path.relative_to(case)).write_text(code)
    reasons = [l.strip()[:260] for l in code.splitlines() if "ml_switcheroo: reason" in l or "ESCAPE-BEGIN" in l]
    print("=====", path.relative_to(case), "changed" if code != src else "unchanged")
    for r in reasons: print("    ", r)
    if "--show" in sys.argv and code != src:
        for l in code.splitlines():
            if not l.strip().startswith("# ml_switcheroo: |"): print("   |", l)
with float64():
    prob = linear_problem(steps=steps)
    src = (case / "main.py").read_text()
    sys.path.insert(0, str(case))
    try:
        tt = run_torch_loop(prob, src, {"Model": Model}, steps=steps)
    except Exception as e:
        print("torch error", type(e).__name__, e); sys.exit()
    finally:
        sys.path.remove(str(case)); mods_forget(case)
    sys.path.insert(0, str(out))
    try:
        ns = execute((out / "main.py").read_text(), {"Model": Model, "params": [jnp.asarray(v) for v in prob.init.values()], "batches": []})
        ot, _ = run_optax(prob, ns[name], steps=steps)
    except Exception as e:
        print("optax error", type(e).__name__, str(e)[:400]); sys.exit()
    finally:
        sys.path.remove(str(out)); mods_forget(out)
    print(f"rel = {rel_error(prob, tt, ot):.3e}")
