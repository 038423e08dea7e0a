"""Property-based tests: generated modules mixing optimizer code with code that only looks like it.

Invariants, for every generated module: no exception escapes; the output parses; a second run
changes nothing; every line marked `# keep` (statements that are not wired constructs) is in the
output byte for byte; every comment of the input is still in the output.
"""

from __future__ import annotations

import io
import tokenize
from collections import Counter

import libcst as cst
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from libcst.codemod import CodemodContext

from ml_switcheroo.codemods.optimizer import TorchToOptax

IMPORTS = [
    "import torch",
    "import torch.optim as optim",
    "from torch import optim",
    "import torch.optim as O",
    "from torch.optim import Adam, SGD",
    "from torch.optim import AdamW as W",
    "from torch.optim.lr_scheduler import StepLR",
    "from torch.optim import lr_scheduler",
    "import torch.nn as nn",
    "from torch.nn.utils import clip_grad_norm_",
]
OPTIMIZERS = [
    "torch.optim.Adam(model.parameters(), lr=0.01)",
    "torch.optim.SGD(model.parameters(), 0.1, momentum=0.9)",
    "torch.optim.SGD(params=model.parameters(), lr=lr, dampening=0.5, momentum=0.9)",
    "optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)",
    "O.RMSprop(model.parameters(), lr=0.01, momentum=0.9)",
    "Adam(model.parameters(), amsgrad=True)",
    "SGD([{'params': a, 'lr': 0.1}, {'params': b}], lr=0.01)",
    "W(model.parameters(), **cfg)",
    "torch.optim.NAdam(model.parameters(), lr=2e-3, momentum_decay=float('inf'))",
    "torch.optim.Adagrad(filter(lambda p: p.requires_grad, model.parameters()), eps=0.0)",
    "torch.optim.Adam(\n        model.parameters(),  # all of them\n        lr=1e-3,\n    )",
]
SCHEDULERS = [
    "StepLR({opt}, step_size=10)",
    "lr_scheduler.ExponentialLR({opt}, gamma=0.9)",
    "torch.optim.lr_scheduler.OneCycleLR({opt}, max_lr=0.1, total_steps=100)",
    "torch.optim.lr_scheduler.CosineAnnealingLR({opt}, T_max=50)",
]
STEP_PARTS = [
    "{opt}.zero_grad()",
    "{opt}.zero_grad(set_to_none=True)  # clear",
    "loss.backward()",
    "clip_grad_norm_(model.parameters(), 1.0)",
    "norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)",
    "{opt}.step()",
    "{sched}.step()",
    "print({sched}.get_last_lr())",
]
UNRELATED = [
    "env.step(action)  # keep",
    "self_like.step()  # keep",
    "model.zero_grad()  # keep",
    "ema.step()  # keep",
    'note = "torch.optim.Adam(model.parameters())"  # keep',
    "x = [i * 2 for i in range(3)]  # keep",
    "# a comment of its own",
]
CLASSES = [
    "class Adam:  # keep\n    def step(self):  # keep\n        return 1  # keep\n",
    "def decorator(f):  # keep\n    return f  # keep\n",
    "@decorator\ndef helper(opt):  # keep\n    return opt  # keep\n",
]


@st.composite
def modules(draw: st.DrawFn) -> str:
    lines = ['"""Generated."""', "import torch"]
    lines += draw(st.lists(st.sampled_from(IMPORTS[1:]), max_size=5, unique=True))
    lines += draw(st.lists(st.sampled_from(CLASSES), max_size=2, unique=True))
    body: list[str] = []
    optimizers = []
    for index in range(draw(st.integers(1, 2))):
        name = f"opt{index}"
        optimizers.append(name)
        body.append(f"{name} = {draw(st.sampled_from(OPTIMIZERS))}")
    sched = "sched"
    if draw(st.booleans()):
        body.append(f"{sched} = " + draw(st.sampled_from(SCHEDULERS)).format(opt=optimizers[0]))
    body += draw(st.lists(st.sampled_from(UNRELATED), max_size=3))
    steps = draw(st.lists(st.sampled_from(STEP_PARTS), min_size=1, max_size=6))
    loop = ["for x in data:  # keep", "    loss = model(x)"]
    loop += [
        "    " + part.format(opt=draw(st.sampled_from(optimizers)), sched=sched) for part in steps
    ]
    loop += ["    " + line for line in draw(st.lists(st.sampled_from(UNRELATED), max_size=2))]
    nested = draw(st.booleans())
    if nested:
        lines.append("def train(model, data, lr, cfg, a, b, env, self_like, ema):  # keep")
        lines += [
            "    " + line for block in (body, loop) for text in block for line in text.split("\n")
        ]
    else:
        lines += body + loop
    return "\n".join(lines) + "\n"


def convert(code: str) -> str:
    module = cst.parse_module(code)
    return TorchToOptax(CodemodContext(filename="generated.py")).transform_module(module).code


def comments(code: str) -> Counter[str]:
    found: Counter[str] = Counter()
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.COMMENT:
            found[token.string] += 1
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(modules())
def test_generated_modules_keep_every_invariant(code: str) -> None:
    compile(code, "generated.py", "exec")  # the generator itself makes valid Python
    once = convert(code)
    compile(once, "generated.py", "exec")
    assert convert(once) == once, "a second run changed the output"
    kept = [line for line in code.splitlines() if line.rstrip().endswith("# keep")]
    output_lines = once.splitlines()
    for line in kept:
        assert line in output_lines, f"changed: {line!r}"
    assert not comments(code) - comments(once), "a comment was lost"
