"""A forward pass under ``with torch.autocast(...)`` (build-nanogpt) stays escaped: torch
computes it in another dtype, which the NNX loss function would not. The escape names the
``with``, not a missing forward pass."""

from __future__ import annotations

from tests.support import SGD_MODEL, step_escaped_with

AUTOCAST = """\
for x, y in loader:
    opt.zero_grad()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        logits = model(x)
        loss = ((logits - y) ** 2).mean()
    loss.backward()
    opt.step()
"""


def test_a_loss_computed_under_autocast_escapes_naming_the_with() -> None:
    step_escaped_with(
        AUTOCAST,
        'runs under `with torch.autocast(device_type="cpu", dtype=torch.bfloat16):`',
        SGD_MODEL,
    )


def test_a_with_that_does_not_compute_the_loss_keeps_the_general_reason() -> None:
    code = AUTOCAST.replace("        loss = ((logits", "    loss = ((logits")
    code = code.replace("        logits = model(x)\n", "        logits = model(x)\n    x = 1\n")
    output = step_escaped_with(code, "", SGD_MODEL)
    assert "runs under `with" not in output, output


# build-nanogpt's micro step: the forward under autocast inside the micro-step loop, the loss
# rescaled after it (the `with` is part of the step, not before it); the reason was "the
# forward pass does not call the trained model `model`"
MICRO = """\
for x, y in loader:
    opt.zero_grad()
    for micro_step in range(4):
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            logits = model(x)
            loss = ((logits - y) ** 2).mean()
        loss = loss / 4
        loss.backward()
    opt.step()
"""


def test_a_micro_step_under_autocast_escapes_naming_the_with() -> None:
    step_escaped_with(
        MICRO,
        "the forward pass calls the trained model `model` under "
        '`with torch.autocast(device_type="cpu", dtype=torch.bfloat16):`',
        SGD_MODEL,
    )
