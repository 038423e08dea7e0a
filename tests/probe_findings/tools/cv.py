import sys, libcst as cst
from libcst.codemod import CodemodContext
from ml_switcheroo.codemods.optimizer import TorchToOptax
try:
    from ml_switcheroo.codemods.optimizer import TorchToNNX
except ImportError:
    TorchToNNX = None
args = sys.argv[1:]
nnx = "--nnx" in args
spe = None
for a in args:
    if a.startswith("--spe="): spe = a[6:]
files = [a for a in args if not a.startswith("--")]
for f in files:
    src = open(f).read()
    opts = {}
    if spe: opts["steps_per_epoch"] = spe
    cls = TorchToNNX if nnx else TorchToOptax
    try:
        out = cls(CodemodContext(filename=f), **opts).transform_module(cst.parse_module(src)).code
    except Exception as e:
        print("CRASH", f, type(e).__name__, e); continue
    try:
        compile(out, f, "exec")
    except SyntaxError as e:
        print("UNPARSEABLE", e)
    print("=====", f, "nnx" if nnx else "optax")
    skip = False
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("# ml_switcheroo: |") or s.startswith("# ml_switcheroo: suggestion"):
            continue
        if "ml_switcheroo: reason" in s and "torch computes gradients into .grad" in s:
            s = line = line[: line.index("reason")] + "reason: <train step>"
        print(line)
