"""A model changed by a function of another file of the repository after the optimizer took
its parameters (``CrossFile.imported_change``): the optax target escapes, naming the change
and its place; the same functions called before the optimizer, or changing another argument,
keep the translation."""

from __future__ import annotations

from pathlib import Path

from tests.support import convert_in_process, write_package

SURGERY = """\
import torch.nn as nn


def replace_head(m):
    m.out = nn.Linear(8, 2)


def remember(cfg, m):
    cfg.head = m.out


def grow(m):
    add_layer(m)


def add_layer(m):
    m.layers.append(nn.Linear(2, 2))


class Surgeon:
    def __init__(self, model):
        model.out = nn.Linear(8, 2)


class Holder:
    def __init__(self, model):
        self.model = model
"""


def _main(body: str) -> str:
    return (
        "import torch\n\nfrom pkg import surgery\n\n\n"
        f"def main(model, cfg):\n{body}    opt.step()\n"
    )


OPT = "    opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"


def _converted(tmp_path: Path, body: str) -> str:
    write_package(tmp_path, {"main.py": _main(body), "surgery.py": SURGERY})
    return convert_in_process(tmp_path)[0]["main.py"]


def test_a_store_of_another_files_function_after_the_optimizer_escapes(tmp_path: Path) -> None:
    out = _converted(tmp_path, OPT + "    surgery.replace_head(model)\n")
    assert "opt = optax" not in out
    said = "which runs `m.out = nn.Linear(8, 2)` in `pkg/surgery.py:5`"
    assert said in out, out


def test_a_keyword_argument_binds_the_changed_parameter(tmp_path: Path) -> None:
    out = _converted(tmp_path, OPT + "    surgery.replace_head(m=model)\n")
    assert "opt = optax" not in out


def test_a_change_through_a_function_of_the_other_file_escapes(tmp_path: Path) -> None:
    out = _converted(tmp_path, OPT + "    surgery.grow(model)\n")
    assert "opt = optax" not in out
    assert "which runs `add_layer(m)` in `pkg/surgery.py:13`" in out, out


def test_the_change_before_the_optimizer_converts(tmp_path: Path) -> None:
    out = _converted(tmp_path, "    surgery.replace_head(model)\n" + OPT)
    assert "opt = optax.sgd" in out, out


def test_a_store_into_another_argument_converts(tmp_path: Path) -> None:
    out = _converted(tmp_path, OPT + "    surgery.remember(cfg, model)\n")
    assert "opt = optax.sgd" in out, out


def test_a_class_of_the_other_file_changing_the_model_in_its_init_escapes(
    tmp_path: Path,
) -> None:
    out = _converted(tmp_path, OPT + "    surgery.Surgeon(model)\n")
    assert "which runs `model.out = nn.Linear(8, 2)` in `pkg/surgery.py:22`" in out, out


def test_a_class_of_the_other_file_storing_the_model_converts(tmp_path: Path) -> None:
    out = _converted(tmp_path, OPT + "    surgery.Holder(model)\n")
    assert "opt = optax.sgd" in out, out


def test_two_files_asking_about_another_file_parse_it_once(tmp_path: Path, monkeypatch) -> None:
    """``CrossFile._foreign_change`` reads another file's libcst tree through the repository
    index (``_libcst_tree``): one parse per content in a process, whichever file asks."""
    import libcst as cst

    parsed: list[str] = []
    parse = cst.parse_module

    def counting(source: str | bytes, *args: object, **kwargs: object) -> cst.Module:
        parsed.append(source if isinstance(source, str) else source.decode())
        return parse(source, *args, **kwargs)  # type: ignore[arg-type]

    body = OPT + "    surgery.replace_head(model)\n"
    write_package(
        tmp_path,
        {"a_main.py": _main(body), "b_main.py": _main(body), "surgery.py": SURGERY},
    )
    monkeypatch.setattr(cst, "parse_module", counting)
    outputs = convert_in_process(tmp_path)[0]
    said = "which runs `m.out = nn.Linear(8, 2)` in `pkg/surgery.py:5`"
    assert said in outputs["a_main.py"] and said in outputs["b_main.py"]
    assert parsed.count(SURGERY) == 2  # its own conversion (convert_in_process), one question
