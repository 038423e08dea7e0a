"""Convert every file of CASE/pkg with TorchToNNX (as libcst's runner would: real filename),
write the output to CASE_out/pkg, show escapes/diffs, then run pkg.main.main(model, loader, EPOCHS)
on torch and on the NNX copy (float64) and compare losses + final params.
usage: python pkgrun.py /tmp/s30probe/case [--show] [--optax]"""
import sys, os, shutil, warnings, difflib, importlib
warnings.filterwarnings("ignore")
sys.path.insert(0, "/work/wt/s33probe")
from pathlib import Path
import libcst as cst
from libcst.codemod import CodemodContext
from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from tests.differential.nnx_loops import (torch_net, nnx_net, torch_batches, nnx_batches, torch_weights,
    nnx_weights, LoopRun, worst_rel, EPOCHS)
from tests.differential.harness import float64
from tests.support import importable

case = Path(sys.argv[1]).resolve()
show = "--show" in sys.argv
cmd = TorchToOptax if "--optax" in sys.argv else TorchToNNX
out_root = Path(str(case) + "_out")
if out_root.exists(): shutil.rmtree(out_root)
shutil.copytree(case, out_root)
for path in sorted(case.rglob("*.py")):
    src = path.read_text()
    out = cmd(CodemodContext(filename=str(path))).transform_module(cst.parse_module(src)).code
    rel = path.relative_to(case)
    (out_root / rel).write_text(out)
    esc = [l.strip() for l in out.splitlines() if "ESCAPE-BEGIN" in l]
    reasons = [l.strip()[:220] for l in out.splitlines() if "ml_switcheroo: reason" in l]
    print("=====", rel, "changed" if out != src else "unchanged", "escapes:", esc)
    for r in reasons: print("   ", r)
    if show and out != src:
        for l in out.splitlines():
            if not l.strip().startswith("# ml_switcheroo: |"): print("   |", l)
if "--optax" in sys.argv or "--norun" in sys.argv: sys.exit()
def run(root, model, data):
    with importable(root, "pkg"):
        main = importlib.import_module("pkg.main").main
        return [float(v) for v in main(model, data, EPOCHS)]
with float64():
    m = torch_net(); tl = run(case, m, torch_batches()); tr = LoopRun(tl, torch_weights(m))
    n = nnx_net()
    try:
        nl = run(out_root, n, nnx_batches())
    except Exception as e:
        print("nnx run error", type(e).__name__, str(e)[:300]); sys.exit()
    nr = LoopRun(nl, nnx_weights(n))
print(f"losses {len(tl)} vs {len(nl)}")
if len(tl) == len(nl): print(f"worst rel = {worst_rel(tr, nr):.3e}")
