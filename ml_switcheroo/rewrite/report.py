"""Records of what a run converted and escaped, for warnings and the migration report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Record:
    """One converted construct or one escape hatch."""

    api: str
    kind: str  # "converted" or "escaped"
    status: str  # the map entry's status: exact, approximate, escape
    snippet: str
    reason: str = ""
    suggestion: str = ""
    warnings: tuple[str, ...] = ()
    file: str | None = None
    line: int = 0
    column: int = 0

    def at(self, line: int, column: int) -> Record:
        return replace(self, line=line, column=column)

    def with_file(self, file: str | None) -> Record:
        return replace(self, file=file)

    def sort_key(self) -> tuple[Any, ...]:
        return (self.file or "", self.line, self.column, self.kind, self.api)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["warnings"] = list(self.warnings)
        return data
