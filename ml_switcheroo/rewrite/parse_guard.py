"""Files libcst's native parser must not be given: it would crash the whole process.

libcst's parser is a recursive-descent parser in Rust. On deeply nested source (about 1,300
nested brackets, a chain of some 3,000 calls, 3,500 nested lambdas or 7,000 ``+`` or ``and``
operands, with the usual 8 MB stack) it overflows the C stack, which kills the process with
SIGSEGV instead of raising an exception (libcst issues #619, #1000): ``libcst.tool codemod``
dies, and with it every file not yet written. Some of these inputs also take minutes before
they crash. So every file libcst's runner is about to parse is checked first (the command's
``__init__`` runs right before the parse), and a file that could crash the parser is reported
as failed, with a one-line reason, and never parsed.

The check costs little on ordinary code:

1. a file under 2,000 bytes cannot nest deeply enough;
2. one pass over the brackets and newlines splits the file into statements (a newline outside
   brackets ends one); only a statement of 2,000 bytes or more is looked at further, and it can
   only nest 1,000 levels deep if it holds at least 1,000 operator characters, brackets and
   ``not``/``and``/``or``/``if``/``lambda``/``await`` keywords;
3. only then (a few percent of real files: long docstrings, big data tables), CPython itself
   compiles the file (to a code object that is thrown away: the file is never run). CPython
   refuses more than 200 nested brackets and raises RecursionError for expressions about 1,000
   levels deep, well below where libcst's parser crashes (and libcst's own Python code raises
   RecursionError from about 500 levels). Its verdict is taken, plus one check CPython does not
   make: ``a and b and ...`` is flat for CPython but nested for libcst.
4. When CPython cannot compile the file for another reason (a syntax error, or syntax newer
   than the running Python: a 3.12 type parameter list on 3.11), only the estimate of step 2
   is left: 200 nested brackets or 3,000 operators in one statement make the file a hazard.
"""

from __future__ import annotations

import ast
import re
import warnings

# What a RecursionError in libcst's (or the engine's) tree walks means, in one line.
TOO_DEEP = "not converted: nested too deeply for libcst (maximum recursion depth exceeded)"
SMALL_FILE = 2000  # bytes
LONG_STATEMENT = 2000  # bytes
LEVELS = 1000  # operators, brackets and keywords in one statement worth asking CPython about
MAX_BRACKETS = 200  # nested brackets CPython accepts (its tokenizer's MAXLEVEL)
HARD_LEVELS = 3000  # without CPython's verdict: operators in one statement taken as a hazard
BOOL_OPERANDS = 1000  # `a and b and ...` operands: nested in libcst, flat in CPython

_STRUCTURE = re.compile(rb"[()\[\]{}\n]")
_OPEN = frozenset(b"([{")
_NOT_OPERATORS = bytes(b for b in range(256) if b not in b"()[]{}.+-*/%@&|^~<>")
_KEYWORDS = re.compile(rb"\b(?:not|and|or|if|lambda|await)\b")
_BOOL_WORDS = re.compile(rb"\b(?:and|or)\b")


class SourceTooDeep(Exception):
    """A file nested too deeply for libcst's parser. The message is one line."""


def check_file(path: str) -> None:
    """Raise ``SourceTooDeep`` when the file at ``path`` could crash libcst's parser.

    A file that cannot be read is left for the caller's own read to report.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return
    reason = hazard(data)
    if reason is not None:
        raise SourceTooDeep(reason)


def hazard(data: bytes) -> str | None:
    """Why libcst's parser could crash on ``data`` (one line), or None when it is safe."""
    if len(data) < SMALL_FILE:
        return None
    depth, levels = _scan(data)
    if depth <= MAX_BRACKETS // 2 and levels < LEVELS:
        return None
    problem = _cpython_verdict(data)
    if problem is _COMPILES:
        if levels >= BOOL_OPERANDS and _longest_bool_operation(data) >= BOOL_OPERANDS:
            return (
                f"not parsed: an `and`/`or` chain of more than {BOOL_OPERANDS} operands, "
                "which libcst's parser nests too deeply (it could crash the process)"
            )
        return None
    if problem is not None:
        return f"not parsed: nested too deeply for libcst's parser, which could crash ({problem})"
    if depth > MAX_BRACKETS or levels >= HARD_LEVELS:
        what = (
            f"about {depth} nested brackets"
            if depth > MAX_BRACKETS
            else f"about {levels} operators in one statement"
        )
        return (
            f"not parsed: nested too deeply for libcst's parser, which could crash ({what}; "
            "Python cannot compile the file either)"
        )
    return None


def _scan(data: bytes) -> tuple[int, int]:
    """Deepest bracket nesting, and the most operators, brackets and keywords in a statement.

    Brackets inside strings and comments are counted too: that can only make a file look
    deeper than it is (and then CPython is asked).
    """
    depth = deepest = levels = 0
    start = 0
    for match in _STRUCTURE.finditer(data):
        char = data[match.start()]
        if char == 10:  # "\n"
            if depth == 0:
                if match.start() - start >= LONG_STATEMENT:
                    levels = max(levels, _levels(data[start : match.start()]))
                start = match.end()
        elif char in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
        elif depth:
            depth -= 1
    if len(data) - start >= LONG_STATEMENT:
        levels = max(levels, _levels(data[start:]))
    return deepest, levels


def _levels(statement: bytes) -> int:
    return len(statement.translate(None, _NOT_OPERATORS)) + len(_KEYWORDS.findall(statement))


_COMPILES = "compiles"


def _cpython_verdict(data: bytes) -> str | None:
    """``_COMPILES``, the reason CPython refuses the nesting, or None (another error)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for "\d" and the like
            # Compiled to a code object that is dropped at once: never run.
            compile(data, "<checked>", "exec", dont_inherit=True)
    except RecursionError:
        return "Python cannot compile it either: maximum recursion depth exceeded"
    except MemoryError:
        return "Python cannot compile it either: its parser ran out of stack"
    except SyntaxError as exc:
        message = str(exc.msg or "")
        if "too many nested" in message or "too complex" in message:
            return f"Python cannot compile it either: {message}"
        return None
    except ValueError:  # null bytes: libcst reports those itself
        return None
    return _COMPILES


def _longest_bool_operation(data: bytes) -> int:
    """Operands of the longest ``and``/``or`` chain (0 when the file has no long one)."""
    if len(_BOOL_WORDS.findall(data)) < BOOL_OPERANDS:
        return 0
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return 0
    return max(
        (len(node.values) for node in ast.walk(tree) if isinstance(node, ast.BoolOp)), default=0
    )
