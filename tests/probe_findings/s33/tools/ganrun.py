"""NNX target, GAN loops: tests/differential/nnx_gan_loops (generator + discriminator MLPs,
optional BatchNorm in each: --norm (D), --gnorm (G)). Script globals: make_generator(),
make_discriminator(), loader of (z, real, valid, fake), g_losses, d_losses, EPOCHS, N_CRITIC.
usage: python tests/probe_findings/s33/tools/ganrun.py FILE... [--norm] [--gnorm] [--show]"""
import sys, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, "/work/wt/s33probe")
from tests.differential.nnx_gan_loops import run_nnx_gan, run_torch_gan, worst_gan_rel
from tests.differential.nnx_loops import translate_nnx

norm = "--norm" in sys.argv
gnorm = "--gnorm" in sys.argv
for f in [a for a in sys.argv[1:] if not a.startswith("--")]:
    src = open(f).read()
    out = translate_nnx(src)
    print("=====", f, "escapes:", [l.strip() for l in out.splitlines() if "ESCAPE-BEGIN" in l])
    for l in out.splitlines():
        if "ml_switcheroo: reason" in l: print("   ", l.strip()[:220])
    if "--show" in sys.argv: print(out)
    try:
        t = run_torch_gan(src, norm, g_norm=gnorm)
    except Exception as e:
        print("  torch error", type(e).__name__, e); continue
    try:
        n = run_nnx_gan(out, norm, g_norm=gnorm)
    except Exception as e:
        print("  nnx error", type(e).__name__, str(e)[:300]); continue
    print(f"  worst rel = {worst_gan_rel(t, n):.3e}")
