"""A Ctrl-C while the command is still importing its modules (before ``convert.main``
installs its SIGINT/SIGTERM handlers) or after it restored them: one line and exit 130, as
while they are installed."""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130


def forget_interrupted_string_eval() -> None:
    """Keep the exit code 130 when the interrupt landed in code run from a string.

    CPython (3.11, 3.12) marks the interpreter when a KeyboardInterrupt ends an ``exec`` of
    a string (dataclasses, namedtuple and others build functions that way while the modules
    load), even when a caller catches it; under ``python -m`` it then ends the process by
    SIGINT instead of with the code ``sys.exit`` was given. The mark is cleared by the next
    string ``exec``, which is this one. Measured: 4 of 12 Ctrl-Cs while starting up exited by
    SIGINT (-2) before.
    """
    exec("None", {})


def interrupted(argv: list[str]) -> int:
    """The line for a SIGINT that landed outside ``convert.main``'s handlers."""
    command = "ml-switcheroo convert" if argv[:1] == ["convert"] else "ml-switcheroo"
    forget_interrupted_string_eval()
    print(f"{command}: interrupted by SIGINT", file=sys.stderr)
    return EXIT_INTERRUPTED
