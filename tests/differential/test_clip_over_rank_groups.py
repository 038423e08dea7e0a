"""A clip of ``model.parameters()`` before the step of an optimizer whose two param groups
split every parameter of that same model by rank (nanoGPT: decay / no decay, and an lr written
through ``param_groups``) clips every gradient the optimizer trains: it heads the masked
optimizer's chain. Before, it stayed torch code ("it clips the gradients of
`model.parameters()` but `opt` trains `optim_groups`"), and with an injected lr the mask met
``inject_hyperparams`` unrecognised. The codemod's own output is run against torch, float64:
NNX over 36 updates (losses and weights), optax over 60; each checked to differ without the
clip (else the test proves nothing). Trap twins: groups of part of the model, a clip of another
model, groups that do not cover every rank."""

from __future__ import annotations

import pytest
import torch

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential import nnx_loops
from tests.differential.harness import (
    EXACT,
    execute,
    float64,
    linear_problem,
    rel_error,
    run_optax,
    run_torch,
    translate,
)
from tests.differential.nnx_loops import run_nnx_loop, run_torch_loop, translate_nnx, worst_rel
from tests.differential.test_param_group_masks import Model
from tests.support import code_lines, gpt_groups, renders_a_step

CLIP = "torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)"
NNX_LOOP = (
    "import torch\n\nmodel = make_model()\n"
    + gpt_groups("model", "0.5")
    + """\
opt = torch.optim.AdamW(optim_groups, lr=1e-2, betas=(0.9, 0.95), eps=1e-8)
for step in range(EPOCHS * len(loader)):
    x, y = loader[step % len(loader)]
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).sum()
    loss.backward()
    LR
    CLIP
    opt.step()
    losses.append(loss.item())
"""
)
WRITTEN_LR = 'lr = 0.05 / (1 + step)\n    for param_group in opt.param_groups:\n        param_group["lr"] = lr'
STATIC = 'optax.inject_hyperparams(optax.adamw, static_args=("mask",))('
CLIP_LINK = "optax.stateless("


def nnx_loop(lr: str = WRITTEN_LR, clip: str = CLIP) -> str:
    """The loop with ``lr`` (no line: the lr stays fixed) and ``clip`` before the step."""
    return NNX_LOOP.replace("    LR\n", f"    {lr}\n" if lr else "").replace("CLIP", clip)


def _without_clip(translated: str, max_norm: str = "0.5") -> str:
    """The translation with its clip made to clip nothing."""
    assert translated.count(f"max_norm={max_norm}") == 1, translated
    return translated.replace(f"max_norm={max_norm}", "max_norm=1e30")


@pytest.mark.parametrize("lr", [WRITTEN_LR, ""], ids=["lr_written", "fixed_lr"])
def test_the_clip_heads_the_masked_chain_and_matches_torch(
    lr: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        nnx_loops.NnxNet, "named_parameters", nnx_loops.torch_named_parameters, raising=False
    )
    source = nnx_loop(lr)
    translated = translate_nnx(source)
    assert BEGIN not in translated and CLIP_LINK in translated, translated
    assert "mask=lambda params:" in translated, translated
    if lr == WRITTEN_LR:
        assert STATIC in translated and "opt.opt_state[1].hyperparams" in translated, translated
    torch_run = run_torch_loop(source)
    assert len(torch_run.losses) == 36
    rel = worst_rel(torch_run, run_nnx_loop(source, translated))
    assert rel < EXACT, f"rel {rel:.3e}\n{translated}"
    unclipped = _without_clip(translated)
    assert worst_rel(torch_run, run_nnx_loop(source, unclipped)) > 1e-3


OPTAX_CASE = (
    "import torch\nmodel = Model(params)\n"
    + gpt_groups("model", "0.3")
    + """\
opt = torch.optim.AdamW(optim_groups, lr=0.02, betas=(0.9, 0.95))
for batch in batches:
    loss = batch.sum()
    loss.backward()
    CLIP
    opt.step()
"""
)


def test_the_optax_chain_clips_as_torch_does() -> None:
    """The leftover group lists run on torch copies (``Model``); the optax chain trains."""
    source = OPTAX_CASE.replace("CLIP", CLIP.replace("0.5", "0.05"))
    translation = translate(source)
    assert [r.api for r in translation.escapes] == ["torch.optim.Optimizer.step"], translation.code
    code = "\n".join(code_lines(translation.code))
    assert CLIP_LINK in code and "mask=lambda" in code, translation.code
    with float64():
        problem = linear_problem()
        for max_norm, expected_close in ((0.05, True), (1e30, False)):
            torch_traj = run_torch(
                problem,
                lambda plist: execute(source, {"Model": Model, "params": plist, "batches": []})[
                    "opt"
                ],
                before_step=lambda plist, m=max_norm: torch.nn.utils.clip_grad_norm_(plist, m),
            )
            leftovers = [torch.tensor(v) for v in problem.init.values()]
            env = {"Model": Model, "params": leftovers, "batches": []}
            optax_traj, _ = run_optax(problem, execute(translation.code, env)["opt"])
            rel = rel_error(problem, torch_traj, optax_traj)
            assert (rel < EXACT) == expected_close, f"max_norm {max_norm}: rel {rel:.3e}"


TWINS = {
    # the groups split `model.hidden`, the clip is of the whole model
    "groups_of_part_of_the_model": nnx_loop(clip=CLIP).replace(
        "model.named_parameters()", "model.hidden.named_parameters()"
    ),
    # the clip is of another model than the one the groups split
    "clip_of_another_model": nnx_loop(clip=CLIP.replace("model.", "other.")).replace(
        "model = make_model()\n", "model = make_model()\nother = make_model()\n"
    ),
    # rank 1 is in neither group: not every parameter is trained
    "groups_missing_a_rank": nnx_loop(clip=CLIP).replace("p.dim() < 2", "p.dim() < 1"),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_the_trap_twins_keep_the_clip_out_of_the_chain(name: str) -> None:
    output = translate_nnx(TWINS[name])
    code = "\n".join(code_lines(output))
    assert CLIP_LINK not in code and not renders_a_step(output), output
    assert BEGIN in output, output
