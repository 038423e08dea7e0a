"""A loss built by a ``for`` loop in the forward pass (issue 13: pytorch/examples
fast_neural_style's style loss, ``style_loss = 0.; for ft_y, gm_s in zip(features_y,
gram_style): ...; style_loss += mse_loss(gm_y, gm_s)``; an RNN's ``for t in range(T): loss +=
criterion(out[t], y[t])``): a loop of plain assignments to names (``statements.
loss_loop_names``) runs in the loss function, traced and unrolled as torch runs it. The NNX
codemod's own output matches torch when run (every recorded loss and the final parameters,
float64, 36 updates); the shapes it cannot prove escape with their reason (trap twins)."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel

STYLE_LOOP = """\
import torch



def mse_loss(a, b):
    return ((a - b) ** 2).mean()


model = make_model()
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
targets = [0.5, 1.0, 2.0]
for epoch in range(EPOCHS):
    for x, y in loader:
        n_batch = len(x)
        opt.zero_grad()
        out = model(x)
        features = [out, out * 2.0, out * out]
        content_loss = 0.5 * mse_loss(out, y)
        style_loss = 0.
        for ft_y, gm_s in zip(features, targets):
            gm_y = ft_y.T @ ft_y / n_batch
            style_loss += mse_loss(gm_y, gm_s)
        style_loss *= 0.1
        total_loss = content_loss + style_loss
        total_loss.backward()
        opt.step()
        losses.append(content_loss.item())
        losses.append(style_loss.item())
        losses.append(total_loss.item())
"""

SEQUENCE_LOOP = """\
import torch

STEPS = 3


def criterion(a, b):
    return ((a - b) ** 2).mean()


model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        out = model(x)
        loss = criterion(out, y)
        h = out
        for t in range(STEPS):
            out = model(x + h.mean() * (t + 1.0))
            h = out * 0.5
            loss += criterion(out, y * t)
        loss = loss / STEPS
        loss.backward()
        opt.step()
        losses.append(loss.item())
        losses.append(out.sum().item())
        losses.append(t)
"""

NESTED_LOOPS = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.02)
weights = [[1.0, 0.5], [0.25, 2.0]]
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        out = model(x)
        loss = ((out - y) ** 2).mean()
        for i in range(len(weights)):
            row = weights[i]
            for w in row:
                term = ((out[:, i] * w) ** 2).mean()
                loss = loss + 0.1 * term
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""

LOOPS = {
    "style_loss_over_zip": STYLE_LOOP,
    "sequence_loss_over_range": SEQUENCE_LOOP,
    "nested_loops_over_range_len": NESTED_LOOPS,
}


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_the_translated_loop_matches_torch(name: str) -> None:
    translated, rel = translated_rel(LOOPS[name])
    assert BEGIN not in translated and ".backward(" not in translated, translated
    assert "def loss_fn(model):" in translated and "        for " in translated, translated
    assert rel < EXACT, f"{name}: rel {rel:.3e}"


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_a_second_run_changes_nothing(name: str) -> None:
    once = translate_nnx(LOOPS[name])
    assert translate_nnx(once) == once


def test_the_loop_runs_inside_the_loss_function() -> None:
    """The whole loop is in ``loss_fn`` (each pass's term differentiated), and ``style_loss``
    read after the step comes out as aux."""
    translated = translate_nnx(STYLE_LOOP)
    loss_fn = translated[translated.index("def loss_fn") : translated.index("return total_loss")]
    assert "for ft_y, gm_s in zip(features, targets):" in loss_fn, translated
    assert "style_loss += mse_loss(" in loss_fn, translated
    assert "has_aux=True" in translated, translated


def test_the_harness_sees_a_pass_of_the_loop_left_out() -> None:
    """Dropping the last pass of the style loop (``targets[:-1]`` in the translation only) is
    seen: the loop's passes are what the match depends on."""
    translated = translate_nnx(STYLE_LOOP).replace(
        "zip(features, targets)", "zip(features, targets[:-1])"
    )
    from tests.differential.nnx_loops import run_nnx_loop, run_torch_loop, worst_rel

    assert "targets[:-1]" in translated
    rel = worst_rel(run_torch_loop(STYLE_LOOP), run_nnx_loop(STYLE_LOOP, translated))
    assert rel > 1e-3


def _escaped(source: str, reason: str) -> None:
    translated = translate_nnx(source)
    code = "\n".join(line for line in translated.splitlines() if not line.strip().startswith("#"))
    assert BEGIN in translated and "nnx.value_and_grad" not in code, translated
    assert reason in translated, translated


def _style(loop: str, after: str = "") -> str:
    """``STYLE_LOOP`` with the loop's two lines replaced by ``loop`` (and ``after`` recorded)."""
    old = (
        "        for ft_y, gm_s in zip(features, targets):\n"
        "            gm_y = ft_y.T @ ft_y / n_batch\n"
        "            style_loss += mse_loss(gm_y, gm_s)\n"
    )
    assert old in STYLE_LOOP
    source = STYLE_LOOP.replace(old, loop)
    return source + after


TWINS = {
    # a jump: not every pass adds its term (not a loop of plain assignments)
    "break": (
        _style(
            "        for ft_y, gm_s in zip(features, targets):\n"
            "            gm_y = ft_y.T @ ft_y / n_batch\n"
            "            if gm_s > 1.5:\n"
            "                break\n"
            "            style_loss += mse_loss(gm_y, gm_s)\n"
        ),
        "computed by the `for` statement at this file:20, and the forward pass the step translates is a run of statements",
    ),
    "continue": (
        _style(
            "        for ft_y, gm_s in zip(features, targets):\n"
            "            style_loss += mse_loss(ft_y, gm_s)\n"
            "            continue\n"
        ),
        "computed by the `for` statement at this file:20, and the forward pass the step translates is a run of statements",
    ),
    "else": (
        _style(
            "        for ft_y, gm_s in zip(features, targets):\n"
            "            style_loss += mse_loss(ft_y, gm_s)\n"
            "        else:\n"
            "            style_loss = style_loss * 2.0\n"
        ),
        "computed by the `for` statement at this file:20, and the forward pass the step translates is a run of statements",
    ),
    # a call alone on its line in the loop (an append: not an assignment to a name)
    "append": (
        _style(
            "        terms = []\n"
            "        for ft_y, gm_s in zip(features, targets):\n"
            "            terms.append(mse_loss(ft_y, gm_s))\n"
            "        style_loss = sum(terms)\n"
        ),
        "the forward pass does not call the trained model",
    ),
    "while": (
        _style(
            "        k = 0\n"
            "        while k < 3:\n"
            "            style_loss += mse_loss(features[k], targets[k])\n"
            "            k += 1\n"
        ),
        "computed by the `while` statement",
    ),
    # `+=` on a tensor another name shares: torch changes both, JAX rebinds one name
    "aliased_in_place": (
        _style(
            "        acc = content_loss\n"
            "        for ft_y, gm_s in zip(features, targets):\n"
            "            acc += mse_loss(ft_y, gm_s)\n"
            "            style_loss = acc\n"
        ),
        "shares its memory",
    ),
    # the alias made in one pass, changed in the next
    "aliased_across_passes": (
        _style(
            "        prev = 0.\n"
            "        for ft_y, gm_s in zip(features, targets):\n"
            "            style_loss += mse_loss(ft_y, gm_s)\n"
            "            prev = style_loss\n"
            "        style_loss = style_loss + prev\n"
        ),
        "shares its memory",
    ),
    # the loop's item, the model's output through `features`, changed in place
    "loop_item_changed_in_place": (
        _style(
            "        for ft_y, gm_s in zip(features, targets):\n"
            "            ft_y *= 2.0\n"
            "            style_loss += mse_loss(ft_y, gm_s)\n"
        ),
        "`ft_y *= 2.0` changes `ft_y` in place, which shares its memory",
    ),
    # a name of the loop read after the step, the loop over a list (may run zero times)
    "loop_name_after_the_step": (
        _style(
            "        for ft_y, gm_s in zip(features, targets):\n"
            "            gm_y = ft_y.T @ ft_y / n_batch\n"
            "            style_loss += mse_loss(gm_y, gm_s)\n",
            "        losses.append(gm_y.sum().item())\n",
        ).replace(
            "        losses.append(total_loss.item())\n" + "        losses.append(gm_y",
            "        losses.append(total_loss.item())\n        losses.append(gm_y",
        ),
        "may run zero times",
    ),
    # a loop over `range(n)` of a variable `n`: its target read after the step
    "range_of_a_variable_target_after_the_step": (
        SEQUENCE_LOOP.replace("range(STEPS)", "range(len(x) // 2)"),
        "`t` is bound only by the loop `for t in range(len(x) // 2)`",
    ),
    # the loop target read after the loop in the loss
    "loop_target_after_the_loop": (
        _style(
            "        for ft_y, gm_s in zip(features, targets):\n"
            "            style_loss += mse_loss(ft_y, gm_s)\n"
            "        style_loss = style_loss + ft_y.mean()\n"
        ),
        "may run zero times",
    ),
    # a name read before the loop binds it in its first pass
    "read_before_bound_in_the_body": (
        _style(
            "        for ft_y, gm_s in zip(features, targets):\n"
            "            style_loss += mse_loss(ft_y, gm_s) + carry\n"
            "            carry = ft_y.mean()\n"
        ),
        "`carry` is read before the loss computes it",
    ),
    # a name the code outside the step binds, rebound in the loop (local to the loss function)
    "outer_name_rebound": (
        _style(
            "        for ft_y, gm_s in zip(features, targets):\n"
            "            style_loss += mse_loss(ft_y, gm_s)\n"
            "            weight = weight * 2.0\n"
        ).replace("targets = [0.5, 1.0, 2.0]", "targets = [0.5, 1.0, 2.0]\nweight = 0.5"),
        "`weight` is read before the loss computes it",
    ),
    # the model's parameters iterated in the loss: an NNX module has no `.parameters()`
    "over_parameters": (
        _style(
            "        for p in model.parameters():\n"
            "            style_loss += 1e-3 * (p ** 2).sum()\n"
        ),
        "`model.parameters` reads the model as a torch module",
    ),
    # a walrus binds a name only the passes that run bind
    "walrus": (
        _style(
            "        for ft_y, gm_s in zip(features, targets):\n"
            "            style_loss += mse_loss((g := ft_y * 2.0), gm_s)\n"
        ),
        "computed by the `for` statement at this file:20",
    ),
    # an item of the batch changed in the loop (the loop's item store is not plain)
    "item_store": (
        _style("        for i in range(3):\n            out[i] = out[i] * 2.0\n"),
        "the forward pass does not call the trained model",
    ),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_a_loop_the_loss_function_cannot_take_escapes(name: str) -> None:
    source, reason = TWINS[name]
    _escaped(source, reason)


PLAIN = {  # a loop, the names it binds
    "augmented": ("for a, b in zip(xs, ys):\n    s += f(a, b)\n", ["a", "b", "s"]),
    "assignments": ("for t in range(3):\n    h = g(h)\n    l: T = h * t\n", ["t", "h", "l"]),
    "nested": ("for i in r:\n    for (j, k) in q:\n        s = s + j * k\n", ["i", "j", "k", "s"]),
}
NOT_PLAIN = {
    "break": "for a in xs:\n    s += a\n    break\n",
    "else": "for a in xs:\n    s += a\nelse:\n    s = 0\n",
    "call": "for a in xs:\n    terms.append(a)\n",
    "item_store": "for a in xs:\n    d[a] = 1\n",
    "attribute_target": "for self.a in xs:\n    s += 1\n",
    "starred_target": "for a, *b in xs:\n    s += a\n",
    "if": "for a in xs:\n    if a:\n        s += a\n",
    "walrus": "for a in xs:\n    s += (b := a)\n",
    "async": "async def f():\n    async for a in xs:\n        s = a\n",
    "annotation_only": "for a in xs:\n    s: int\n",
}


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_a_loop_of_plain_assignments_binds_its_names(name: str) -> None:
    import libcst as cst

    from ml_switcheroo.analysis.statements import loss_loop_names

    source, names = PLAIN[name]
    found = loss_loop_names(cst.parse_module(source).body[0])
    assert found is not None and [n.value for n in found] == names


@pytest.mark.parametrize("name", sorted(NOT_PLAIN))
def test_any_other_loop_is_not_one(name: str) -> None:
    import libcst as cst

    from ml_switcheroo.analysis.statements import loss_loop_names

    statement = cst.parse_module(NOT_PLAIN[name]).body[0]
    if isinstance(statement, cst.FunctionDef):
        statement = statement.body.body[0]  # type: ignore[assignment]
    assert loss_loop_names(statement) is None
