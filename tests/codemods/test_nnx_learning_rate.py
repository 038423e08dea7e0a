"""optimizer.TorchToNNX, manual learning-rate writes: ``for g in opt.param_groups: g["lr"] = v``
becomes a write to the injected hyper-parameter; the nearby shapes escape and leave the
optimizer's tx as it was (no ``inject_hyperparams``)."""

from __future__ import annotations

import textwrap

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import SwitcherooTest, run_codemod, stock_clip
from tests.test_properties import check_invariants

HEADER = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
"""

STEP = """\
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    opt.step()
"""

INJECTED = "optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)"
WRITE = 'opt.opt_state.hyperparams["learning_rate"][...] = '


def convert(code: str, **options: object) -> str:
    return run_codemod(textwrap.dedent(code), TorchToNNX, **options)


def escaped_write(loop: str, header: str = HEADER) -> str:
    """The output for ``header`` and ``loop``: the lr write escaped, the tx not injected."""
    output = convert(header + loop)
    assert BEGIN in output and INJECTED not in output and WRITE not in output, output
    return output


class NnxLearningRateTest(SwitcherooTest):
    TRANSFORM = TorchToNNX

    def test_a_manual_lr_write_becomes_a_write_to_the_injected_hyperparameter(self) -> None:
        self.assertConverts(
            """
            import torch
            model = make_model()
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for it, (x, y) in enumerate(loader):
                lr = get_lr(it)
                # set the learning rate
                for param_group in opt.param_groups:
                    param_group["lr"] = lr
                opt.zero_grad()
                loss = ((model(x) - y) ** 2).mean()
                loss.backward()
                opt.step()
            """,
            """
            import optax
            from flax import nnx
            model = make_model()
            opt = nnx.Optimizer(model, optax.inject_hyperparams(optax.sgd)(learning_rate=0.1), wrt=nnx.Param)
            for it, (x, y) in enumerate(loader):
                lr = get_lr(it)
                # set the learning rate
                opt.opt_state.hyperparams["learning_rate"][...] = lr
                def loss_fn(model):
                    loss = ((model(x) - y) ** 2).mean()
                    return loss
                loss, grads = nnx.value_and_grad(loss_fn)(model)
                opt.update(model, grads)
            """,
        )

    def test_a_one_line_loop_with_single_quotes_converts(self) -> None:
        output = convert(
            HEADER
            + "for x, y in loader:\n    for g in opt.param_groups: g['lr'] = 0.5 * lr\n"
            + STEP
        )
        assert INJECTED in output and f"    {WRITE}0.5 * lr\n" in output, output

    def test_every_write_of_the_optimizer_converts(self) -> None:
        output = convert(
            HEADER
            + "for g in opt.param_groups:\n    g['lr'] = 0.2\n"
            + "for x, y in loader:\n    for g in opt.param_groups:\n        g['lr'] = lr\n"
            + STEP
        )
        assert f"\n{WRITE}0.2\n" in output and f"    {WRITE}lr\n" in output, output
        assert BEGIN not in output, output

    def test_an_integer_learning_rate_is_injected_as_a_float(self) -> None:
        output = convert(
            HEADER.replace("lr=0.1", "lr=1")
            + "for x, y in loader:\n    for g in opt.param_groups:\n        g['lr'] = lr\n"
            + STEP
        )
        assert "optax.inject_hyperparams(optax.sgd)(learning_rate=1.0)" in output, output

    def test_a_learning_rate_variable_is_injected_through_float(self) -> None:
        output = convert(
            HEADER.replace("lr=0.1", "lr=base_lr")
            + "for x, y in loader:\n    for g in opt.param_groups:\n        g['lr'] = lr\n"
            + STEP
        )
        assert "inject_hyperparams(optax.sgd)(learning_rate=float(base_lr))" in output, output

    def test_a_user_float_keeps_the_tx_uninjected(self) -> None:
        escaped_write(
            "float = my_float\n"
            "for x, y in loader:\n    for g in opt.param_groups:\n        g['lr'] = lr\n" + STEP
        )

    def test_a_group_scaled_lr_escapes(self) -> None:
        escaped_write(
            "for x, y in loader:\n    for g in opt.param_groups:\n"
            '        g["lr"] = lr * g["lr_scale"]\n' + STEP
        )

    def test_a_write_to_another_key_escapes(self) -> None:
        escaped_write(
            'for x, y in loader:\n    for g in opt.param_groups:\n        g["weight_decay"] = wd\n'
            + STEP
        )

    def test_a_write_to_the_only_group_converts(self) -> None:
        output = convert(
            HEADER + 'for x, y in loader:\n    opt.param_groups[0]["lr"] = lr  # set\n' + STEP
        )
        assert INJECTED in output and f"    {WRITE}lr  # set\n" in output, output

    def test_an_lr_read_becomes_the_stored_learning_rate(self) -> None:
        output = convert(
            HEADER + "for x, y in loader:\n" + STEP + '    lr = opt.param_groups[0]["lr"]\n'
        )
        assert INJECTED in output, output
        assert '    lr = float(opt.opt_state.hyperparams["learning_rate"][...])\n' in output, output

    def test_an_lr_read_in_an_f_string_keeps_the_users_quotes(self) -> None:
        output = convert(
            HEADER
            + "for x, y in loader:\n"
            + STEP
            + "    print(f\"{opt.param_groups[0]['lr']}\")\n"
        )
        assert "print(f\"{float(opt.opt_state.hyperparams['learning_rate'][...])}\")" in output

    def test_a_read_and_a_write_convert_together(self) -> None:
        output = convert(
            HEADER
            + "for x, y in loader:\n    for g in opt.param_groups:\n        g['lr'] = lr\n"
            + STEP
            + '    print(opt.param_groups[0]["lr"])\n'
        )
        assert BEGIN not in output and INJECTED in output, output

    def test_an_update_in_place_of_the_lr_escapes(self) -> None:
        escaped_write('for x, y in loader:\n    opt.param_groups[0]["lr"] *= 0.5\n' + STEP)

    def test_a_chained_assignment_of_the_lr_escapes(self) -> None:
        escaped_write('for x, y in loader:\n    opt.param_groups[0]["lr"] = lr0 = 0.1\n' + STEP)

    def test_a_read_of_the_second_group_escapes(self) -> None:
        escaped_write("for x, y in loader:\n" + STEP + '    print(opt.param_groups[1]["lr"])\n')

    def test_a_read_of_another_key_escapes(self) -> None:
        escaped_write(
            "for x, y in loader:\n" + STEP + '    print(opt.param_groups[0]["momentum"])\n'
        )

    def test_the_param_groups_list_given_away_escapes(self) -> None:
        escaped_write("for x, y in loader:\n" + STEP + "    groups = opt.param_groups\n")

    def test_a_write_of_a_value_read_from_the_groups_escapes(self) -> None:
        escaped_write(
            "for x, y in loader:\n    for g in opt.param_groups:\n"
            '        g["lr"] = opt.param_groups[0]["lr"] * 0.5\n' + STEP
        )

    def test_a_first_group_write_with_several_groups_keeps_the_torch_optimizer(self) -> None:
        header = HEADER.replace(
            "model.parameters()",
            "[{'params': model.a.parameters()}, {'params': model.b.parameters()}]",
        )
        output = convert(
            header + 'for x, y in loader:\n    opt.param_groups[0]["lr"] = lr\n' + STEP
        )
        assert "inject_hyperparams(optax.sgd)" not in output and WRITE not in output, output
        assert '    opt.param_groups[0]["lr"] = lr\n' in output, output

    def test_a_loop_that_does_more_than_the_write_escapes(self) -> None:
        escaped_write(
            "for x, y in loader:\n    for g in opt.param_groups:\n        g['lr'] = lr\n"
            "        print(g)\n" + STEP
        )

    def test_a_loop_with_an_else_escapes(self) -> None:
        escaped_write(
            "for x, y in loader:\n    for g in opt.param_groups:\n        g['lr'] = lr\n"
            "    else:\n        pass\n" + STEP
        )

    def test_a_comment_inside_the_loop_escapes(self) -> None:
        escaped_write(
            "for x, y in loader:\n    for g in opt.param_groups:\n        g['lr'] = lr  # new\n"
            + STEP
        )

    def test_several_param_groups_keep_the_torch_optimizer(self) -> None:
        header = HEADER.replace(
            "model.parameters()",
            "[{'params': model.a.parameters()}, {'params': model.b.parameters()}]",
        )
        output = convert(
            header
            + "for x, y in loader:\n    for g in opt.param_groups:\n        g['lr'] = lr\n"
            + STEP
        )
        assert "inject_hyperparams(optax.sgd)" not in output and WRITE not in output, output
        assert "        g['lr'] = lr\n" in output, output

    def test_a_scheduler_next_to_a_manual_write_stays_torch_code(self) -> None:
        # torch's scheduler works from the lr written there: no schedule folds into the tx
        output = convert(
            HEADER + "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5)\n"
            "for x, y in loader:\n    for g in opt.param_groups:\n        g['lr'] = lr\n"
            + STEP
            + "    sched.step()\n"
        )
        escape = output.split("ESCAPE-BEGIN torch.optim.lr_scheduler.StepLR")[1]
        assert "this code also uses `opt.param_groups` at example.py:" in escape, output
        assert "optax.exponential_decay" not in output, output

    def test_a_clipping_chain_writes_the_lr_of_its_injected_element(self) -> None:
        """The clip heads the chain, the optimizer's element after it is injected (its state
        ``opt.opt_state[1]``; tests/differential/test_nnx_micro_step_loop.py runs it)."""
        output = convert(
            HEADER + "for x, y in loader:\n    for g in opt.param_groups:\n        g['lr'] = lr\n"
            "    opt.zero_grad()\n    loss = ((model(x) - y) ** 2).mean()\n    loss.backward()\n"
            "    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n    opt.step()\n"
        )
        assert BEGIN not in output, output
        chain = f"optax.chain({stock_clip('1.0')}, " + INJECTED + ")"
        assert chain in output, output
        assert 'opt.opt_state[1].hyperparams["learning_rate"][...] = lr' in output, output

    def test_a_clipping_chain_with_an_integer_lr_injects_it_as_a_float(self) -> None:
        output = convert(
            HEADER.replace("lr=0.1", "lr=1")
            + "for x, y in loader:\n    for g in opt.param_groups:\n        g['lr'] = lr\n"
            "    opt.zero_grad()\n    loss = ((model(x) - y) ** 2).mean()\n    loss.backward()\n"
            "    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n    opt.step()\n"
        )
        assert "optax.inject_hyperparams(optax.sgd)(learning_rate=1.0)" in output, output

    def test_an_optimizer_bound_twice_escapes_the_write(self) -> None:
        escaped_write(
            "if fine_tune:\n    opt = torch.optim.SGD(model.parameters(), lr=0.01)\n"
            "for x, y in loader:\n    for g in opt.param_groups:\n        g['lr'] = lr\n" + STEP
        )

    def test_a_write_through_a_function_every_call_hands_the_optimizer_is_translated(
        self,
    ) -> None:
        """s31: the helper's parameter holds this optimizer at every call of the file."""
        output = convert(
            HEADER + "def set_lr(optimizer, lr):\n    for g in optimizer.param_groups:\n"
            "        g['lr'] = lr\n"
            "for x, y in loader:\n    set_lr(opt, 0.01)\n" + STEP
        )
        assert BEGIN not in output and INJECTED in output, output
        assert 'optimizer.opt_state.hyperparams["learning_rate"][...] = lr' in output, output

    def test_a_write_through_a_function_another_call_hands_a_torch_value_escapes(self) -> None:
        """The helper stays torch code; the call handing it the nnx.Optimizer escapes."""
        output = convert(
            HEADER + "def set_lr(optimizer, lr):\n    for g in optimizer.param_groups:\n"
            "        g['lr'] = lr\n"
            "set_lr(torch_only, 0.1)\n"
            "for x, y in loader:\n    set_lr(opt, 0.01)\n" + STEP
        )
        assert "opt_state.hyperparams" not in output, output
        assert "this code uses it as a torch optimizer: `set_lr(...)` gets `opt`" in output

    def test_the_optax_target_still_escapes_the_write(self) -> None:
        output = run_codemod(
            HEADER
            + "for x, y in loader:\n    for g in opt.param_groups:\n        g['lr'] = lr\n"
            + STEP,
            TorchToOptax,
        )
        assert BEGIN in output and "inject_hyperparams(optax.sgd)" not in output, output


LR_EXAMPLE = """\
import torch
model = make_model()  # keep
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)  # peak lr
for it, (x, y) in enumerate(loader):  # keep
    lr = get_lr(it)  # keep
    # warm-up, then cosine
    for param_group in opt.param_groups:  # every group
        param_group["lr"] = lr
    opt.param_groups[0]["lr"] = lr  # again
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    opt.step()
    print(f"{it} {opt.param_groups[0]['lr']:.3e}")  # log
"""


def test_lr_uses_keep_every_invariant() -> None:
    output = check_invariants(LR_EXAMPLE, TorchToNNX)
    assert BEGIN in output, output  # the loop with a comment on its header escapes


def test_lr_uses_without_a_commented_loop_keep_every_invariant() -> None:
    code = LR_EXAMPLE.replace("  # every group", "")
    output = check_invariants(code, TorchToNNX)
    assert BEGIN not in output and "inject_hyperparams(optax.adamw)" in output, output
