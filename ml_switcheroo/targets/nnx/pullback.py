"""A GAN's generator step through the pullback of its forward pass (DCGAN, issue 13).

The discriminator's step computes ``fake = netG(noise)`` (and reads ``fake.detach()``); the
generator's step after it differentiates a loss reading that ``fake`` (``criterion(netD(fake),
label)``). Computing ``netG(noise)`` again in the generator's loss function would run its
forward pass twice (BatchNorm statistics, dropout masks: 9e-2 off, measured). Exact instead:
the discriminator's loss function computes

    fake, netG_vjp = nnx.vjp(lambda netG: netG(noise), netG, graph_updates=False)

and returns the pullback as aux; the generator's step differentiates its loss with respect to
the array ``fake`` and pulls the gradient back: ``(grads,) = netG_vjp(fake_grad)``.

Whether the generator's step reaches its model only through that forward pass is the
analysis's (``analysis/forward_links.py``: a ``ForwardLink``, or why there is none); this
module names the pullback and writes the JAX.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.forward_links import ForwardLink
from ml_switcheroo.analysis.statements import assigned_names
from ml_switcheroo.model.hygiene import fresh_name

VJP = "{output}, {pullback} = nnx.vjp(lambda {model}: {call}, {model}, graph_updates=False)"
PULLED = "({grads},) = {pullback}({gradient})"


@dataclass(frozen=True)
class Pullback:
    """The generator's forward ``output = model(args)`` (``forward``: its line) whose pullback
    the generator's step reads under ``name``."""

    forward: cst.SimpleStatementLine
    output: str
    model: str
    name: str

    @classmethod
    def of(cls, found: ForwardLink | str) -> Pullback | str:
        """The pullback of a forward link, named ``<model>_vjp`` clear of the names at its
        line; the reason there is no link as it is."""
        if isinstance(found, str):
            return found
        name = fresh_name(f"{found.model}_vjp", found.taken)
        return cls(found.forward, found.output, found.model, name)

    def vjp_line(self) -> cst.BaseStatement:
        """The forward line as ``output, pullback = nnx.vjp(...)`` (its comments kept)."""
        call = self.forward.body[0].value  # type: ignore[attr-defined]
        text = VJP.format(
            output=self.output, pullback=self.name, model=self.model, call=_code(call)
        )
        small = cst.parse_statement(text + "\n").body[0]  # type: ignore[attr-defined]
        return self.forward.with_changes(body=[small])

    def returned_by(self, statements: Sequence[cst.BaseStatement]) -> bool:
        """Whether ``statements`` (a step's rendering) bind the pullback's name."""
        return any(
            self.name in {n.value for n in assigned_names(node)}
            for statement in statements
            for node in cst_walk.walk(statement)
            if isinstance(node, cst.SimpleStatementLine)
        )

    def pull(self, grads: str, gradient: str) -> str:
        """``(grads,) = pullback(gradient)``: the model's gradient from its output's."""
        return PULLED.format(grads=grads, pullback=self.name, gradient=gradient)


def fresh_gradient(pullback: Pullback, taken: set[str]) -> str:
    """A name for the gradient of the loss with respect to the forward's output."""
    return fresh_name(f"{pullback.output}_grad", taken | {pullback.name})


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node).strip()
