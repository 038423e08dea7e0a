"""Four forward-pass shapes of fresh real code (issue 13, s39 held-out item 4; s40): the NNX step
renders them exactly (``targets/nnx/step_lines.py``):

* ``(v * c + a - e * c).backward()`` (ikostrikov's PPO), ``loss.mean().backward()`` (minimalRL's
  PPO): the expression bound to a fresh name in the loss function, returned;
* ``if (epoch + 1) % 1000 == 0: print(...)`` between the loss and the backward pass (NNLM):
  logging only, run after the gradient;
* ``if args.clip_vloss: v_loss = ... else: v_loss = ...`` (cleanrl): a Python branch on a value
  the loss function does not compute, kept in it;
* ``image = a.to(device); mask = b.to(device);`` on one line (ogigo): split into lines.

The torch script as written against the NNX codemod's own output on an NNX model with the same
weights, float64, 36 updates: every recorded loss and the final parameters. The trap twins
escape with their reason."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import run_nnx_loop, run_torch_loop, translate_nnx, worst_rel

HEAD = """\
import torch

model = make_model()
opt = torch.optim.Adam(model.parameters(), lr=0.01)
for epoch in range(EPOCHS):
    for i, (x, y) in enumerate(loader):
"""

# ikostrikov's PPO update: the backward pass of a sum spread over two lines
EXPRESSION = """\
        out = model(x)
        value_loss = ((out - y) ** 2).mean()
        action_loss = (out * out).mean()
        opt.zero_grad()
        (value_loss * 0.5 + action_loss -
         0.01 * out.mean()).backward()
        opt.step()
        losses.append(value_loss.item())
        losses.append(action_loss.item())
"""

# minimalRL's PPO: the loss a tensor of the batch, reduced at the backward pass
MEAN_OF_THE_LOSS = """\
        out = model(x)
        loss = (out - y) ** 2
        opt.zero_grad()
        loss.mean().backward()
        opt.step()
        losses.append(loss.mean().item())
"""

SUM_OF_THE_LOSS = MEAN_OF_THE_LOSS.replace("loss.mean().backward()", "loss.sum().backward()")

# NNLM: a print every few batches between the loss and the backward pass
LOGGED_UNDER_A_CONDITION = """\
        opt.zero_grad()
        output = model(x)
        loss = ((output - y) ** 2).mean()
        if (i + 1) % 4 == 0:
            print('Epoch:', '%04d' % (epoch + 1), 'cost =', '{:.6f}'.format(loss))
            history.append(loss.item())
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""

# cleanrl's PPO: branches on argparse flags in the forward pass
FLAG_BRANCHES = """\
        out = model(x)
        target = y
        if args.norm_target:
            target = (y - 0.5) * 2.0
        if args.clip_vloss:
            unclipped = (out - target) ** 2
            clipped = (out * 0.5 - target) ** 2
            v_loss = 0.5 * (unclipped + clipped).mean()
        elif args.l1:
            v_loss = ((out - target) ** 2).sum()
        else:
            v_loss = 0.5 * ((out - target) ** 2).mean()
        opt.zero_grad()
        v_loss.backward()
        opt.step()
        losses.append(v_loss.item())
"""

# ogigo: two assignments on one line before the forward pass, two after it
ONE_LINE_PAIRS = """\
        image = x * 1.0; mask = y * 1.0;
        output = model(image); scaled = output * 2.0
        loss = ((scaled - mask) ** 2).mean()
        loss.backward()
        opt.step()  # update weight
        opt.zero_grad()
        losses.append(loss.item())
"""


def _script(body: str) -> str:
    start = "history = []\nprev = 10.0\nfor epoch"
    return HEAD.replace("for epoch", start) + body + "losses.extend(history)\n"


def _renders_a_step(translated: str) -> bool:
    """A line of code (not of an escape's suggestion) computes a gradient."""
    return any(
        "nnx.value_and_grad(" in line and not line.strip().startswith("#")
        for line in translated.splitlines()
    )


def _runs(source: str, names: dict[str, Any] | None = None) -> tuple[str, float]:
    translated = translate_nnx(source)
    torch_run = run_torch_loop(source, names=names)
    return translated, worst_rel(torch_run, run_nnx_loop(source, translated, names=names))


# the backward pass and the step on one line: that line is kept whole (found by identity)
BACKWARD_AND_STEP_ON_ONE_LINE = """\
        opt.zero_grad()
        out = model(x); loss = ((out - y) ** 2).mean()
        loss.backward(); opt.step()
        losses.append(loss.item())
"""

# probe p40b F1: the forward pass and the backward pass on one line
FORWARD_AND_BACKWARD_ON_ONE_LINE = """\
        opt.zero_grad()
        out = model(x); loss = ((out - y) ** 2).mean(); loss.backward()
        opt.step()
        losses.append(loss.item())
"""

# probe p40b F2: a kept branch testing a number recorded after the previous step
TEST_ON_THE_PREVIOUS_LOSS = """\
        opt.zero_grad()
        out = model(x)
        if prev > 0.8:
            scale = 2.0
        else:
            scale = 0.5
        loss = ((out - y) ** 2).mean() * scale
        loss.backward()
        opt.step()
        prev = loss.item()
        losses.append(loss.item())
"""

# a reduction function of torch over the whole tensor (MorvanZhou's GAN): a scalar
TORCH_MEAN = """\
        out = model(x)
        loss = torch.mean((out - y) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""

# Shawn1993's text CNN: records before a branch on a flag and the model's call stay before the
# loss function, in torch's order (the branch makes them part of the step's region)
RECORDS_BEFORE_A_FLAG_BRANCH = """\
        feature, target = x, y
        history.append(feature.shape[0]), history.append(target.shape[0])  # batch sizes
        if args.cuda:
            feature, target = feature * 1.0, target * 1.0
        opt.zero_grad()
        logit = model(feature)
        loss = ((logit - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""

# nanoGPT-style micro steps: a one-line pair and the backward pass of an expression in the loop
MICRO_STEPS = """\
        pass
    for start in range(0, len(loader), 2):
        opt.zero_grad()
        for micro in range(2):
            x, y = loader[start + micro]; out = model(x)
            loss = ((out - y) ** 2).mean()
            (loss / 2).backward()
        opt.step()
        losses.append(loss.item())
"""

SHAPES = {
    "backward of an expression over two lines": EXPRESSION,
    "backward of loss.mean()": MEAN_OF_THE_LOSS,
    "backward of loss.sum()": SUM_OF_THE_LOSS,
    "logging under a condition before the backward": LOGGED_UNDER_A_CONDITION,
    "one-line pairs of assignments": ONE_LINE_PAIRS,
    "backward and step on one line": BACKWARD_AND_STEP_ON_ONE_LINE,
    "forward and backward on one line": FORWARD_AND_BACKWARD_ON_ONE_LINE,
    "a branch on the previous step's loss.item()": TEST_ON_THE_PREVIOUS_LOSS,
    "a branch on the previous step's loss": TEST_ON_THE_PREVIOUS_LOSS.replace(
        "prev = loss.item()", "prev = loss"
    ),
    "a torch.mean of the whole tensor": TORCH_MEAN,
    "micro steps with a one-line pair and an expression": MICRO_STEPS,
}


@pytest.mark.parametrize("body", SHAPES.values(), ids=SHAPES.keys())
def test_forward_shape_matches_torch(body: str) -> None:
    translated, rel = _runs(_script(body))
    assert BEGIN not in translated and "nnx.value_and_grad(" in translated, translated
    assert rel < EXACT, (rel, translated)


FLAGS = [
    SimpleNamespace(norm_target=True, clip_vloss=True, l1=False),
    SimpleNamespace(norm_target=False, clip_vloss=False, l1=True),
    SimpleNamespace(norm_target=True, clip_vloss=False, l1=False),
]


@pytest.mark.parametrize("args", FLAGS, ids=lambda a: str(vars(a)))
def test_branches_on_flags_in_the_loss_match_torch(args: SimpleNamespace) -> None:
    translated, rel = _runs(_script(FLAG_BRANCHES), {"args": args})
    assert BEGIN not in translated and "if args.clip_vloss:" in translated, translated
    assert rel < EXACT, (rel, translated)


@pytest.mark.parametrize("cuda", [True, False])
def test_records_before_a_flag_branch_stay_before_the_loss_function(cuda: bool) -> None:
    source = _script(RECORDS_BEFORE_A_FLAG_BRANCH)
    translated, rel = _runs(source, {"args": SimpleNamespace(cuda=cuda)})
    assert BEGIN not in translated and "nnx.value_and_grad(" in translated, translated
    assert translated.index("history.append(feature") < translated.index("def loss_fn"), translated
    assert rel < EXACT, (rel, translated)


def test_a_split_line_keeps_its_comment_as_written() -> None:
    body = ONE_LINE_PAIRS.replace("mask = y * 1.0;", "mask = y * 1.0;  # both")
    translated = translate_nnx(_script(body))
    assert "        image = x * 1.0\n        mask = y * 1.0;  # both\n" in translated, translated


def test_the_expression_is_bound_to_a_fresh_name() -> None:
    body = EXPRESSION.replace("out = model(x)", "loss = 3.0\n        out = model(x)")
    translated = translate_nnx(_script(body))
    assert "loss_1 = (value_loss * 0.5 + action_loss -" in translated, translated
    assert "return loss_1, (value_loss, action_loss)" in translated, translated


TRAPS = {
    "a logging call that changes what the loss reads": (
        """\
        out = model(x)
        part = ((out - y) ** 2).mean()
        if i % 2 == 0:
            history.append(part.item())
        loss = part * len(history)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
""",
        "uses a name the loss reads after it",
    ),
    "a condition calling another object before the backward": (
        LOGGED_UNDER_A_CONDITION.replace("history.append", "tracker.log"),
        "is not only logging",
    ),
    "backward of a reduction over a dimension (a name)": (
        """\
        out = model(x)
        sq = (out - y) ** 2
        rows = sq.mean(1, keepdim=True)
        loss = rows.sum(dim=0)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
""",
        "reduces over the dimensions given",
    ),
    "backward of a reduction over a dimension (an expression)": (
        """\
        out = model(x)
        sq = (out - y) ** 2
        loss = sq.mean(1, keepdim=True)
        loss.mean(0).backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.mean().item())
""",
        "reduces over the dimensions given",
    ),
    "a torch reduction function over a dimension": (
        TORCH_MEAN.replace("torch.mean((out - y) ** 2)", "torch.mean((out - y) ** 2, 0)"),
        "reduces over the dimensions given",
    ),
    "a with statement in the forward pass (cleanrl's approx_kl)": (
        """\
        out = model(x)
        ratio = out * 2.0
        with torch.no_grad():
            approx_kl = (ratio - 1).mean()
        if args.clip_vloss:
            v_loss = ((out - y) ** 2).mean()
        else:
            v_loss = ((out - y) ** 2).sum()
        loss = v_loss + ratio.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
""",
        "computed before the `with` statement",
    ),
    "a module move in the loop, the region's first line a pair": (
        """\
        pass
    model.double()
    for x, y in loader:
        image = x * 1.0; mask = y * 1.0
        out = model(image)
        loss = ((out - mask) ** 2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
""",
        "model.double()",
    ),
    "the forward pass, the backward pass and the step on one line": (
        """\
        opt.zero_grad()
        out = model(x); loss = ((out - y) ** 2).mean(); loss.backward(); opt.step()
        losses.append(loss.item())
""",
        "the backward pass shares its line with other statements",
    ),
    "a branch on the loss's value": (
        """\
        out = model(x)
        loss = ((out - y) ** 2).mean()
        if loss > 1:
            loss = loss * 2
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
""",
        "the test of `if loss > 1:` reads `loss`, which the loss function computes",
    ),
    "a branch test calling a function": (
        FLAG_BRANCHES.replace("if args.clip_vloss:", "if args.clip_vloss():"),
        "calls a function",
    ),
    "a name bound on one branch only, read after the step": (
        """\
        out = model(x)
        loss = ((out - y) ** 2).mean()
        if args.clip_vloss:
            loss = loss * 2
            kept = out.mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(kept.item())
""",
        "is bound only on some branches of `if args.clip_vloss:`",
    ),
    "a walrus in a logging line before the backward (main: rel 0.17)": (
        """\
        opt.zero_grad()
        out = model(x)
        loss = ((out - y) ** 2).mean()
        print((loss := loss * 2).item())
        loss.backward()
        opt.step()
        losses.append(loss.item())
""",
        "`(loss := loss * 2)` in the forward pass binds a name",
    ),
    "a walrus in a branch test": (
        """\
        opt.zero_grad()
        out = model(x)
        loss = ((out - y) ** 2).mean()
        if (doubled := args.clip_vloss):
            loss = loss * 2
        loss.backward()
        opt.step()
        losses.append(loss.item())
""",
        "`(doubled := args.clip_vloss)` in the forward pass binds a name",
    ),
    "a walrus in a one-line pair": (
        """\
        out = (h := model(x)); loss = ((h - y) ** 2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item() + h.sum().item())
""",
        "binds a name no assignment target names",
    ),
    "an augmented assignment to an alias in a one-line pair": (
        """\
        out = model(x); h = out; out *= 2
        loss = ((h - y) ** 2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
""",
        "changes `out` in place, which shares its memory",
    ),
    "backward(retain_graph=True) of an expression": (
        """\
        out = model(x)
        a = ((out - y) ** 2).mean()
        b = (out * out).mean()
        (a + b).backward(retain_graph=True)
        opt.step()
        opt.zero_grad()
        losses.append(a.item())
""",
        "a backward pass with arguments of an expression",
    ),
}


@pytest.mark.parametrize(("body", "reason"), TRAPS.values(), ids=TRAPS.keys())
def test_trap_twin_escapes_with_its_reason(body: str, reason: str) -> None:
    translated = translate_nnx(_script(body))
    assert BEGIN in translated and not _renders_a_step(translated), translated
    assert reason in " ".join(translated.replace("# ml_switcheroo: |", "").split()), translated


def test_a_walrus_in_the_forward_pass_escapes() -> None:
    """On main (8a1c311) this converted: ``h`` stayed local to the loss function, so the read
    after the step saw the value ``h`` held before the loop (a torch tensor: no error)."""
    body = """\
        opt.zero_grad()
        out = (h := model(x))
        loss = ((h - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item() + h.sum().item())
"""
    source = _script(body).replace("history = []", "history = []\nh = torch.zeros(1)")
    translated = translate_nnx(source)
    assert BEGIN in translated and not _renders_a_step(translated), translated
    assert "binds a name no assignment target names" in translated, translated
