"""Exceptions shared by the map loader, the engine and the hooks."""

from __future__ import annotations


class Untranslatable(Exception):
    """A construct cannot be translated exactly; the engine turns it into an escape hatch.

    ``suggestion`` is the closest correct replacement (source text), when one is known.
    """

    def __init__(self, reason: str, suggestion: str | None = None) -> None:
        super().__init__(reason, suggestion)
        self.reason = reason
        self.suggestion = suggestion

    def __str__(self) -> str:
        return self.reason


_MAX_MESSAGE = 600


class SemanticMapError(Exception):
    """A semantic map file is broken. The message is one line naming file, line and entry."""

    def __init__(
        self,
        path: str,
        message: str,
        *,
        line: int | None = None,
        entry: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.entry = entry
        self.detail = message
        where = f"{path}:{line}" if line is not None else path
        what = f" entry '{entry}':" if entry else ""
        text = " ".join(f"semantic map error: {where}:{what} {message}".splitlines())
        if len(text) > _MAX_MESSAGE:  # one readable line, whatever the map holds: where, why
            keep = _MAX_MESSAGE // 2 - 3
            text = f"{text[:keep]} ... {text[-keep:]}"
        super().__init__(text)

    def __reduce__(self) -> tuple[object, ...]:
        # Picklable across libcst's worker processes (the default needs one positional arg).
        return (_rebuild_map_error, (self.path, self.detail, self.line, self.entry))


def _rebuild_map_error(
    path: str, detail: str, line: int | None, entry: str | None
) -> SemanticMapError:
    return SemanticMapError(path, detail, line=line, entry=entry)
