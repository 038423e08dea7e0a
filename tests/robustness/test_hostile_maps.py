"""Broken and hostile semantic maps (``--semantic-map FILE``), through both command lines.

Every case is refused before any source file is touched, with ONE line naming the map file
(and the line and entry where known), and exit code 2: in ``ml-switcheroo convert`` and in
``python -m libcst.tool codemod optimizer.TorchToOptax`` alike. The cases run in this process
(both command lines' ``main``: the map is checked while the options are parsed, before any file
is looked at); a few also run as real processes.

Decisions these tests pin down:

* templates (``emit``) may use the placeholders, the names declared under ``imports``,
  literals and a few pure builtins (``ALLOWED_BUILTINS``: ``float``, ``int``, ``min``, ``max``,
  ``len``, ``range``, ``next``...); ``__import__``, ``eval``, ``exec``, ``open``, ``getattr``,
  ``globals``..., dunder names and attributes, ``:=``, ``yield`` and ``await`` are refused;
* YAML aliases (``*name``, also ``<<: *name``) are refused outright (no "billion laughs");
* YAML tags that construct objects are refused (a safe loader);
* a map file is at most 1 MB, a template and a signature at most 2,000 characters;
* text written into files (reasons, suggestions) holds no control characters but newline and
  tab (a NUL would make the file unloadable, a CR would end the comment line).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from libcst import tool as libcst_tool_module

from ml_switcheroo import convert
from tests.robustness.helpers import GOOD, REPO, snapshot

ARGS = "params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0"
EMIT = "optax.lion(learning_rate={lr}, b1={betas[0]}, b2={betas[1]})"


def lion(emit: str = EMIT, *, signature: str = ARGS, extra: str = "") -> str:
    """A valid user map entry (mylib.optim.Lion), with one part replaced."""
    return (
        "apis:\n"
        "  mylib.optim.Lion:\n"
        "    hook: optimizer_constructor\n"
        "    returns: torch.optim.Optimizer\n"
        f"    signature: {json.dumps(signature)}\n"
        "    chain:\n"
        "      - {unless: {weight_decay: 0}, unknown_ok: [weight_decay],"
        ' emit: "optax.add_decayed_weights({weight_decay})"}\n'
        f"      - emit: {json.dumps(emit)}\n" + extra
    )


def hostile(expression: str) -> str:
    """A template that uses every argument, plus ``expression``."""
    return lion(f"{EMIT} if {expression} else None")


def laughs() -> str:
    lines = ['    - &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"    - &{name} [{', '.join(['*' + previous] * 9)}]")
    return lion(
        extra="    escapes:\n      - when: {weight_decay: *i}\n        reason: x\n"
    ).replace(
        "apis:\n",
        "apis:\n  mylib.optim.Z:\n    hook: optimizer_constructor\n    note:\n"
        + "\n".join(lines)
        + "\n",
        1,
    )


# name -> (map text or bytes, what the one line must contain, line number or None)
CASES: dict[str, tuple[str | bytes, str, int | None]] = {
    # YAML itself
    "yaml_syntax": ("apis:\n  x: [1, 2\n", "YAML error: expected ',' or ']'", 3),
    "yaml_tab": ("apis:\n\tx: 1\n", "YAML error: found character '\\t'", 2),
    "duplicate_key": ("apis:\n  a.b:\n    hook: x\n    hook: y\n", "duplicate key 'hook'", 4),
    "duplicate_entry": (lion() + lion().replace("apis:\n", ""), "duplicate key 'mylib", 9),
    "object_tag": (
        "apis: !!python/object/apply:os.system ['touch PWNED']\n",
        "could not determine a constructor for the tag",
        1,
    ),
    "name_tag": ("apis:\n  x: !!python/name:os.system\n", "constructor for the tag", 2),
    "custom_tag": ("apis: !foo 1\n", "constructor for the tag '!foo'", 1),
    "alias": (
        "apis:\n  a.b: &x {hook: optimizer_constructor}\n  a.c: *x\n",
        "YAML aliases (*x) are not allowed",
        3,
    ),
    "merge_key": (
        "apis:\n  a.b: &x {hook: optimizer_constructor}\n  a.c:\n    <<: *x\n",
        "YAML aliases (*x) are not allowed",
        4,
    ),
    "billion_laughs": (laughs(), "YAML aliases (*a) are not allowed", 6),
    "deep_nesting": ("apis: " + "[" * 5000 + "]" * 5000 + "\n", "nesting too deep", None),
    "not_utf8": (lion().replace("mylib", "myl\xefb").encode("latin-1"), "not valid UTF-8", 2),
    "too_large": ("# " + "x" * 1_000_001 + "\n", "file too large", None),
    # wrong types at every level
    "top_level_list": ("- 1\n- 2\n", "the file must be a mapping, not a list", 1),
    "top_level_string": ("hello\n", "the file must be a mapping, not a string", 1),
    "unknown_top_field": ("apiz: {}\n", "unknown field 'apiz' in the top level", 1),
    "version": ("version: 2\n", "unsupported 'version' 2", 1),
    "apis_list": ("apis: [1, 2]\n", "'apis' must be a mapping, not a list", 1),
    "entry_string": ("apis:\n  a.b: hello\n", "an API entry must be a mapping", 2),
    "hook_number": ("apis:\n  a.b:\n    hook: 123\n", "field 'hook' must be a string, not int", 3),
    "unknown_hook": ("apis:\n  a.b:\n    hook: nope\n", "unknown hook 'nope'", 3),
    "unknown_entry_field": (lion(extra="    hooks: x\n"), "unknown field 'hooks'", 9),
    "signature_list": (lion(signature="[1]").replace('"[1]"', "[1]"), "'signature' must be", 5),
    "signature_syntax": (lion(signature="params, lr=(, x"), "bad 'signature'", 5),
    "signature_smuggled_code": (
        lion(signature=ARGS + "):\n    pass\nimport os\ndef f(x"),
        "it closes the parameter list",
        5,
    ),
    "signature_not_literal": (
        lion(signature="params, lr=__import__('os').getcwd(), betas=(0.9, 0.99), weight_decay=0"),
        "is not a Python literal",
        5,
    ),
    "signature_too_long": (lion(signature="params, lr=" + "-" * 5000 + "1"), "longer than", 5),
    "chain_mapping": (lion().replace("    chain:\n", "    chain: {}\n    x:\n"), "unknown field", 7),
    "link_string": (lion(extra="      - hello\n"), "a chain link must be a mapping", 6),
    "emit_number": (lion().replace(f"emit: {json.dumps(EMIT)}", "emit: 1"), "'emit' must be a string", 8),
    "when_list": (lion().replace("{unless: {weight_decay: 0}", "{unless: [weight_decay]"), "'unless' must be a mapping", 7),
    "escapes_string": (lion(extra="    escapes: hello\n"), "'escapes' must be a list", 9),
    "ignore_string": (lion(extra="    ignore: foreach\n"), "'ignore' must be a list", 9),
    "status_number": (lion(extra="    status: 1\n"), "field 'status' must be a string", 9),
    "tolerance_string": (lion(extra="    status: approximate\n    tolerance: x\n"), "numeric 'tolerance'", 10),
    "attribute_string": (lion(extra="    attribute: 'yes'\n"), "'attribute' must be true or false", 9),
    "types_list": ("types: [1]\n", "'types' must be a mapping, not a list", 1),
    "aliases_string": ("types:\n  torch.optim.Optimizer:\n    aliases: torch.x\n", "'aliases' must be a list", 3),
    "bad_regex": ("types:\n  a.B:\n    parameter_names: '('\n", "not a valid regex", 3),
    "imports_list": ("imports: [1]\n", "'imports' must be a mapping, not a list", 1),
    "import_number": ("imports:\n  os: 1\n", "import 'os' must be a string statement", 2),
    "import_two_statements": ("imports:\n  os: 'import os; import sys'\n", "must be one import statement", 2),
    "import_binds_another_name": ("imports:\n  os: 'import sys'\n", "must be one import statement", 2),
    "backward_methods_string": ("backward_methods: backward\n", "'backward_methods' must be a list", 1),
    "module_zero_grad_methods_string": ("module_zero_grad_methods: zero_grad\n", "'module_zero_grad_methods' must be a list", 1),
    "gradient_attributes_string": ("gradient_attributes: grad\n", "'gradient_attributes' must be a list", 1),
    "returns_undeclared": (lion().replace("torch.optim.Optimizer", "a b"), "'returns' names 'a b'", 4),
    "misspelt_torch_api": (lion().replace("mylib.optim.Lion", "torch.optim.Adamw"), "did you mean `torch.optim.AdamW`", 2),
    "misspelt_optax_api": (lion(EMIT.replace("optax.lion", "optax.lino")), "unknown API `optax.lino`", 8),
    "unhandled_argument": (lion("optax.lion(learning_rate={lr})"), "argument(s) betas of the signature are not handled", 5),
    # not a dotted identifier
    "api_with_space": ("apis:\n  'torch optim.X':\n    hook: optimizer_constructor\n", "is not a dotted Python name", 2),
    "api_digit": ("apis:\n  '1abc.x':\n    hook: optimizer_constructor\n", "is not a dotted Python name", 2),
    "api_double_dot": ("apis:\n  'a..b':\n    hook: optimizer_constructor\n", "is not a dotted Python name", 2),
    "api_empty": ("apis:\n  '':\n    hook: optimizer_constructor\n", "is not a dotted Python name", 2),
    "api_number": ("apis:\n  12:\n    hook: optimizer_constructor\n", "API 12 is not a dotted Python name", 2),
    "api_null": ("apis:\n  ~:\n    hook: optimizer_constructor\n", "API None is not a dotted Python name", 2),
    "api_non_ascii": ("apis:\n  'mylib.optim.Lïon':\n    hook: optimizer_constructor\n", "is not a dotted Python name", 2),
    "chain_function": ("chain: 'optax chain'\n", "is not a dotted Python name", 1),
    # templates that are not one expression
    "template_statement": (lion("x = 1"), "not a single Python expression", 8),
    "template_import": (lion("import os"), "not a single Python expression", 8),
    "template_two_statements": (lion(EMIT + "; optax.sgd()"), "not a single Python expression", 8),
    "template_lambda_syntax_error": (hostile("lambda x: x +"), "not a single Python expression", 8),
    "template_unclosed": (hostile("lambda: (x"), "not a single Python expression", 8),
    "template_empty": (lion(" "), "non-empty string", 8),
    "template_bad_placeholder": (lion(EMIT.replace("{lr}", "{lr")), "not a single Python expression", 8),
    "template_unknown_placeholder": (lion(EMIT.replace("{lr}", "{rate}")), "'rate' is not an argument", 8),
    "template_undeclared_name": (hostile("os.system('x')"), "template uses the name 'os'", 8),
    "template_too_long": (lion(EMIT.replace(")", ", x=" + "1 + " * 600 + "1)")), "longer than 2000", 8),
    # expressions that are valid Python but have no place in a template
    "template_dunder_import": (hostile("__import__('os').system('x')"), "the name `__import__` is not allowed", 8),
    "template_eval": (hostile("eval('1')"), "the builtin `eval` is not allowed", 8),
    "template_exec": (hostile("exec('1')"), "the builtin `exec` is not allowed", 8),
    "template_compile": (hostile("compile('1', '', 'eval')"), "the builtin `compile` is not allowed", 8),
    "template_open": (hostile("open('/etc/passwd').read()"), "the builtin `open` is not allowed", 8),
    "template_getattr": (hostile("getattr(optax, 'lion')"), "the builtin `getattr` is not allowed", 8),
    "template_globals": (hostile("globals()"), "the builtin `globals` is not allowed", 8),
    "template_subclasses": (hostile("().__class__.__base__.__subclasses__()"), "the attribute `__subclasses__`", 8),
    "template_fstring": (hostile("f'{__import__(\"os\")}'"), "the name `__import__` is not allowed", 8),
    "template_walrus": (hostile("(y := 1)"), "an assignment expression", 8),
    "template_yield": (hostile("(yield)"), "`yield` and `await` are not allowed", 8),
    "template_await": (hostile("await optax.lion()"), "`yield` and `await` are not allowed", 8),
    "template_nul": (lion(EMIT + "\0"), "control character '\\x00'", 8),
    "template_nested_too_deeply": (lion(EMIT.replace("{lr}", "(" * 300 + "{lr}" + ")" * 300)), "not a single Python expression", 8),
    # names a template introduces must be declared under template_names (model/hygiene.py)
    "template_undeclared_lambda_parameter": (lion(EMIT.replace("{lr}", "lambda step: {lr} * step")), "template introduces the name 'step'", 8),
    "template_undeclared_comprehension_variable": (lion(EMIT.replace("{lr}", "sum([{lr} for k in range(1)])")), "template introduces the name 'k'", 8),
    "template_names_not_a_list": ("template_names: count\n" + lion(), "'template_names' must be a list of identifiers", 1),
    "template_names_not_identifiers": ("template_names: [count, 'a b']\n" + lion(), "'template_names' must be a list of identifiers", 1),
    "template_names_declares_an_import": ("template_names: [optax]\n" + lion(), "'template_names' declares 'optax', which is also a name under 'imports'", 1),
    "import_named_like_a_shipped_template_name": ("imports:\n  count: import count\n" + lion(), "'template_names' declares 'count', which is also a name under 'imports'", None),
    # text written into files
    "reason_nul": (lion(extra="    escapes:\n      - {when: {weight_decay: 1}, reason: \"x\\0y\"}\n"), "field 'reason' holds the control character '\\x00'", 10),
    "reason_cr": (lion(extra="    escapes:\n      - {when: {weight_decay: 1}, reason: \"x\\rimport os\"}\n"), "field 'reason' holds the control character '\\r'", 10),
    "suggest_cr": (lion(extra="    escapes:\n      - {when: {weight_decay: 1}, reason: r, suggest: \"x\\rimport os\"}\n"), "field 'suggest' holds the control character '\\r'", 10),
    "note_nul": (lion(extra="    note: \"a\\0b\"\n"), "field 'note' holds the control character", 9),
}  # fmt: skip


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_bytes(GOOD)
    (src / "lion.py").write_bytes(b"from mylib.optim import Lion\nopt = Lion(params)\n")
    return src


def write_map(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / f"{name}.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def check_one_line(err: str, path: Path, detail: str, line: int | None) -> None:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert "semantic map error: " in lines[0]
    where = f"{path}:{line}:" if line is not None else f"{path}:"
    assert where in lines[0], lines[0]
    assert detail in lines[0], lines[0]


def run_convert(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        convert.main(["-j", "1", "--in-place", *args])
    return int(exit_info.value.code or 0), capsys.readouterr().err


def run_libcst(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str]:
    monkeypatch.chdir(REPO)  # where .libcst.codemod.yaml is
    with pytest.raises(SystemExit) as exit_info:
        libcst_tool_module.main("libcst.tool", ["codemod", "optimizer.TorchToOptax", *args])
    return int(exit_info.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(CASES))
def test_refused_by_both_command_lines(
    name: str,
    sources: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    content, detail, line = CASES[name]
    path = write_map(tmp_path, name, content)
    before = snapshot(sources)
    code, err = run_convert(capsys, "--semantic-map", str(path), str(sources))
    assert code == 2
    check_one_line(err, path.resolve(), detail, line)
    code, err = run_libcst(capsys, monkeypatch, "--semantic-map", str(path), str(sources))
    assert code == 2
    check_one_line(err, path.resolve(), detail, line)
    assert snapshot(sources) == before
    assert not (tmp_path / "PWNED").exists() and not (REPO / "PWNED").exists()


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_a_map_that_is_not_a_file(
    kind: str,
    sources: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "map.yaml"
    if kind == "directory":
        path.mkdir()
    detail = "No such file or directory" if kind == "missing" else "Is a directory"
    before = snapshot(sources)
    for run in (lambda *a: run_convert(capsys, *a), lambda *a: run_libcst(capsys, monkeypatch, *a)):
        code, err = run("--semantic-map", str(path), str(sources))
        assert code == 2
        check_one_line(err, path, f"cannot read file ({detail})", None)
    assert snapshot(sources) == before


def test_valid_maps_still_load(
    sources: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The refusals above are not over-eager: allowed builtins, lambdas (with names the shipped
    map or this one declares under template_names), a BOM, an empty file."""
    allowed = lion(
        "optax.lion(learning_rate=lambda count: {lr} * min(float(count), 10.0), "
        "b1=max({betas[0]}, 0.0), b2={betas[1]})"
    )
    declared = "template_names: [step]\n" + lion(EMIT.replace("{lr}", "lambda step: {lr} * step"))
    for name, content in (
        ("allowed", allowed),
        ("declared", declared),
        ("bom", "\ufeff" + lion()),
        ("empty", ""),
    ):
        path = write_map(tmp_path, name, content)
        code = convert.main(["-j", "1", "--check", "--semantic-map", str(path), str(sources)])
        assert code == 1, capsys.readouterr().err  # train.py (and lion.py) would change


@pytest.mark.parametrize("name", ["yaml_syntax", "template_eval", "billion_laughs", "not_utf8"])
def test_real_processes(name: str, sources: Path, tmp_path: Path) -> None:
    """The command lines as installed: one line on stderr, exit code 2, nothing touched."""
    content, detail, line = CASES[name]
    path = write_map(tmp_path, name, content)
    before = snapshot(sources)
    for argv, cwd in (
        ([sys.executable, "-m", "ml_switcheroo", "convert", "-i", "-j", "2"], tmp_path),
        ([sys.executable, "-m", "libcst.tool", "codemod", "optimizer.TorchToOptax"], REPO),
    ):
        result = subprocess.run(
            [*argv, "--semantic-map", str(path), str(sources)],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        check_one_line(result.stderr, path, detail, line)
    assert snapshot(sources) == before
