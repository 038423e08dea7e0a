import sys, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, "/work/wt/s33probe")
from tests.differential.test_warmup_then_main import _pair
from tests.differential.harness import measure_loop, translate
LR = "torch.optim.lr_scheduler."
cases = {
 "warm longer than switch, exponential": _pair("LinearLR(opt, start_factor=0.1, total_iters=10)", "ExponentialLR(opt, gamma=0.9)"),
 "warm longer than switch, cosine": _pair("LinearLR(opt, start_factor=0.1, total_iters=10)", "CosineAnnealingLR(opt, T_max=40)"),
 "warm longer than switch, step": _pair("LinearLR(opt, start_factor=0.1, total_iters=10)", "StepLR(opt, step_size=3, gamma=0.5)"),
 "<= test": _pair("LinearLR(opt, start_factor=0.1, total_iters=5)", "ExponentialLR(opt, gamma=0.9)", test="step <= 5"),
 "warm exponential then constant": _pair("ExponentialLR(opt, gamma=1.2)", "ConstantLR(opt, factor=0.5, total_iters=3)"),
 "warm constant longer": _pair("ConstantLR(opt, factor=0.5, total_iters=10)", "ExponentialLR(opt, gamma=0.9)"),
 "main multistep": _pair("LinearLR(opt, start_factor=0.1, total_iters=5)", "MultiStepLR(opt, milestones=[3, 8], gamma=0.5)"),
 "main linear": _pair("LinearLR(opt, start_factor=0.1, total_iters=5)", "LinearLR(opt, start_factor=1.0, end_factor=0.1, total_iters=20)"),
 "main lambda": _pair("LinearLR(opt, start_factor=0.1, total_iters=5)", "LambdaLR(opt, lambda e: 0.9 ** e)"),
 "main onecycle": _pair("LinearLR(opt, start_factor=0.1, total_iters=5)", "OneCycleLR(opt, max_lr=0.5, total_steps=80)"),
 "main poly": _pair("LinearLR(opt, start_factor=0.1, total_iters=8)", "PolynomialLR(opt, total_iters=30, power=1.0)"),
 "warm step": _pair("StepLR(opt, step_size=2, gamma=2.0)", "ExponentialLR(opt, gamma=0.9)"),
 "main cosine restarts": _pair("LinearLR(opt, start_factor=0.1, total_iters=5)", "CosineAnnealingWarmRestarts(opt, T_0=10)"),
 "main cyclic": _pair("LinearLR(opt, start_factor=0.1, total_iters=5)", "CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=5)"),
}
for name, src in cases.items():
    t = translate(src)
    escs = [e for e in t.escapes if "lr_scheduler" in e.api]
    if escs:
        print("ESC ", name, "::", escs[0].reason[:150]); continue
    try:
        rel, t = measure_loop(src, exact=True)
        print("OK  " if rel < 1e-9 else "DIFF", f"rel={rel:.3e}", name)
        if rel >= 1e-9:
            print("     ", [l for l in t.code.splitlines() if "join" in l or "warm =" in l or "main =" in l])
    except Exception as e:
        print("RUNERR", name, type(e).__name__, str(e)[:200])
