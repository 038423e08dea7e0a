"""Exceptions shared by the map loader, the engine and the hooks."""

from __future__ import annotations


class Untranslatable(Exception):
    """A construct cannot be translated exactly; the engine turns it into an escape hatch.

    ``suggestion`` is the closest correct replacement (source text), when one is known.
    """

    def __init__(self, reason: str, suggestion: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.suggestion = suggestion


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
        super().__init__(f"semantic map error: {where}:{what} {message}")
