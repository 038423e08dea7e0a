"""The command-line arguments every ml_switcheroo command takes, and their checks."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from ml_switcheroo.targets.target import Target


def add_arguments(
    arg_parser: argparse.ArgumentParser,
    label: str,
    targets: Sequence[Target],
    check_maps: bool = True,
) -> None:
    """``--semantic-map``, ``--exact``, ``--steps-per-epoch``, ``--no-prefilter`` (``label``:
    the target's, as the help says it); a user map must hold for one of ``targets`` (the
    command's, or those ``convert --target`` may choose); a broken shipped map stops the
    parser before any file is touched. Without ``check_maps`` no map is compiled (nor the
    targets and libcst imported): the caller has proof that these maps compile
    (``convert``: its cache)."""
    arg_parser.add_argument(
        "--semantic-map",
        dest="semantic_map",
        metavar="FILE",
        action="append",
        default=[],
        type=_map_argument(targets) if check_maps else str,
        help="Extra semantic-map YAML that adds or overrides entries (repeatable).",
    )
    arg_parser.add_argument(
        "--exact",
        action="store_true",
        help="Emit torch-exact transforms from ml_switcheroo.optax_torch instead of "
        f"escape hatches where stock {label} has no exact equivalent.",
    )
    arg_parser.add_argument(
        "--steps-per-epoch",
        dest="steps_per_epoch",
        metavar="EXPR",
        default=None,
        type=_python_expression,
        help="Translate LR schedulers stepped once per epoch, with this many optimizer "
        "updates per epoch (a number or a Python expression, e.g. 'len(train_loader)'). "
        "Without it, such schedulers get an escape hatch.",
    )
    arg_parser.add_argument(
        "--no-prefilter",
        dest="prefilter",
        action="store_false",
        help="Analyse every file, also those the map's byte pre-filter proves unchanged "
        "(to check the pre-filter: the output is the same).",
    )
    _map_errors_in_one_line(arg_parser)
    if not check_maps:
        return
    from ml_switcheroo.spec.errors import SemanticMapError
    from ml_switcheroo.targets.catalogue import load_semantic_map

    try:  # fail before any file is touched when the shipped map is broken
        load_semantic_map()
    except SemanticMapError as exc:
        arg_parser.error(str(exc))


def _python_expression(text: str) -> str:
    """argparse ``type=``: a single Python expression."""
    import libcst as cst

    try:
        cst.parse_expression(text)
    except cst.ParserSyntaxError:
        raise argparse.ArgumentTypeError(f"not a Python expression: {text!r}") from None
    return text


def _map_argument(targets: Sequence[Target]) -> Callable[[str], str]:
    """argparse ``type=``: validate a user map, layered on one of ``targets``' maps, before
    any file is touched (the first target's error is the one shown)."""

    def check(path: str) -> str:
        from ml_switcheroo.spec.errors import SemanticMapError
        from ml_switcheroo.targets.catalogue import load_semantic_map

        errors = []
        for target in targets:
            try:
                load_semantic_map([path], target)
            except SemanticMapError as exc:
                errors.append(exc)
            else:
                return path
        raise argparse.ArgumentTypeError(str(errors[0]))

    return check


def _map_errors_in_one_line(parser: argparse.ArgumentParser) -> None:
    """A broken semantic map stops the run with one line (and exit code 2), not argparse's
    usage text followed by the error, in ``libcst.tool``'s parser too."""
    usage_error = parser.error

    def error(message: str) -> NoReturn:
        if "semantic map error:" in message:
            parser.exit(2, f"{parser.prog}: error: {' '.join(message.splitlines())}\n")
        usage_error(message)

    parser.error = error  # type: ignore[method-assign]
