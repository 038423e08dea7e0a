"""The GAN generator step's forward link (``analysis/forward_links.py``) is the analysis
layer's: answered from the file's name resolution alone, with no target and no hook context
(the NNX target only names the pullback and writes ``nnx.vjp``, ``targets/nnx/pullback.py``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import MetadataWrapper, ScopeProvider

from ml_switcheroo.analysis.forward_links import ForwardLink, link, next_step
from ml_switcheroo.analysis.parents import parent_map
from ml_switcheroo.analysis.resolver import BindingProvider, Resolver, Variable
from ml_switcheroo.targets.catalogue import load_semantic_map

GAN = """\
import torch

for noise in data:
    optD.zero_grad()
    fake = netG(noise)
    errD = crit(netD(fake.detach()), 0)
    errD.backward()
    optD.step()
    netG.zero_grad()
    errG = crit(netD(fake), 1)
    errG.backward()
    optG.step()
"""
GENERATOR_STEP = slice(5, 9)  # the loop's lines of the generator's step (netG.zero_grad()...)


@dataclass
class Flow:
    """A ``NameFlow`` made of the resolver and the parent map (what ``HookContext`` wires)."""

    parent_of: Callable[[cst.CSTNode], cst.CSTNode | None]
    variable: Callable[[cst.Name], Variable | None]
    origins: Callable[[cst.BaseExpression], list[cst.BaseExpression] | None]
    visible_names: Callable[[cst.CSTNode], frozenset[str]]


def generator_link(source: str) -> tuple[ForwardLink | str, list[cst.BaseStatement], Flow]:
    """``link`` of the generator's step of the loop of ``source`` (``GAN``, maybe with lines
    after it); the loop's lines and the flow."""
    wrapper = MetadataWrapper(cst.parse_module(source))
    resolver = Resolver(
        load_semantic_map(), wrapper.resolve(ScopeProvider), wrapper.resolve(BindingProvider)
    )
    parents = parent_map(wrapper.module)
    flow = Flow(
        parents.get,
        lambda name: resolver.variable(name, parents),
        lambda node: resolver.reaching_values(node, None),
        lambda node: frozenset(),
    )
    loop = wrapper.module.body[-1]
    assert isinstance(loop, cst.For)
    lines = list(loop.body.body)
    step = lines[GENERATOR_STEP]
    netD = lambda callee: isinstance(callee, cst.Name) and callee.value == "netD"  # noqa: E731
    found = link([step[1]], {"errG"}, cst.Name("netG"), step, "optG", netD, flow)
    return found, lines, flow


def test_the_generator_step_links_to_the_forward_pass_of_the_discriminator_step() -> None:
    found, lines, flow = generator_link(GAN)
    assert isinstance(found, ForwardLink), found
    assert (found.forward, found.output, found.model) == (lines[1], "fake", "netG")
    assert next_step(lines[4], flow) is lines[-1]  # after optD.step(): optG.step()


def test_the_output_read_after_the_generator_step_has_no_link() -> None:
    found, _, _ = generator_link(GAN + "    keep(fake)\n")
    assert found == "`fake` may be read after the step with the value `fake = netG(noise)` gave it"
