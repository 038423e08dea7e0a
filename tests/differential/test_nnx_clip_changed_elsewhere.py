"""A clip folded into the optimizer's chain reads its max norm once, where the optimizer is
built; torch reads it at every step. Changed after the construction through another name
(``c = cfg; c["clip"] = 0.01``) or by a method call (``cfg.update(clip=0.01)``, also through
another name: ``c = cfg; c.update(clip=0.01)``, ``box = [cfg]``), the folded
clip kept the old value: measured, relative error 8.3 against torch (float64, 36 updates).
Those clips escape; a call that only reads the configuration folds and matches."""

from __future__ import annotations

import pytest

from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.support import renders_a_step

LOOP = """\
import torch

cfg = {{"clip": 1.0}}
model = make_model()
{before}
opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
{after}
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean() * 20
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
        opt.step()
        losses.append(loss.item())
"""

CHANGED_AFTER = {
    "through_another_name": 'c = cfg\nc["clip"] = 0.01',
    "by_a_method_call": "cfg.update(clip=0.01)",
    "by_a_method_call_through_another_name": "c = cfg\nc.update(clip=0.01)",
    "by_a_method_call_through_a_container": "box = [cfg]\nbox[0].update(clip=0.01)",
}


@pytest.mark.parametrize("name", sorted(CHANGED_AFTER))
def test_a_clip_changed_after_the_optimizer_is_built_escapes(name: str) -> None:
    output = translate_nnx(LOOP.format(before="", after=CHANGED_AFTER[name]))
    assert not renders_a_step(output), output
    assert "clip_by_global_norm" not in output, output


def test_a_call_reading_the_configuration_folds_and_matches_torch() -> None:
    translated, rel = translated_rel(LOOP.format(before="", after="print(cfg)"), exact=True)
    assert renders_a_step(translated) and "clip_by_global_norm" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"
