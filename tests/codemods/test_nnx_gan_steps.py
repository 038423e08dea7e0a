"""optimizer.TorchToNNX on GAN steps (issue 13): a loss calling another model converts when
torch discards the gradients it leaves there (``optimizer_D.zero_grad()`` on every path
before anything uses them); every nearby shape where torch uses them escapes."""

from __future__ import annotations

import re
import textwrap

from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import SwitcherooTest, run_codemod

MODELS = """\
import torch

generator = make_generator()
discriminator = make_discriminator()
optimizer_G = torch.optim.Adam(generator.parameters(), lr=1e-3)
optimizer_D = torch.optim.Adam(discriminator.parameters(), lr=1e-3)
"""

G_STEP = """\
        optimizer_G.zero_grad()
        gen_imgs = generator(z)
        g_loss = ((discriminator(gen_imgs) - valid) ** 2).mean()
        g_loss.backward()
        optimizer_G.step()
"""

D_STEP = """\
        optimizer_D.zero_grad()
        real_loss = ((discriminator(real_imgs) - valid) ** 2).mean()
        fake_loss = ((discriminator(gen_imgs.detach()) - fake) ** 2).mean()
        d_loss = (real_loss + fake_loss) / 2
        d_loss.backward()
        optimizer_D.step()
"""

LOOP = "for z, real_imgs, valid, fake in loader:\n"


def convert(code: str) -> str:
    return run_codemod(textwrap.dedent(code), TorchToNNX)


def escaped_steps(output: str) -> list[str]:
    """The optimizers whose ``step()`` is still in the code (escaped), in order."""
    code = [line for line in output.splitlines() if not line.strip().startswith("#")]
    return [m.group(1) for line in code if (m := re.search(r"(\w+)\.step\(\)", line))]


def reasons(output: str) -> str:
    return "\n".join(line for line in output.splitlines() if "reason:" in line)


class NnxGanStepTest(SwitcherooTest):
    TRANSFORM = TorchToNNX

    def test_the_generator_loss_passes_the_discriminator_undifferentiated(self) -> None:
        self.assertConverts(
            MODELS
            + "for z, real_imgs, valid, fake in loader:\n"
            + textwrap.indent(textwrap.dedent(G_STEP + D_STEP), "    "),
            """
            import optax
            from flax import nnx

            generator = make_generator()
            discriminator = make_discriminator()
            optimizer_G = nnx.Optimizer(generator, optax.adam(learning_rate=1e-3), wrt=nnx.Param)
            optimizer_D = nnx.Optimizer(discriminator, optax.adam(learning_rate=1e-3), wrt=nnx.Param)
            for z, real_imgs, valid, fake in loader:
                def loss_fn(generator, discriminator):
                    gen_imgs = generator(z)
                    g_loss = ((discriminator(gen_imgs) - valid) ** 2).mean()
                    return g_loss, gen_imgs
                (g_loss, gen_imgs), grads = nnx.value_and_grad(loss_fn, has_aux=True)(generator, discriminator)
                optimizer_G.update(generator, grads)
                def loss_fn(discriminator):
                    real_loss = ((discriminator(real_imgs) - valid) ** 2).mean()
                    fake_loss = ((discriminator(gen_imgs) - fake) ** 2).mean()
                    d_loss = (real_loss + fake_loss) / 2
                    return d_loss
                d_loss, grads = nnx.value_and_grad(loss_fn)(discriminator)
                optimizer_D.update(discriminator, grads)
            """,
        )

    def test_discriminator_gradients_summed_into_its_step_escape(self) -> None:
        """The discriminator's zero_grad() after its step: its step would use the generator
        step's gradients too."""
        moved = D_STEP.replace("        optimizer_D.zero_grad()\n", "") + (
            "        optimizer_D.zero_grad()\n"
        )
        output = convert(MODELS + LOOP + G_STEP + moved)
        self.assertEqual(escaped_steps(output), ["optimizer_G", "optimizer_D"], output)
        self.assertIn("runs a backward pass before `optimizer_D.zero_grad()`", reasons(output))

    def test_discriminator_zeroed_between_its_backward_and_step_escapes(self) -> None:
        late = D_STEP.replace("        optimizer_D.zero_grad()\n", "").replace(
            "        d_loss.backward()\n",
            "        d_loss.backward()\n        optimizer_D.zero_grad()\n",
        )
        output = convert(MODELS + LOOP + G_STEP + late)
        self.assertIn("optimizer_G", escaped_steps(output), output)
        self.assertIn("runs a backward pass before `optimizer_D.zero_grad()`", reasons(output))

    def test_a_clip_of_the_discriminator_between_the_steps_escapes(self) -> None:
        clip = "        torch.nn.utils.clip_grad_norm_(discriminator.parameters(), 1.0)\n"
        output = convert(MODELS + LOOP + G_STEP + clip + D_STEP)
        self.assertIn("optimizer_G", escaped_steps(output), output)
        self.assertIn("may read gradients or parameters before", reasons(output))

    def test_a_gradient_read_between_the_steps_escapes(self) -> None:
        read = "        norms.append(sum(float(p.grad.norm()) for p in params_D))\n"
        output = convert(MODELS + LOOP + G_STEP + read + D_STEP)
        self.assertIn("optimizer_G", escaped_steps(output), output)
        self.assertIn("reads a gradient before `optimizer_D.zero_grad()`", reasons(output))

    def test_a_function_of_the_file_reading_the_discriminator_escapes(self) -> None:
        helper = "def log_grads():\n    print(discriminator.out.weight.grad)\n\n\n"
        output = convert(MODELS + helper + LOOP + G_STEP + "        log_grads()\n" + D_STEP)
        self.assertIn("optimizer_G", escaped_steps(output), output)
        self.assertIn("calls `log_grads`", reasons(output))

    def test_one_optimizer_over_both_models_escapes(self) -> None:
        both = MODELS.replace(
            "torch.optim.Adam(generator.parameters(), lr=1e-3)",
            "torch.optim.Adam(list(generator.parameters()) + list(discriminator.parameters()))",
        )
        output = convert(both + LOOP + G_STEP + D_STEP)
        self.assertIn("optimizer_G", escaped_steps(output), output)

    def test_a_discriminator_optimizer_over_part_of_it_escapes(self) -> None:
        part = MODELS.replace(
            "torch.optim.Adam(discriminator.parameters(), lr=1e-3)",
            "torch.optim.Adam(discriminator.head.parameters(), lr=1e-3)",
        )
        output = convert(part + LOOP + G_STEP + D_STEP)
        self.assertIn("optimizer_G", escaped_steps(output), output)
        self.assertIn("several models in one loss", reasons(output))

    def test_a_model_without_an_optimizer_in_the_loss_escapes(self) -> None:
        frozen = MODELS + "features = make_features()\n"
        step = G_STEP.replace("discriminator(gen_imgs)", "features(gen_imgs)")
        output = convert(frozen + LOOP + step + D_STEP)
        self.assertIn("optimizer_G", escaped_steps(output), output)

    def test_a_step_in_a_function_returning_before_the_zero_escapes(self) -> None:
        """The path from the generator's backward leaves the function after its loop: its
        caller may read the discriminator's gradients."""
        setup = textwrap.indent(MODELS.replace("import torch\n\n", ""), "    ")
        body = textwrap.indent(textwrap.dedent(G_STEP + D_STEP), "        ")
        function = "import torch\n\ndef train(loader):\n" + setup + "    " + LOOP + body
        output = convert(function)
        self.assertEqual(escaped_steps(output), ["optimizer_G", "optimizer_D"], output)
        self.assertIn("`train` returns before", reasons(output))

    def test_an_undetached_generator_output_outside_the_loss_is_proven_like_a_call(self) -> None:
        """``discriminator(gen_imgs)`` without ``.detach()``: torch's backward reaches the
        generator, whose step then uses those gradients too (its zero_grad() after it)."""
        output = convert(
            MODELS
            + LOOP
            + """\
        gen_imgs = generator(z)
        optimizer_D.zero_grad()
        d_loss = ((discriminator(gen_imgs) - fake) ** 2).mean()
        d_loss.backward()
        optimizer_D.step()
        g_loss = ((discriminator(generator(z)) - valid) ** 2).mean()
        g_loss.backward()
        optimizer_G.step()
        optimizer_G.zero_grad()
"""
        )
        self.assertEqual(escaped_steps(output), ["optimizer_D", "optimizer_G"], output)
        self.assertIn("runs a backward pass before `optimizer_G.zero_grad()`", reasons(output))

    def test_encoder_and_decoder_trained_by_one_loss_still_escape(self) -> None:
        """seq2seq: both models in the loss are stepped after its one backward pass."""
        output = convert(
            """
            import torch

            def train_epoch(loader, encoder, decoder, criterion):
                encoder_optimizer = torch.optim.Adam(encoder.parameters())
                decoder_optimizer = torch.optim.Adam(decoder.parameters())
                for x, y in loader:
                    encoder_optimizer.zero_grad()
                    decoder_optimizer.zero_grad()
                    hidden = encoder(x)
                    loss = ((decoder(hidden) - y) ** 2).mean()
                    loss.backward()
                    encoder_optimizer.step()
                    decoder_optimizer.step()
            """
        )
        self.assertEqual(escaped_steps(output), ["encoder_optimizer", "decoder_optimizer"])
        self.assertIn(BEGIN, output)

    def test_a_clip_through_an_alias_of_the_discriminator_escapes(self) -> None:
        """``params_D`` holds the discriminator's parameters: the clip call itself is the
        gradient read (its name, not the model's, is what the proof sees)."""
        alias = MODELS + "params_D = list(discriminator.parameters())\n"
        clip = "        torch.nn.utils.clip_grad_norm_(params_D, 1.0)\n"
        output = convert(alias + LOOP + G_STEP + clip + D_STEP)
        self.assertIn("optimizer_G", escaped_steps(output), output)
        self.assertIn("may read gradients or parameters before", reasons(output))

    def test_optimizers_built_in_another_scope_escape(self) -> None:
        """The proof reads names: the other model's optimizer must be built where the step
        runs (here the step is in a function, the optimizers at module level)."""
        body = textwrap.indent(textwrap.dedent(G_STEP + D_STEP), "    ")
        output = convert(MODELS + "def train_step(z, real_imgs, valid, fake):\n" + body)
        self.assertIn("optimizer_G", escaped_steps(output), output)
